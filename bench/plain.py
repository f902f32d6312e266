"""Plain clients against the whole bridge delivering: where each message's CPU goes, end to end.

The load is what a simple client does: one thread and one keep-alive ``http.client``
HTTPConnection per concurrent client, form-encoded POSTs to /api/v2/sms/send with X-API-Key, one
recipient each, closed loop, until --requests are answered (``--loadgen asyncio``: the benches'
cheap asyncio generator, tests/harness/loadgen.py, for the side-by-side). Meanwhile the whole
bridge delivers: `smpp-bridge run --no-demo` in a temp var dir (embedded redis-server, gunicorn
API, one worker process, the webhook sender) bound to a simulated SMSC that this script starts
itself (`smpp-bridge simulator`, receipts at once) and names in an [[smsc]] table with 2 binds at
window 100 (the connection `run` makes for its own simulator has window 50). The account's rate
limit is 100,000,000/min: the limiter still runs, it never refuses.

Per run: accepted req/s and p50/p99 request latency, non-200 answers, msg/s from the first
request to the last `delivered` event, and CPU seconds (user + system, from /proc) of each kind
of process over the run, from the first request until every accepted message is delivered, with
µs of CPU per delivered message. The load generator's CPU is this process's own during the load.

Usage: .venv/bin/python -m bench.plain [--connections 8,32,64,128] [--requests 5000] [--runs 1]
       [--database sqlite|postgresql] [--loadgen plain|asyncio|both] [--warmup 200]
       [--api 2x8:balanced]   (the API's gunicorn shape; bench/floor.py has the HTTP floor)
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import http.client
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from pathlib import Path

from bench.e2e import Bridge, measure, wait_delivered
from tests.harness import loadgen, procstat
from tests.harness.procs import stop_process
from tests.harness.simproc import start_simulator

PATH = "/api/v2/sms/send"
TEXT = "Benchmark message, one part."
KINDS = ("api", "worker", "redis-server", "simulator", "webhooks", "run", "loadgen")


# ---------------------------------------------------------------------- load generators


def bodies(count: int, start: int) -> list[str]:
    """Form bodies of one distinct recipient each."""
    return [
        urllib.parse.urlencode({"numbers": f"07{(start + i) % 10**8:08d}", "message_body": TEXT})
        for i in range(count)
    ]


def _client(port: int, key: str, work: list[str], next_index, out: loadgen.Outcome) -> None:
    """One plain client: its own keep-alive connection, requests one after another."""
    headers = {"X-API-Key": key, "Content-Type": "application/x-www-form-urlencoded"}
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        while (i := next_index()) is not None:
            start = time.perf_counter()
            try:
                conn.request("POST", PATH, work[i], headers)
                resp = conn.getresponse()
                answer = resp.read()
            except (OSError, http.client.HTTPException) as exc:
                out.errors.append(f"{type(exc).__name__}: {exc}")
                conn.close()  # the next request opens a new connection
                continue
            out.latencies.append(time.perf_counter() - start)
            if resp.status != 200:
                out.errors.append(f"{resp.status} {answer[:200]!r}")
    finally:
        conn.close()


def plain_load(port: int, key: str, work: list[str], connections: int) -> loadgen.Outcome:
    """``connections`` threads with one HTTPConnection each share out ``work``."""
    out = loadgen.Outcome()
    lock = threading.Lock()
    taken = iter(range(len(work)))

    def next_index() -> int | None:
        with lock:
            return next(taken, None)

    threads = [
        threading.Thread(target=_client, args=(port, key, work, next_index, out), daemon=True)
        for _ in range(connections)
    ]
    cpu = time.process_time()
    for t in threads:
        t.start()
    for t in threads:
        t.join(600)
        if t.is_alive():
            raise TimeoutError("a client thread still runs after 600 s")
    out.cpu_seconds = time.process_time() - cpu
    return out


def asyncio_load(port: int, key: str, work: list[str], connections: int) -> loadgen.Outcome:
    ctype = "application/x-www-form-urlencoded"
    raw = [loadgen.post(port, PATH, key, body.encode(), ctype) for body in work]
    return loadgen.run_all(port, raw, connections)


LOADGENS = {"plain": plain_load, "asyncio": asyncio_load}


# ---------------------------------------------------------------------- the bridge's processes


def start_smsc(var: Path, stack: contextlib.ExitStack) -> tuple[subprocess.Popen, Path]:
    """The simulated SMSC (receipts at once) and a config naming it: 2 binds, window 100."""
    proc, (host, port) = start_simulator(["--system-id", "bridge", "--password", "bridge"])
    stack.callback(stop_process, proc, 10)
    toml = var / "bench.toml"
    toml.write_text(
        "[worker]\nprocesses = 1\n\n[[smsc]]\n"
        f'name = "sim"\nhost = "{host}"\nport = {port}\n'
        'system_id = "bridge"\npassword = "bridge"\n'
        'binds = 2\nwindow = 100\nmessage_id_form = "dec"\n'
    )
    return proc, toml


def process_sets(bridge: Bridge, smsc: subprocess.Popen) -> dict[str, list[int]]:
    """The pids of each kind of process, children included (gunicorn's workers)."""
    assert bridge.proc is not None  # started
    roots = {name: bridge.pid_of(name) for name in ("api", "worker", "redis-server", "webhooks")}
    sets = {name: [pid, *procstat.children(pid, recursive=True)] for name, pid in roots.items()}
    for extra in ("webhooks-2", "webhooks-3"):  # webhook_processes: every sender in one column
        with contextlib.suppress(KeyError):
            sets["webhooks"].append(bridge.pid_of(extra))
    sets["simulator"] = [smsc.pid]
    sets["run"] = [bridge.proc.pid]  # the supervisor alone
    return sets


def cpu_now(sets: dict[str, list[int]]) -> dict[str, float]:
    return {name: procstat.cpu_seconds(pids) for name, pids in sets.items()}


# ---------------------------------------------------------------------- one run


def one_run(bridge, key, sets, loadgen_name: str, connections: int, work: list[str]) -> dict:
    """Load ``work``, wait until every accepted message is delivered; the run's figures."""
    load_before = os.getloadavg()[0]
    cpu_before = cpu_now(sets)
    since = time.time()
    out = LOADGENS[loadgen_name](bridge.port, key, work, connections)
    load_seconds = time.time() - since
    accepted = len(out.latencies) - sum(e[:3].isdigit() for e in out.errors)
    wait_delivered(bridge.database_url, since, accepted, timeout=900)
    cpu_after = cpu_now(sets)
    e2e = measure(bridge.database_url, since)
    cpu = {name: cpu_after[name] - cpu_before[name] for name in sets}
    cpu["loadgen"] = out.cpu_seconds
    lat = sorted(out.latencies)
    return {
        "rps": accepted / load_seconds,
        "p50": lat[len(lat) // 2] * 1000,
        "p99": lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1000,
        "errors": len(out.errors),
        "error_sample": out.errors[:3],
        "delivered": e2e["messages"],
        "e2e": e2e["rate"],
        "e2e_seconds": e2e["seconds"],
        "cpu": cpu,
        "load": (load_before, os.getloadavg()[0]),
    }


def median_of(runs: list[dict]) -> dict:
    keys = ("rps", "p50", "p99", "e2e", "e2e_seconds", "delivered")
    med = {k: statistics.median(r[k] for r in runs) for k in keys}
    med["errors"] = sum(r["errors"] for r in runs)
    med["cpu"] = {k: statistics.median(r["cpu"][k] for r in runs) for k in KINDS}
    med["us"] = {
        k: statistics.median(r["cpu"][k] / max(r["delivered"], 1) * 1e6 for r in runs)
        for k in KINDS
    }
    med["load"] = (min(r["load"][0] for r in runs), max(r["load"][1] for r in runs))
    return med


# ---------------------------------------------------------------------- report


def tables(rows: list[tuple[str, int, dict]]) -> str:
    head = (
        "| load generator | conns | accepted req/s | p50 ms | p99 ms | errors "
        "| delivered msg/s e2e | s to all delivered |\n|---|---|---|---|---|---|---|---|\n"
    )
    first = "".join(
        f"| {gen} | {conns} | {m['rps']:,.0f} | {m['p50']:.1f} | {m['p99']:.1f} | "
        f"{m['errors']} | {m['e2e']:,.0f} | {m['e2e_seconds']:.1f} |\n"
        for gen, conns, m in rows
    )
    names = " | ".join(KINDS)
    cpu_head = (
        f"\nCPU µs per delivered message (CPU seconds over the run):\n\n"
        f"| load generator | conns | {names} | total |\n|---|---|{'---|' * (len(KINDS) + 1)}\n"
    )
    second = "".join(
        f"| {gen} | {conns} | "
        + " | ".join(f"{m['us'][k]:,.0f} ({m['cpu'][k]:.2f})" for k in KINDS)
        + f" | {sum(m['us'].values()):,.0f} ({sum(m['cpu'].values()):.2f}) |\n"
        for gen, conns, m in rows
    )
    return head + first + cpu_head + second


def header(args, bridge: Bridge, sets: dict[str, list[int]]) -> str:
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
    ).stdout.strip()
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=no"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    return (
        f"date {now}, nproc {os.cpu_count()}, commit {commit}{' (+ uncommitted edits)' * bool(dirty)}"
        f", {args.database}, API: gunicorn {args.api} ({len(sets['api']) - 1} workers), 1 worker process "
        f"(2 binds, window 100), {args.requests} requests per run, medians of {args.runs} run(s)"
    )


