"""``smpp-bridge prove faults``: run the delivery engine's fault scenarios for real, each in its
own temporary directory (embedded Redis, SQLite, the simulated SMSC, worker subprocesses), and
print one summary row per scenario. Exit 0 when every scenario passed every check, 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from bridge.cli import CommandError

COLUMNS = (
    ("scenario", "scenario"),
    ("messages", "messages"),
    ("delivered", "delivered"),
    ("refunded", "refunded"),
    ("real duplicates", "real_duplicates"),
    ("flagged duplicates", "flagged_duplicates"),
    ("audit", "audit"),
    ("seconds", "seconds"),
    ("result", "result"),
)


def register(subparsers) -> None:
    prove = subparsers.add_parser(
        "prove", help="run a proof suite against a throwaway bridge and print what it showed"
    )
    suites = prove.add_subparsers(dest="suite", metavar="SUITE")
    suites.required = True
    faults = suites.add_parser(
        "faults",
        help="worker and Redis SIGKILLs, SMSC drops, throttling, silence, receipts first",
        description="Each scenario runs in its own temporary directory with the embedded Redis,"
        " SQLite, the simulated SMSC and `smpp-bridge worker` processes, then is checked"
        " against the simulator's record and `smpp-bridge audit`. Nothing outside the"
        " temporary directory is touched.",
    )
    faults.add_argument(
        "--only",
        action="append",
        metavar="NAME",
        help="run this scenario (repeatable; default: all; --list names them)",
    )
    faults.add_argument("--list", action="store_true", help="list the scenarios and exit")
    faults.add_argument("--json", action="store_true", help="print the outcomes as JSON")
    faults.add_argument(
        "--scale",
        type=float,
        default=1.0,
        metavar="FACTOR",
        help="multiply each scenario's message count (default 1; 5 for a long run)",
    )
    faults.add_argument(
        "--keep",
        metavar="DIR",
        type=Path,
        help="run under DIR and keep every scenario's files (default: a temporary directory,"
        " removed except for failed scenarios)",
    )
    faults.set_defaults(handler=cmd_faults)


def cmd_faults(args: argparse.Namespace) -> int:
    from bridge.proof import SCENARIOS, run_all

    if args.list:
        for spec in SCENARIOS.values():
            print(f"{spec.name:<16} {spec.messages:>5}  {spec.summary}")
        return 0
    names = args.only or list(SCENARIOS)
    unknown = [n for n in names if n not in SCENARIOS]
    if unknown:
        raise CommandError(
            f"no fault scenario {', '.join(unknown)}; choose from {', '.join(SCENARIOS)}", 2
        )
    if not 0 < args.scale <= 100:
        raise CommandError("--scale must be more than 0 and at most 100", 2)
    if args.keep is not None:
        args.keep.mkdir(parents=True, exist_ok=True)
        workdir = args.keep
    else:
        workdir = Path(tempfile.mkdtemp(prefix="smpp-bridge-prove-"))
    outcomes = run_all(names, args.scale, args.keep, workdir)
    if args.keep is None and all(o.ok for o in outcomes):
        workdir.rmdir()
    if args.json:
        print(json.dumps([o.as_dict() for o in outcomes], indent=2))
    else:
        print(table(outcomes))
    return 0 if all(o.ok for o in outcomes) else 1


def table(outcomes) -> str:
    """The summary as a Markdown table, then each failed scenario's problems."""
    lines = [
        "| " + " | ".join(title for title, _ in COLUMNS) + " |",
        "|" + "---|" * len(COLUMNS),
    ]
    for o in outcomes:
        cells = {**o.as_dict(), "result": "pass" if o.ok else "FAIL"}
        lines.append("| " + " | ".join(str(cells[key]) for _, key in COLUMNS) + " |")
    for o in outcomes:
        lines += [f"{o.scenario}: {problem}" for problem in o.problems]
    return "\n".join(lines)
