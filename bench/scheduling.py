"""Release lag of scheduled sends with 100,000 pending: how long after its send_at each message
is on the outbound stream.

Accepts ``--messages`` scheduled messages through the real send path (BridgeService.send, sends
of ``--per-send`` recipients) into a SQLite file (or ``--database-url``) and a real redis-server,
due in ``--groups`` groups spread evenly over ``--window`` seconds starting ``--lead`` seconds
after the bench starts (the accepts must finish first: the bench says so if they did not). The
releaser (bridge.delivery.release, as a worker runs it) then releases them; the lag of a message
is its ``queued_at`` (set after its XADD) minus its send_at. Prints p50/p99/max lag, and the
count released early (must be 0).

Usage: .venv/bin/python -m bench.scheduling [--messages 100000] [--per-send 1000]
       [--groups 100] [--window 30] [--lead 60] [--database-url URL]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from argon2 import PasswordHasher
from sqlalchemy import select

from bridge.config import Config
from bridge.delivery.release import Releaser
from bridge.redis import keys as redis_keys
from bridge.redis.clients import make_redis
from bridge.service import BridgeService
from bridge.storage.db import Database, upgrade
from bridge.storage.models import messages
from tests.harness.procs import wait_until
from tests.harness.redis_server import redis_server


def _numbers(count: int) -> list[str]:
    return [f"+2547{10_000_000 + i:08d}" for i in range(count)]


def run(args: argparse.Namespace, database_url: str, redis_url: str) -> None:
    upgrade(database_url)
    config = Config(database_url=database_url, redis_url=redis_url, max_recipients=10_000)
    db, client = Database(database_url), make_redis(redis_url)
    service = BridgeService(
        config, db, client, run_sweeper=False, hasher=PasswordHasher(time_cost=1, memory_cost=8192)
    )
    service.start()
    releaser = Releaser(db, client)
    try:
        account = service.create_account(
            "bench", "bench-password-1", balance=Decimal(args.messages) * 10
        )
        start = datetime.now(UTC) + timedelta(seconds=args.lead)
        sends = args.messages // args.per_send
        numbers = _numbers(args.per_send)
        t0 = time.monotonic()
        for i in range(sends):
            group = i * args.groups // sends
            send_at = start + timedelta(seconds=args.window * group / args.groups)
            service.send(account.id, numbers, "scheduled bench", send_at=send_at)
        accepted = time.monotonic() - t0
        pending = client.zcard(redis_keys.SCHEDULE_SET)
        late_start = datetime.now(UTC) > start
        print(
            f"accepted {sends * args.per_send:,} scheduled messages in {accepted:.1f} s "
            f"({pending:,} pending in the schedule set)"
            + (
                "; WARNING: accepting ran past the first send_at, raise --lead"
                if late_start
                else ""
            )
        )
        releaser.start()
        end = start + timedelta(seconds=args.window)
        wait_until(
            lambda: client.xlen(redis_keys.OUTBOUND_STREAM) >= sends * args.per_send,
            timeout=(end - datetime.now(UTC)).total_seconds() + 120,
            interval=0.5,
            message="every message released",
        )
        wait_until(
            lambda: _queued_count(db) >= sends * args.per_send,
            timeout=30,
            interval=0.2,
            message="every message marked queued",
        )
        with db.connect() as conn:
            rows = conn.execute(select(messages.c.send_at, messages.c.queued_at)).all()
        lags = sorted((r.queued_at - r.send_at).total_seconds() for r in rows)
        early = sum(1 for lag in lags if lag < 0)
        p99 = lags[int(len(lags) * 0.99) - 1]
        print(
            f"release lag after send_at ({len(lags):,} messages, {args.groups} due times over "
            f"{args.window:g} s, {args.per_send * sends // args.groups:,} due at each): "
            f"p50 {statistics.median(lags) * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms, "
            f"max {lags[-1] * 1000:.0f} ms; released early: {early}"
        )
    finally:
        releaser.stop()
        service.stop()
        client.close()
        db.dispose()


def _queued_count(db: Database) -> int:
    from sqlalchemy import func

    with db.connect() as conn:
        return conn.execute(select(func.count()).where(messages.c.state == "queued")).scalar_one()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--per-send", type=int, default=1000)
    parser.add_argument("--groups", type=int, default=100)
    parser.add_argument("--window", type=float, default=30.0)
    parser.add_argument("--lead", type=float, default=60.0)
    parser.add_argument("--database-url", default="")
    args = parser.parse_args()
    print(f"nproc {os.cpu_count()}, {datetime.now(UTC):%Y-%m-%d}")
    with tempfile.TemporaryDirectory() as tmp:
        url = args.database_url or f"sqlite:///{tmp}/bench.db"
        os.makedirs(f"{tmp}/redis")
        with redis_server(f"{tmp}/redis") as server:
            run(args, url, server.url)


if __name__ == "__main__":
    main()
