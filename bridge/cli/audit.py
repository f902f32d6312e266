"""``smpp-bridge audit``: check the books and the message states (see bridge.delivery.audit).

Prints each problem and exits 1 when any check fails; prints a one-line summary and exits 0
otherwise. Read-only. With Redis (REDIS_URL, or the embedded one of a `smpp-bridge run` on this
machine) it also checks that every accepted/queued message has an outbound stream entry; with
no Redis known that check is skipped and the summary says so.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from redis.exceptions import RedisError
from sqlalchemy.exc import SQLAlchemyError

from bridge.cli import CommandError
from bridge.cli.database import first_line, open_migrated, shown_url
from bridge.config import load_config
from bridge.delivery.audit import DEFAULT_GRACE_SECONDS, DEFAULT_STREAM_GRACE_SECONDS, audit


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
    parser.add_argument(
        "--stream-grace",
        type=float,
        default=DEFAULT_STREAM_GRACE_SECONDS,
        metavar="SECONDS",
        help="how old an accepted/queued message must be before a missing outbound stream"
        f" entry is reported (default {DEFAULT_STREAM_GRACE_SECONDS:g})",
    )
    parser.set_defaults(handler=run_audit)


def run_audit(args, clock=time.time) -> int:
    if not args.grace >= 0:  # also refuses nan
        raise CommandError("--grace must be zero or more seconds")
    if not 0 <= args.stream_grace <= 1e9:
        raise CommandError("--stream-grace must be from 0 to 1e9 seconds")
    config = load_config()
    shown = shown_url(config.effective_database_url)
    db = open_migrated(config, pool_size=1, max_overflow=0)
    try:
        with db.connect() as conn, _redis(config) as redis:
            report = audit(
                conn,
                datetime.fromtimestamp(clock(), UTC),
                args.grace,
                redis=redis,
                stream_grace_seconds=args.stream_grace,
            )
    except RedisError as exc:
        raise CommandError(
            f"cannot read the outbound stream from Redis ({exc}); start Redis or unset"
            " REDIS_URL to audit the database alone"
        ) from None
    except SQLAlchemyError as exc:
        raise CommandError(f"cannot read the database {shown}: {first_line(exc)}") from None
    finally:
        db.dispose()
    for problem in report.problems:
        print(problem)
    print(report.summary())
    return 0 if report.ok else 1


@contextlib.contextmanager
def _redis(config) -> Iterator[Any]:
    """A client of REDIS_URL, else of the embedded Redis a `run` owns here; None if neither."""
    redis_url = config.redis_url
    if not redis_url:
        from bridge.redis.embedded import running_url

        redis_url = running_url(config.var_dir)
    if not redis_url:
        yield None
        return
    from bridge.redis.clients import make_redis

    client = make_redis(redis_url)
    try:
        yield client
    finally:
        client.close()
