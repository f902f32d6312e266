"""Domain-level throughput of BridgeService.send (no HTTP): what the API can at best reach.

Starts a throwaway redis-server (and uses SQLite in a temp dir unless DATABASE_URL is set),
then times sequential sends in one thread: 1-recipient and 1,000-recipient requests.
Usage: .venv/bin/python -m bench.send_path [--seconds 5] [--runs 3] [--postgres]
(--postgres starts a throwaway PostgreSQL cluster, as the tests do.) Reports the rate and the
process's CPU per request (µs, all threads).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
import tempfile
import time
from decimal import Decimal

from bridge.config import Config
from bridge.redis.clients import make_redis
from bridge.service import BridgeService
from bridge.storage.db import Database, upgrade
from tests.harness.postgres import postgres_cluster
from tests.harness.redis_server import redis_server


def measure(
    service: BridgeService, account_id: int, numbers: list[str], seconds: float
) -> tuple[float, float]:
    """Requests per second over ``seconds`` of back-to-back sends, and this process's CPU
    per request in µs (every thread: the flusher's writes count too). With SQLite's
    synchronous=FULL the rate is mostly fsync waits; the CPU is what a send costs the API."""
    done, start, cpu = 0, time.perf_counter(), time.process_time()
    while time.perf_counter() - start < seconds:
        service.send(account_id, numbers, "Benchmark message, one part.")
        done += 1
    rate = done / (time.perf_counter() - start)
    return rate, (time.process_time() - cpu) / done * 1e6


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--postgres", action="store_true", help="use a throwaway PostgreSQL")
    args = parser.parse_args()
    with contextlib.ExitStack() as stack:
        tmp = stack.enter_context(tempfile.TemporaryDirectory())
        redis = stack.enter_context(redis_server(tmp))
        url = os.environ.get("DATABASE_URL") or f"sqlite:///{tmp}/bench.db"
        if args.postgres:
            url = stack.enter_context(postgres_cluster()).create_database()
        upgrade(url)
        db = Database(url)
        client = make_redis(redis.url)
        service = BridgeService(Config(database_url=url), db, client, run_sweeper=False)
        service.start()
        try:
            account = service.create_account(f"bench{os.getpid()}", "pw", balance=Decimal(90000000))
            one = ["0701234567"]
            many = [f"07{i:08d}" for i in range(1000)]
            singles = [measure(service, account.id, one, args.seconds) for _ in range(args.runs)]
            bulks = [measure(service, account.id, many, args.seconds) for _ in range(args.runs)]
        finally:
            service.stop()
            client.close()
            db.dispose()
    backend = url.split(":", 1)[0]
    print(f"database: {backend}  nproc: {os.cpu_count()}  runs: {args.runs} x {args.seconds}s")
    print(f"{'request':<24}{'median req/s':>14}{'recipients/s':>14}{'CPU µs/req':>12}   all runs")
    for name, results, recipients in (
        ("1 recipient", singles, 1),
        ("1,000 recipients", bulks, 1000),
    ):
        rate = statistics.median(r for r, _ in results)
        cpu = statistics.median(c for _, c in results)
        runs = ", ".join(f"{r:.1f} ({c:.0f} µs)" for r, c in results)
        print(f"{name:<24}{rate:>14.1f}{rate * recipients:>14.0f}{cpu:>12.0f}   {runs}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
