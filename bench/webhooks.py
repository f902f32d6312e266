"""Webhook deliveries per second: the real Sender (signing, SSRF check, kept-alive urllib3
connections, Redis outcome + attempt record per event) against a local keep-alive sink.

    .venv/bin/python -m bench.webhooks [--events 20000] [--runs 3] [--processes 1,2,3]
        [--endpoints 1] [--cap 4] [--no-in-process]

A real redis-server on a free port, a fresh SQLite file with one account per endpoint, and
bench.webhook_sink in its own process. In-process scenarios (SCENARIOS): each run XADDs the
events first, then times one Sender from its start until every entry is acknowledged; CPU is
this process's. ``--processes``: real `smpp-bridge webhooks` processes (N of them sharing the
consumer group, ``--endpoints`` sink ports, ``--cap`` in flight per endpoint per process), timed
from the first XADD until every entry is acknowledged; CPU is the sender processes' and
redis-server's. Runs of the process counts are interleaved. Prints, per scenario, the median
deliveries/s.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

from bridge.config import Config
from bridge.redis import keys
from bridge.storage.accounts import create_account
from bridge.storage.db import Database, upgrade
from bridge.webhooks.events import encode_event
from bridge.webhooks.secret_cache import SecretCache
from bridge.webhooks.sender import Sender
from tests.harness import procstat
from tests.harness.procs import stop_process, wait_until
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
    publish(redis, accounts, ports, events)
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


def publish(redis, accounts, ports, events) -> None:
    """XADD ``events`` events round-robin over the sink's ports, 1,000 per pipeline."""
    pipe = redis.pipeline(transaction=False)
    body = json.dumps({"type": "message.delivered", "data": {"id": "x" * 26, "state": "ok"}})
    for i in range(events):
        n = i % len(ports)
        url = f"http://127.0.0.1:{ports[n]}/hook"
        pipe.xadd(
            keys.webhooks_stream_key(),
            encode_event(f"evt_{i}", accounts[n], url, "message", body, f"msg_{i}"),
        )
        if i % 1000 == 999:
            pipe.execute()
    pipe.execute()


def run_processes(
    server, db, accounts, ports, processes, cap, events, var
) -> tuple[float, float, float]:
    """``processes`` real `smpp-bridge webhooks` processes: (deliveries per second, their CPU
    microseconds per delivery, redis-server's CPU microseconds per delivery)."""
    redis = server.client()
    redis.delete(keys.webhooks_stream_key())
    env = {k: v for k, v in os.environ.items() if not k.startswith("BRIDGE_")}
    env.update(
        DATABASE_URL=db.url,
        REDIS_URL=server.url,
        BRIDGE_VAR_DIR=str(var),
        BRIDGE_WEBHOOK_ALLOW_NETWORKS="127.0.0.0/8",
        BRIDGE_WEBHOOK_ENDPOINT_CONCURRENCY=str(cap),
    )
    argv = [sys.executable, "-m", "bridge.cli", "webhooks"]
    logs = [var / f"sender-{i}.log" for i in range(processes)]
    procs = []
    for i, path in enumerate(logs):
        with path.open("wb") as log:
            procs.append(
                subprocess.Popen(
                    [*argv, "--consumer", f"bench-{i}"],
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            )
    try:
        wait_until(  # each has made the group and started reading
            lambda: all(b"webhook sender" in p.read_bytes() for p in logs),
            timeout=60,
            message="the senders to start",
        )
        pids, redis_pid = [p.pid for p in procs], cast(Any, server.proc).pid
        cpu, redis_cpu = procstat.cpu_seconds(pids), procstat.cpu_seconds([redis_pid])
        started = time.perf_counter()
        publish(redis, accounts, ports, events)
        wait_until(
            lambda: not redis.xlen(keys.webhooks_stream_key()),
            timeout=600,
            interval=0.01,
            message="every entry acknowledged",
        )
        took = time.perf_counter() - started
        cpu = procstat.cpu_seconds(pids) - cpu
        redis_cpu = procstat.cpu_seconds([redis_pid]) - redis_cpu
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in procs:
            stop_process(proc, 30)
        redis.close()
    return events / took, cpu / events * 1e6, redis_cpu / events * 1e6


def _counts(raw: str) -> list[int]:
    try:
        counts = [int(x) for x in raw.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"a comma-separated list of counts, got {raw!r}") from None
    if not counts or min(counts) < 1:
        raise argparse.ArgumentTypeError(f"counts must be at least 1, got {raw!r}")
    return counts


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--processes",
        type=_counts,
        default=[],
        metavar="N,N,...",
        help="also time this many `smpp-bridge webhooks` processes, e.g. 1,2,3 (interleaved)",
    )
    parser.add_argument("--endpoints", type=int, default=1, help="sink ports (--processes)")
    parser.add_argument(
        "--cap", type=int, default=Config().webhook_endpoint_concurrency, help="per endpoint"
    )
    parser.add_argument(
        "--no-in-process", action="store_true", help="only the --processes scenarios"
    )
    args = parser.parse_args()
    rows: list[tuple[str, float, float, float, float | None]] = []
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
                for i in range(max(8, args.endpoints))
            ]
        for name, endpoints, concurrency in [] if args.no_in_process else SCENARIOS:
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
            rows.append((name, statistics.median(rates), min(rates), statistics.median(cpu), None))
        if args.processes:
            with sink(args.endpoints) as (proc, ports):
                got: dict[int, list[tuple[float, float, float]]] = {n: [] for n in args.processes}
                for _ in range(args.runs):
                    for n in args.processes:
                        got[n].append(
                            run_processes(
                                server, db, accounts, ports, n, args.cap, args.events, Path(tmp)
                            )
                        )
                proc.terminate()
                counted = json.loads(proc.stdout.readline())["count"]
            if counted < args.events * args.runs * len(args.processes):
                raise SystemExit(f"the sink counted {counted} requests, fewer than sent")
            for n, timed in got.items():
                rates = [r[0] for r in timed]
                rows.append(
                    (
                        f"{n} process(es), {args.endpoints} endpoint(s), cap {args.cap}",
                        statistics.median(rates),
                        min(rates),
                        statistics.median(r[1] for r in timed),
                        statistics.median(r[2] for r in timed),
                    )
                )
        redis.close()
        db.dispose()
    load = os.getloadavg()[0]
    print(
        f"webhook deliveries/s, {args.events} events x {args.runs} runs, nproc {os.cpu_count()},"
        f" load average {load:.1f}"
    )
    print(f"{'scenario':<40} {'median/s':>9} {'min/s':>9} {'CPU us/delivery':>16} {'redis us':>9}")
    for name, median, low, cpu_us, redis_us in rows:
        shown = "" if redis_us is None else f"{redis_us:,.0f}"
        print(f"{name:<40} {median:>9,.0f} {low:>9,.0f} {cpu_us:>16,.0f} {shown:>9}")
    print(
        "(CPU: in-process rows, the bench's process with its Sender; process rows, the sender"
        " processes'; redis us: redis-server's; not the sink's)"
    )


if __name__ == "__main__":
    main()
