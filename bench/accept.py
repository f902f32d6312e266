"""HTTP accept path under gunicorn: requests/s, recipients/s and latency of /api/v2/sms/send.

Starts an embedded redis-server and a SQLite database in a temp dir (or --postgres: a throwaway
cluster as the tests use), a funded account with an API key and no rate limit to speak of, and
gunicorn with the API (api.gunicorn_conf, like `smpp-bridge run`). A load generator in separate
processes (asyncio, keep-alive connections, closed loop, 127.0.0.1 only, bounded by time) posts
(a) one recipient per request and (b) 1,000 recipients per request, and the script prints
requests/s, recipients/s, p50/p99 latency and the CPU time the server and the generator used.

Usage: .venv/bin/python -m bench.accept [--seconds 8] [--runs 3] [--workers 2] [--threads 8]
       [--connections 8,16,32] [--bulk-connections 2] [--generators 1] [--worker-class gthread]
       [--floor] [--only single|bulk] [--postgres] [--profile DIR]
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import multiprocessing
import os
import statistics
import subprocess
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path

from bridge.config import Config
from bridge.redis.embedded import EmbeddedRedis, free_port
from bridge.service import BridgeService
from bridge.storage.db import Database, upgrade
from tests.harness import loadgen, procstat
from tests.harness.procs import connections_to, stop_process

ROOT = Path(__file__).resolve().parent.parent  # gunicorn runs from the repository root
PATH = "/api/v2/sms/send"
TEXT = "Benchmark message, one part."


# ------------------------------------------------------------------ load generator (child)
def _request(port: int, key: str, numbers: list[str]) -> bytes:
    if not numbers:  # the HTTP floor: a static page through the same stack, no domain work
        return loadgen.get(port, "/api/oauth2-callback")
    body = json.dumps({"numbers": ",".join(numbers), "message_body": TEXT}).encode()
    return loadgen.post(port, PATH, key, body, "application/json")


def generator(
    port: int, key: str, numbers: list[str], connections: int, warmup: float, seconds: float, out
) -> None:
    """One load-generator process: ``connections`` closed-loop keep-alive clients."""
    outcome = loadgen.run_for(port, _request(port, key, numbers), connections, warmup, seconds)
    out.put((outcome.latencies, outcome.errors, outcome.cpu_seconds))


# ------------------------------------------------------------------ server side
def _answers(port: int) -> bool:
    with contextlib.suppress(OSError):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        conn.request("GET", "/api/v2/openapi.json")
        ok = conn.getresponse().status == 200
        conn.close()
        return ok
    return False


@contextlib.contextmanager
def gunicorn(env: dict[str, str], port: int, workers: int):
    proc = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", "python:api.gunicorn_conf", "api.wsgi:app"],
        env=env,
        cwd=ROOT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not (_answers(port) and len(procstat.children(proc.pid)) >= workers):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("gunicorn did not start; see its output above")
            time.sleep(0.1)
        yield proc
    finally:
        stop_process(proc, 20)


def run_load(
    args, port: int, key: str, numbers: list[str], connections: int, server_pid: int, redis_pid: int
) -> dict:
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    per = max(1, connections // args.generators)
    procs = [
        ctx.Process(
            target=generator, args=(port, key, numbers, per, args.warmup, args.seconds, out)
        )
        for _ in range(args.generators)
    ]
    for p in procs:
        p.start()
    time.sleep(args.warmup)
    server = [server_pid, *procstat.children(server_pid)]
    split = ":".join(str(connections_to(pid, port)) for pid in server[1:])
    spies = _profile(args, server[1:], len(numbers))
    cpu0, redis0 = procstat.cpu_seconds(server), procstat.cpu_seconds([redis_pid])
    results = [out.get(timeout=args.warmup + args.seconds + 120) for _ in procs]
    server_cpu = procstat.cpu_seconds(server) - cpu0
    redis_cpu = procstat.cpu_seconds([redis_pid]) - redis0
    for spy in spies:
        spy.wait(60)
    for p in procs:
        p.join(30)
    latencies = sorted(x for r in results for x in r[0])
    errors = [e for r in results for e in r[1]]
    n = len(latencies)
    return {
        "rps": n / args.seconds,
        "recipients": n * max(1, len(numbers)) / args.seconds,
        "p50": latencies[n // 2] * 1000 if n else float("nan"),
        "p99": latencies[min(n - 1, int(n * 0.99))] * 1000 if n else float("nan"),
        "errors": len(errors),
        "split": split,
        "server_cpu_ms": server_cpu * 1000 / max(n, 1),
        "redis_cpu_ms": redis_cpu * 1000 / max(n, 1),
        "gen_cpu_ms": sum(r[2] for r in results) * 1000 / max(n, 1),
    }


def _profile(args, workers: list[int], recipients: int) -> list[subprocess.Popen]:
    """With --profile DIR: py-spy samples each worker for the measured window (collapsed
    stacks, one file per worker; summarise with .venv/bin/python -m bench.tools.profile_top)."""
    if not args.profile:
        return []
    Path(args.profile).mkdir(parents=True, exist_ok=True)
    spy = str(Path(sys.executable).parent / "py-spy")
    return [
        subprocess.Popen(
            [
                spy,
                "record",
                "--pid",
                str(pid),
                "--duration",
                str(int(args.seconds)),
                "--rate",
                "250",
                "--format",
                "raw",
                "--gil",
                "--nonblocking",
                "--output",
                f"{args.profile}/worker-{pid}-{recipients}.txt",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for pid in workers
    ]


def _median_row(name: str, runs: list[dict]) -> str:
    med = {k: statistics.median(r[k] for r in runs) for k in runs[0] if k != "split"}
    spread = f"{min(r['rps'] for r in runs):,.0f}-{max(r['rps'] for r in runs):,.0f}"
    return (
        f"| {name} | {med['rps']:,.0f} ({spread}) | {med['recipients']:,.0f} | "
        f"{med['p50']:.1f} | {med['p99']:.1f} | {med['server_cpu_ms']:.2f} | "
        f"{med['redis_cpu_ms']:.2f} | {med['gen_cpu_ms']:.2f} | "
        f"{sum(r['errors'] for r in runs)} |"
    )


def setup_account(url: str, redis_url: str) -> str:
    upgrade(url)
    db = Database(url)
    service = BridgeService(
        Config(database_url=url, redis_url=redis_url), db, None, run_sweeper=False
    )
    try:
        account = service.create_account(
            f"bench{os.getpid()}",
            "bench-password",
            balance=Decimal(1000000000000),
            rate_limit_per_minute=1_000_000_000,
        )
        return service.generate_key(account.id, expiry_days=1).api_key
    finally:
        service.close()


def server_env(tmp: str, url: str, redis_url: str, port: int, args, **extra: str) -> dict:
    """The environment of the benchmarked gunicorn: our database, Redis, port, worker counts
    (``args.workers``, ``args.threads``) and quiet logs, plus ``extra``."""
    return {
        **os.environ,
        "DATABASE_URL": url,
        "REDIS_URL": redis_url,
        "BRIDGE_PORT": str(port),
        "BRIDGE_HOST": "127.0.0.1",
        "BRIDGE_API_WORKERS": str(args.workers),
        "BRIDGE_API_THREADS": str(args.threads),
        "BRIDGE_LOG_LEVEL": "warning",
        "BRIDGE_VAR_DIR": str(Path(tmp) / "var"),
        **extra,
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=8.0, help="measured seconds per run")
    parser.add_argument("--warmup", type=float, default=2.0, help="unmeasured seconds first")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2, help="gunicorn worker processes")
    parser.add_argument(
        "--threads",
        type=int,
        default=8,
        help="threads per gthread worker (the BRIDGE_API_THREADS default)",
    )
    parser.add_argument(
        "--worker-class",
        default="api.balanced_worker.BalancedThreadWorker",
        help="gunicorn worker class (default: the API's; or gthread, sync)",
    )
    parser.add_argument(
        "--connections",
        default="8,16,32",
        help="clients for (a): one row per count, comma-separated",
    )
    parser.add_argument("--bulk-connections", type=int, default=2, help="clients for (b)")
    parser.add_argument("--generators", type=int, default=1, help="load generator processes")
    parser.add_argument("--only", choices=["single", "bulk"], help="run one scenario")
    parser.add_argument("--postgres", action="store_true", help="a throwaway PostgreSQL")
    parser.add_argument("--profile", metavar="DIR", help="py-spy the workers into DIR")
    parser.add_argument(
        "--floor",
        action="store_true",
        help="also time a static page (gunicorn + falcon + middleware only)",
    )
    args = parser.parse_args()
    with contextlib.ExitStack() as stack:
        tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix="sb-bench-"))
        redis = stack.enter_context(EmbeddedRedis(Path(tmp) / "var"))
        assert redis.proc is not None  # started by entering the context
        redis_pid = redis.proc.pid
        url = f"sqlite:///{tmp}/bench.db"
        if args.postgres:
            from tests.harness.postgres import postgres_cluster

            url = stack.enter_context(postgres_cluster()).create_database()
        key = setup_account(url, redis.url)
        port = free_port()
        env = server_env(tmp, url, redis.url, port, args, BRIDGE_API_WORKER_CLASS=args.worker_class)
        server = stack.enter_context(gunicorn(env, port, args.workers))
        counts = [int(c) for c in str(args.connections).split(",")]
        scenarios = [("(a) 1 recipient/request", ["0701234567"], c) for c in counts]
        if args.only != "single":
            scenarios.append(
                (
                    "(b) 1,000 recipients/request",
                    [f"07{i:08d}" for i in range(1000)],
                    args.bulk_connections,
                )
            )
        if args.only == "bulk":
            scenarios = scenarios[-1:]
        if args.floor:
            scenarios.insert(0, ("(0) HTTP floor: GET /api/oauth2-callback", [], counts[0]))
        rows = []
        for name, numbers, connections in scenarios:
            runs = [
                run_load(args, port, key, numbers, connections, server.pid, redis_pid)
                for _ in range(args.runs)
            ]
            for r in runs:
                print(
                    f"  {name}: {r['rps']:,.0f} req/s, {r['recipients']:,.0f} recipients/s, "
                    f"p50 {r['p50']:.1f} ms, p99 {r['p99']:.1f} ms, errors {r['errors']}, "
                    f"connections per worker {r['split']}",
                    flush=True,
                )
            rows.append(_median_row(f"{name}, {connections} conns", runs))
    db_name = "PostgreSQL" if args.postgres else "SQLite (WAL)"
    print(
        f"\nnproc {os.cpu_count()}, {db_name}, gunicorn {args.worker_class.rsplit('.', 1)[-1]} "
        f"{args.workers} workers x {args.threads} threads, {args.generators} generator "
        f"process(es), medians of {args.runs} runs of {args.seconds:.0f} s\n"
    )
    print(
        "| scenario | req/s (range) | recipients/s | p50 ms | p99 ms | API CPU ms/req "
        "| Redis CPU ms/req | generator CPU ms/req | non-200 |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    print("\n".join(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
