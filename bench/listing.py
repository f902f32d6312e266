"""Listing and search latency: GET /api/v2/sms pages of 100 from an account with 1,000,000 messages.

For each database (SQLite file, then a throwaway PostgreSQL unless ``--no-postgres``) it stores
``--messages`` messages for one account (plus ``--others`` for each of two other accounts) in
bulk (executemany / COPY: tests.harness.messages), refreshes PostgreSQL's statistics, and then
times requests through the real falcon app (key check, rate limit in a real Redis, parameter
parsing, the query, JSON rendering; no network): each case ``--requests`` times after a warm-up,
cursors varied so every request reads other rows. Prints load time and p50/p99 per case.

Usage: .venv/bin/python -m bench.listing [--messages 1000000] [--others 200000]
       [--requests 300] [--no-postgres]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import statistics
import tempfile
import time
from collections.abc import Callable

from falcon import testing

from api.app import create_app
from bridge.config import Config
from bridge.redis.clients import make_redis
from bridge.service import BridgeService
from bridge.storage.db import Database, upgrade
from bridge.storage.paging import Key, encode_cursor
from tests.harness.messages import Shape, analyze, create_account, insert_messages
from tests.harness.postgres import postgres_cluster
from tests.harness.redis_server import redis_server

SHAPE = Shape()  # batches of 100, 50,000 numbers, 1,000 references, one batch a second


def cases(n: int, rng: random.Random, batch_ids: list[str]) -> list[tuple[str, Callable[[], dict]]]:
    """(name, a function giving one request's query parameters) per case; ``batch_ids`` are
    the bench account's batches (the batch_id case picks one)."""
    batches = n // SHAPE.batch_size
    span = SHAPE.spacing * batches

    def deep() -> str:  # a cursor somewhere in the account's history
        at = SHAPE.start + span * rng.random()
        return encode_cursor(Key(at, "Z" * 26))

    def moment(fraction: float) -> str:
        return (SHAPE.start + span * fraction).isoformat()

    return [
        ("first page, no filter", lambda: {}),
        ("deep page (cursor), no filter", lambda: {"cursor": deep()}),
        ("state=delivered (80 %), deep", lambda: {"state": "delivered", "cursor": deep()}),
        ("state=rejected (1 %), deep", lambda: {"state": "rejected", "cursor": deep()}),
        ("reference (1,000 batches each)", lambda: {"reference": f"ref-{rng.randrange(1000)}"}),
        ("number (about 20 each)", lambda: {"number": f"+25470{rng.randrange(50_000):07d}"}),
        (
            "since+until (10 % of the time), state=failed",
            lambda: {
                "since": moment(f := rng.random() * 0.9),
                "until": moment(f + 0.1),
                "state": "failed",
            },
        ),
        ("batch_id (100 messages)", lambda: {"batch_id": rng.choice(batch_ids)}),
    ]


def percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


def run_backend(url: str, redis_url: str, args) -> list[tuple[str, float, float, int]]:
    upgrade(url)
    config = Config(database_url=url, redis_url=redis_url, rate_limit_per_minute=10_000_000)
    db = Database.from_config(config)
    service = BridgeService(config, db, make_redis(redis_url), run_sweeper=False)
    service.start()
    try:
        account = service.create_account("bench", "bench-password-1")
        headers = {"X-API-Key": service.generate_key(account.id, expiry_days=30).api_key}
        start = time.perf_counter()
        insert_messages(db, account.id, args.messages, SHAPE)
        for name in ("other1", "other2"):
            insert_messages(db, create_account(db, name), args.others, SHAPE)
        analyze(db)
        loaded = time.perf_counter() - start
        with db.connect() as conn:
            batch_ids = list(
                conn.exec_driver_sql(
                    f"SELECT DISTINCT batch_id FROM messages WHERE account_id = {int(account.id)}"
                    " LIMIT 500"
                ).scalars()
            )
        rng = random.Random(11)
        client = testing.TestClient(create_app(config, service, service.redis))
        out = [("(bulk load of every row)", loaded * 1000, loaded * 1000, 0)]
        for name, params in cases(args.messages, rng, batch_ids):
            for _ in range(20):  # warm: caches, statements, the key check
                client.simulate_get("/api/v2/sms", headers=headers, params=params())
            samples, rows = [], 0
            for _ in range(args.requests):
                query = {**params(), "limit": "100"}
                t0 = time.perf_counter()
                r = client.simulate_get("/api/v2/sms", headers=headers, params=query)
                samples.append((time.perf_counter() - t0) * 1000)
                assert r.status_code == 200, r.text
                rows += len(r.json["messages"])
            p50, p99 = percentiles(samples)
            out.append((name, p50, p99, rows // args.requests))
        return out
    finally:
        service.close()


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--others", type=int, default=200_000, help="per other account (2)")
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--no-postgres", action="store_true")
    args = parser.parse_args()
    results = {}
    with contextlib.ExitStack() as stack:
        tmp = stack.enter_context(tempfile.TemporaryDirectory())
        redis = stack.enter_context(redis_server(tmp))
        results["SQLite"] = run_backend(f"sqlite:///{tmp}/bench.db", redis.url, args)
        if not args.no_postgres:
            pg = stack.enter_context(postgres_cluster())
            results["PostgreSQL"] = run_backend(pg.create_database(), redis.url, args)
    print(
        f"messages: {args.messages:,} for the account, {args.others:,} for each of 2 others; "
        f"{args.requests} requests a case, limit=100; nproc: {os.cpu_count()}, "
        f"load: {os.getloadavg()[0]:.1f}"
    )
    print("| database | case | p50 ms | p99 ms | rows/page |")
    print("|---|---|---|---|---|")
    for backend, rows in results.items():
        for name, p50, p99, per_page in rows:
            if name.startswith("(bulk"):
                print(f"| {backend} | {name} | {p50 / 1000:.0f} s | | |")
            else:
                print(f"| {backend} | {name} | {p50:.1f} | {p99:.1f} | {per_page} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