API_CLASSES = {
    "balanced": "api.balanced_worker.BalancedThreadWorker",
    "intake": "api.intake.IntakeThreadWorker",
    "gthread": "gthread",
    "sync": "sync",
}


def api_env(shape: str) -> dict[str, str]:
    """``2x8:balanced`` -> the BRIDGE_API_* variables of that shape."""
    size, _, kind = shape.partition(":")
    workers, _, threads = size.partition("x")
    if kind not in API_CLASSES or not workers.isdigit() or not threads.isdigit():
        raise SystemExit(
            f"--api {shape!r}: WORKERSxTHREADS:CLASS, CLASS one of {list(API_CLASSES)}"
        )
    return {
        "BRIDGE_API_WORKERS": workers,
        "BRIDGE_API_THREADS": threads,
        "BRIDGE_API_WORKER_CLASS": API_CLASSES[kind],
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--connections", default="8,32,64,128", help="comma-separated counts")
    parser.add_argument("--requests", type=int, default=5000, help="requests per run")
    parser.add_argument("--runs", type=int, default=1, help="runs per row (medians)")
    parser.add_argument("--database", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--loadgen", choices=("plain", "asyncio", "both"), default="plain")
    parser.add_argument(
        "--warmup", type=int, default=200, help="unmeasured requests first (delivered too)"
    )
    parser.add_argument(
        "--api",
        default="2x8:balanced",
        help="the API's shape, WORKERSxTHREADS:CLASS (balanced, intake, gthread or sync; "
        "BRIDGE_API_WORKERS, BRIDGE_API_THREADS, BRIDGE_API_WORKER_CLASS)",
    )
    args = parser.parse_args()
    counts = [int(c) for c in args.connections.split(",")]
    gens = ("plain", "asyncio") if args.loadgen == "both" else (args.loadgen,)
    with contextlib.ExitStack() as stack:
        var = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="sb-plain-")))
        url = None
        if args.database == "postgresql":
            from tests.harness.postgres import postgres_cluster

            url = stack.enter_context(postgres_cluster()).create_database()
        smsc, toml = start_smsc(var, stack)
        bridge = Bridge(var, url)
        bridge.env["BRIDGE_CONFIG"] = str(toml)
        bridge.env.update(api_env(args.api))
        stack.callback(bridge.stop)
        key = bridge.start()
        sets = process_sets(bridge, smsc)
        start = 0
        if args.warmup:
            one_run(
                bridge,
                key,
                process_sets(bridge, smsc),
                gens[0],
                counts[0],
                bodies(args.warmup, start),
            )
            start += args.warmup
        rows = []
        for conns in counts:
            for gen in gens:
                runs = []
                for n in range(args.runs):
                    sets = process_sets(bridge, smsc)  # a restarted child's new pid
                    r = one_run(bridge, key, sets, gen, conns, bodies(args.requests, start))
                    start += args.requests
                    runs.append(r)
                    print(
                        f"  {gen} {conns} conns run {n + 1}: {r['rps']:,.0f} req/s, p50 "
                        f"{r['p50']:.1f} ms, p99 {r['p99']:.1f} ms, errors {r['errors']} "
                        f"{r['error_sample']}, {r['e2e']:,.0f} msg/s e2e, load average "
                        f"{r['load'][0]:.1f}->{r['load'][1]:.1f}",
                        flush=True,
                    )
                rows.append((gen, conns, median_of(runs)))
        print("\n" + header(args, bridge, sets))
    loads = [x for _, _, m in rows for x in m["load"]]
    print(f"load average (1 min) during the runs: {min(loads):.1f}-{max(loads):.1f}\n")
    print(tables(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
