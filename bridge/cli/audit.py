"""``smpp-bridge audit``: check the books and the message states (see bridge.delivery.audit).

Prints each problem and exits 1 when any check fails; prints a one-line summary and exits 0
otherwise. Read-only; needs the database only (no Redis).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from bridge.cli import CommandError
from bridge.config import load_config
from bridge.delivery.audit import DEFAULT_GRACE_SECONDS, audit


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "audit", help="check balances, ledger, refunds and message states (exit 1 on problems)"
    )
    parser.add_argument(
        "--grace",
        type=float,
        default=DEFAULT_GRACE_SECONDS,
        metavar="SECONDS",
        help="how long past its validity a message may still be in flight"
        f" before it is reported (default {DEFAULT_GRACE_SECONDS:g})",
    )
    parser.set_defaults(handler=run_audit)


def run_audit(args, clock=time.time) -> int:
    from bridge.storage.db import Database

    if args.grace < 0:
        raise CommandError("--grace must be zero or more seconds")
    url = load_config().effective_database_url
    shown = make_url(url).render_as_string(hide_password=True)
    db = Database(url, pool_size=1, max_overflow=0)
    try:
        if not db.has_schema():
            raise CommandError(
                f"the database {shown} is not migrated to the newest schema;"
                " run `smpp-bridge db upgrade` first"
            )
        with db.connect() as conn:
            report = audit(conn, datetime.fromtimestamp(clock(), UTC), args.grace)
    except SQLAlchemyError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CommandError(f"cannot read the database {shown}: {first}") from None
    finally:
        db.dispose()
    for problem in report.problems:
        print(problem)
    print(report.summary())
    return 0 if report.ok else 1
