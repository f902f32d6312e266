"""`smpp-bridge simulator`: run the simulated SMSC in this process until SIGINT/SIGTERM.

Prints one line with the address it listens on (the port is ephemeral unless --port is given),
so scripts and benchmarks can read it; exits 0 when stopped by a signal.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading

from bridge.cli import CommandError
from smpp.simulator import (
    ScenarioError,
    Simulator,
    SimulatorConfig,
    SimulatorConfigError,
    SimulatorError,
    parse_outcomes,
)
from smpp.simulator.config import MESSAGE_ID_FORMATS, RECEIPT_ID_FORMATS
from smpp.simulator.scenarios import SCENARIOS


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "simulator",
        help="run the simulated SMSC (SMPP 3.4 server for tests and demos)",
        description="A simulated SMSC. Scenarios: "
        + ", ".join(SCENARIOS)
        + " (NAME:key=value,key=value; see docs/simulator.md).",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    p.add_argument("--port", type=int, default=0, help="TCP port (0: an ephemeral port)")
    p.add_argument("--system-id", help="the only system_id accepted (default: any)")
    p.add_argument("--password", help="the password required (default: any)")
    p.add_argument(
        "--dlr-delay",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="delay from submit_sm_resp to the delivery receipt (0)",
    )
    p.add_argument(
        "--dlr-delay-max",
        type=float,
        metavar="SECONDS",
        help="spread receipts: each delay uniform in [--dlr-delay, this] (seeded by --seed)",
    )
    p.add_argument(
        "--receipt-retry",
        type=float,
        default=5.0,
        metavar="SECONDS",
        help="send a receipt answered with an error status (ESME_RX_T_APPN...) again after this"
        " long, as an SMSC does, up to 10 sends (5; 0: never)",
    )
    p.add_argument(
        "--scenario",
        action="extend",
        nargs="+",
        default=[],
        metavar="NAME",
        help="a scenario such as throttle:tps=100 (repeatable)",
    )
    p.add_argument(
        "--max-binds",
        type=int,
        metavar="N",
        help="concurrent binds allowed per system_id (default: no cap)",
    )
    p.add_argument(
        "--message-id-format",
        choices=MESSAGE_ID_FORMATS,
        default="decimal",
        help="submit_sm_resp ids: decimal (random 10-digit start), sequential (from 1), hex, uuid",
    )
    p.add_argument(
        "--receipt-id-format",
        choices=RECEIPT_ID_FORMATS,
        default="same",
        help="id form in receipts: same, or hex/decimal to differ from the resp",
    )
    p.add_argument(
        "--outcomes",
        default="DELIVRD=1",
        metavar="STAT=W,...",
        help="receipt stat weights, e.g. DELIVRD=0.9,UNDELIV=0.1",
    )
    p.add_argument(
        "--seed", type=int, help="seed for outcomes, ids and receipt delays (default: random)"
    )
    p.add_argument(
        "--record-limit",
        type=int,
        default=100_000,
        metavar="N",
        help="PDUs kept per bind and messages/receipts kept (100000)",
    )
    p.set_defaults(handler=run_simulator)


def config_from_args(args: argparse.Namespace) -> SimulatorConfig:
    try:
        return SimulatorConfig(
            host=args.host,
            port=args.port,
            system_id=args.system_id,
            password=args.password,
            dlr_delay=args.dlr_delay,
            dlr_delay_max=args.dlr_delay_max,
            scenarios=tuple(args.scenario),
            max_binds_per_system_id=args.max_binds,
            message_id_format=args.message_id_format,
            receipt_id_format=args.receipt_id_format,
            outcomes=parse_outcomes(args.outcomes),
            seed=args.seed,
            record_limit=args.record_limit,
            receipt_retry_seconds=args.receipt_retry or None,
        )
    except SimulatorConfigError as exc:
        raise CommandError(str(exc), code=2) from None


def run_simulator(args: argparse.Namespace) -> int:
    from bridge.config import load_config
    from bridge.telemetry.logs import configure_logging, say

    configure_logging(load_config())  # the format of the other processes (BRIDGE_LOG_FORMAT)
    config = config_from_args(args)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    try:
        sim = Simulator(config)
        host, port = sim.start()
    except (ScenarioError, SimulatorError) as exc:
        raise CommandError(str(exc), code=2 if isinstance(exc, ScenarioError) else 1) from None
    try:
        say(
            f"smpp-bridge simulator listening on {host}:{port} "
            f"(system_id {config.system_id or 'any'})"
        )
        while not stop.wait(0.5):
            pass
    finally:
        sim.stop()
    return 0


if __name__ == "__main__":  # pragma: no cover
    from bridge.cli import main

    sys.exit(main(["simulator", *sys.argv[1:]]))
