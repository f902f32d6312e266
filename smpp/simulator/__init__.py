"""The simulated SMSC: a real SMPP 3.4 server for tests, benchmarks and `smpp-bridge simulator`.

    from smpp.simulator import Simulator
    with Simulator(system_id="bridge", password="secret", dlr_delay=0.1,
                   scenarios=["throttle:tps=50"]) as sim:
        host, port = sim.address
        ...
        assert sim.messages[0].text == "hello"

Modules: config (SimulatorConfig), server (Simulator, the thread), smsc (decisions), connection
(one ESME), scenarios, receipts, mo, recording, timers.
"""

from smpp.simulator.config import SimulatorConfig, SimulatorConfigError, parse_outcomes
from smpp.simulator.recording import (
    BindRecord,
    MoRecord,
    ReceiptRecord,
    SubmittedMessage,
)
from smpp.simulator.scenarios import (
    SCENARIOS,
    DropAfter,
    Latency,
    Malformed,
    Mo,
    Outcome,
    QueueFull,
    ReceiptFirst,
    ReceiptShape,
    RefuseBinds,
    RejectPrefix,
    Scenario,
    ScenarioError,
    Silent,
    Throttle,
    UnbindAfter,
    parse_scenario,
)
from smpp.simulator.server import Simulator, SimulatorError

__all__ = [
    "SCENARIOS",
    "BindRecord",
    "DropAfter",
    "Latency",
    "Malformed",
    "Mo",
    "MoRecord",
    "Outcome",
    "QueueFull",
    "ReceiptFirst",
    "ReceiptShape",
    "ReceiptRecord",
    "RefuseBinds",
    "RejectPrefix",
    "Scenario",
    "ScenarioError",
    "Silent",
    "Simulator",
    "SimulatorConfig",
    "SimulatorConfigError",
    "SimulatorError",
    "SubmittedMessage",
    "Throttle",
    "UnbindAfter",
    "parse_outcomes",
    "parse_scenario",
]
