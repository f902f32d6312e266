"""Webhook deliveries per second: the real Sender (signing, SSRF check, pooled keep-alive
urllib3, Redis outcome + attempt record per event) against a local keep-alive sink.

    .venv/bin/python -m bench.webhooks [--events 20000] [--runs 3]

A real redis-server on a free port, a fresh SQLite file with one account per endpoint, and
bench.webhook_sink in its own process. Each run XADDs the events first, then times the sender
from start until every entry is acknowledged. Prints, per scenario, the median deliveries/s.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from typing import Any, cast

from bridge.config import Config
from bridge.redis import keys
from bridge.storage.accounts import create_account
from bridge.storage.db import Database, upgrade
from bridge.webhooks.events import encode_event
from bridge.webhooks.secret_cache import SecretCache
from bridge.webhooks.sender import Sender
from tests.harness.redis_server import redis_server

SCENARIOS = [  # (name, endpoints, per-endpoint concurrency)
    ("1 endpoint, 4 in flight (default cap)", 1, 4),
    ("1 endpoint, 16 in flight", 1, 16),
    ("8 endpoints, 4 in flight each", 8, 4),
]


class _Hasher:
    def hash(self, password: str) -> str:
        return "x"


@contextlib.contextmanager
def sink(ports: int):
    proc = subprocess.Popen(
        [sys.executable, "-m", "bench.webhook_sink", "--ports", str(ports)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        yield proc, json.loads(proc.stdout.readline())["ports"]
    finally:
        proc.terminate()
        proc.wait(10)


def run_once(redis, db, accounts, ports, concurrency, events) -> tuple[float, float]:
    """(deliveries per second, CPU microseconds of this process per delivery)."""
    redis.delete(keys.webhooks_stream_key())
    pipe = redis.pipeline(transaction=False)
    body = json.dumps({"type": "message.delivered", "data": {"id": "x" * 26, "state": "ok"}})
    for i in range(events):
        n = i % len(ports)
        url = f"http://127.0.0.1:{ports[n]}/hook"
        pipe.xadd(
            keys.webhooks_stream_key(), encode_event(f"evt_{i}", accounts[n], url, "message", body)
        )
        if i % 1000 == 999:
            pipe.execute()
    pipe.execute()
    config = Config(
        database_url=db.url,
        redis_url=None,  # the Sender is handed its client
        webhook_allow_networks=("127.0.0.0/8",),
        webhook_endpoint_concurrency=concurrency,
    )
    sender = Sender(config, redis, SecretCache(db))
    started, cpu = time.perf_counter(), time.process_time()
    sender.start()
    try:
        deadline = time.monotonic() + 600
        while redis.xlen(keys.webhooks_stream_key()) and time.monotonic() < deadline:
            time.sleep(0.01)
        took = time.perf_counter() - started
        cpu = time.process_time() - cpu
    finally:
        sender.stop()
    if redis.xlen(keys.webhooks_stream_key()):
        raise SystemExit("the sender did not finish within 600 s")
    return events / took, cpu / events * 1e6


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp, redis_server(tmp) as server:
        url = f"sqlite:///{tmp}/bench.db"
        upgrade(url)
        db = Database(url)
        redis = server.client()
        with db.begin() as conn:
            accounts = [
                create_account(
                    conn, cast(Any, _Hasher()), f"a{i}", "pw", now=datetime.now(UTC), currency="KES"
                )
                for i in range(8)
            ]
        for name, endpoints, concurrency in SCENARIOS:
            with sink(endpoints) as (proc, ports):
                runs = [
                    run_once(redis, db, accounts, ports, concurrency, args.events)
                    for _ in range(args.runs)
                ]
                rates, cpu = [r for r, _ in runs], [c for _, c in runs]
                proc.terminate()
                counted = json.loads(proc.stdout.readline())["count"]
            if counted < args.events * args.runs:
                raise SystemExit(f"{name}: the sink counted {counted} requests, fewer than sent")
            rows.append((name, statistics.median(rates), min(rates), statistics.median(cpu)))
        redis.close()
        db.dispose()
    load = os.getloadavg()[0]
    print(
        f"webhook deliveries/s, {args.events} events x {args.runs} runs, nproc {os.cpu_count()},"
        f" load average {load:.1f}"
    )
    print(f"{'scenario':<40} {'median/s':>9} {'min/s':>9} {'CPU us/delivery':>16}")
    for name, median, low, cpu_us in rows:
        print(f"{name:<40} {median:>9,.0f} {low:>9,.0f} {cpu_us:>16,.0f}")
    print("(CPU: the sender's process (bench included), not the sink's or redis-server's)")


if __name__ == "__main__":
    main()
