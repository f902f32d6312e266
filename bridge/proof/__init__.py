"""The proof suites anyone can run: a whole bridge in a temporary directory (``rig``), the
delivery engine's fault scenarios (``faults``) and their check against ground truth (``truth``).
`smpp-bridge prove faults` (bridge/cli/prove.py) is the command line."""

from bridge.proof.faults import SCENARIOS, FaultScenario, run_all, run_scenario, scenario
from bridge.proof.truth import Outcome

__all__ = ["SCENARIOS", "FaultScenario", "Outcome", "run_all", "run_scenario", "scenario"]
