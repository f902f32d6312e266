"""Group commit at the domain level: concurrent 1-recipient sends through one BridgeService.

N threads call BridgeService.send back to back (no HTTP), as N gunicorn request threads of one
API process would. Each configuration runs with group commit (up to 64 sends a group) and
without it (``group_max_sends=1``: one transaction and one XADD per send, as before), and the
script prints sends/s, the process CPU time per send (user+sys; the steadier figure on a shared
machine), context switches per send and the mean group size. Runs alternate on/off so both
see the same machine load. ``--synchronous full,normal`` adds SQLite's durability level as a
second axis (paired runs too): what fsyncing every commit costs with and without group commit.

Usage: .venv/bin/python -m bench.group_commit [--seconds 3] [--runs 3] [--threads 1,4,8]
       [--postgres] [--synchronous full,normal]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import resource
import statistics
import sys
import tempfile
import threading
import time
from decimal import Decimal

from bridge.config import Config
from bridge.redis.clients import make_redis
from bridge.service import BridgeService
from bridge.storage.db import Database, upgrade
from tests.harness.postgres import postgres_cluster
from tests.harness.redis_server import redis_server

TEXT = "Benchmark message, one part."


def measure(service: BridgeService, account_id: int, threads: int, seconds: float) -> dict:
    """Sends/s, CPU µs per send, voluntary context switches per send, mean group size."""
    counts = [0] * threads
    stats = service.committer.stats
    groups0, items0 = stats.groups, stats.items
    usage0 = resource.getrusage(resource.RUSAGE_SELF)
    start = time.perf_counter()
    until = start + seconds

    def run(i: int) -> None:
        n = 0
        while time.perf_counter() < until:
            service.send(account_id, "0701234567", TEXT)
            n += 1
        counts[i] = n

    workers = [threading.Thread(target=run, args=(i,)) for i in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(seconds + 60)
    elapsed = time.perf_counter() - start
    usage = resource.getrusage(resource.RUSAGE_SELF)
    n = max(1, sum(counts))
    cpu = (usage.ru_utime - usage0.ru_utime) + (usage.ru_stime - usage0.ru_stime)
    return {
        "rate": n / elapsed,
        "cpu_us": cpu * 1e6 / n,
        "switches": (usage.ru_nvcsw - usage0.ru_nvcsw) / n,
        "group": (stats.items - items0) / max(1, stats.groups - groups0),
    }


def open_service(url: str, redis_url: str, group_max_sends: int, sync: str) -> BridgeService:
    config = Config(database_url=url, sqlite_synchronous=sync)
    service = BridgeService(
        config,
        Database.from_config(config),
        make_redis(redis_url),
        run_sweeper=False,
        group_max_sends=group_max_sends,
    )
    service.start()
    return service


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--threads", default="1,4,8")
    parser.add_argument("--postgres", action="store_true", help="use a throwaway PostgreSQL")
    parser.add_argument(
        "--synchronous", default="full", help="SQLite PRAGMA synchronous levels to compare"
    )
    args = parser.parse_args()
    rows = []
    with contextlib.ExitStack() as stack:
        tmp = stack.enter_context(tempfile.TemporaryDirectory())
        redis = stack.enter_context(redis_server(tmp))
        url = f"sqlite:///{tmp}/bench.db"
        if args.postgres:
            url = stack.enter_context(postgres_cluster()).create_database()
        upgrade(url)
        syncs = args.synchronous.split(",")
        services = {
            (sync, cap): open_service(url, redis.url, cap, sync)
            for sync in syncs
            for cap in (64, 1)
        }
        try:
            account = next(iter(services.values())).create_account(
                f"bench{os.getpid()}", "pw", balance=Decimal(90000000)
            )
            for service in services.values():  # warm: settings cache, statements, pools
                for _ in range(200):
                    service.send(account.id, "0701234567", TEXT)
            for threads in (int(t) for t in args.threads.split(",")):
                results: dict[tuple[str, int], list[dict]] = {key: [] for key in services}
                for _ in range(args.runs):
                    for key, service in services.items():
                        results[key].append(measure(service, account.id, threads, args.seconds))
                rows.append((threads, results))
        finally:
            for service in services.values():
                service.close()
    backend = url.split(":", 1)[0].split("+")[0]
    print(
        f"database: {backend}  nproc: {os.cpu_count()}  load: {os.getloadavg()[0]:.1f}  "
        f"runs: {args.runs} x {args.seconds:.0f} s (medians)"
    )
    print(
        "| threads | synchronous | group commit | sends/s | CPU µs/send | ctx switches/send "
        "| mean group |"
    )
    print("|---|---|---|---|---|---|---|")
    for threads, results in rows:
        for sync in syncs:
            for cap, label in ((1, "off (1 send a group)"), (64, "on (up to 64)")):
                runs = results[(sync, cap)]
                med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
                print(
                    f"| {threads} | {sync if not args.postgres else 'n/a'} | {label} | "
                    f"{med['rate']:,.0f} | {med['cpu_us']:.0f} | {med['switches']:.1f} | "
                    f"{med['group']:.2f} |"
                )
    return 0


if __name__ == "__main__":
    sys.exit(main())
