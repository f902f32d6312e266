"""The HTTP floor: what the plain client costs against a server that does nothing, per shape.

Issue 13 asks for >= 3,500 accepted one-recipient requests/s from a thread-per-connection
``http.client`` generator (bench/plain.py) on this 2-core machine. This measures how much of the
two cores that load leaves for the bridge, and what gunicorn alone costs per request in each
worker shape the issue names, before any of our code runs: a falcon app whose one responder
reads the same form body (``numbers``, ``message_body``) and answers a JSON of the send answer's
size, served by gunicorn in each ``--shapes`` entry, loaded by bench/plain.py's own clients.

Shapes are ``WORKERSxTHREADS[:CLASS]`` with CLASS one of ``gthread`` (gunicorn's), ``intake``
(api.intake.IntakeThreadWorker: requests read whole by the loop), ``balanced``
(api.balanced_worker.BalancedThreadWorker, the bridge's default; without the board of
api/gunicorn_conf.py it cannot spread connections, so its lingering threads are what it adds
here) or ``sync``; and, for the side by side with servers outside the stack, ``granian`` (the
same WSGI app under granian's Rust HTTP server, THREADS blocking threads per worker) and
``uvicorn`` (a falcon.asgi twin of the app under uvicorn with httptools and uvloop; THREADS is
ignored). Those two need ``--alt-python``: a venv that has them, made with
``python3 -m venv /tmp/altvenv && /tmp/altvenv/bin/pip install falcon granian 'uvicorn[standard]'``
(they are not the project's dependencies). Per shape: req/s, p50/p99, the server's CPU per request (master and workers,
from /proc) and the load generator's (this process's CPU during the load).

Usage: .venv/bin/python -m bench.floor [--shapes 2x8:balanced,2x8:gthread,4x4:gthread,4x1:sync]
       [--connections 32] [--requests 10000] [--runs 3]
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.plain import API_CLASSES, bodies, plain_load
from tests.harness import procstat
from tests.harness.procs import free_port, stop_process, wait_until

CLASSES = API_CLASSES  # gunicorn worker classes by short name, as bench.plain --api takes them
OUTSIDE = ("granian", "uvicorn")  # servers that are not in the stack: --alt-python

APP = """
import json
import falcon

ANSWER = json.dumps({"status": "success", "message": "Message sent successfully.",
    "batch_id": "x" * 26, "messages": [{"message_id": "y" * 26, "number": "+447700900000",
    "status": "queued", "status_url": "/api/v2/sms/" + "y" * 26}], "cost": 0.05,
    "currency": "EUR", "balance": 100.0})

class Send:
    def on_post(self, req, resp):
        form = falcon.uri.parse_query_string(req.bounded_stream.read().decode())
        if not form.get("numbers") or not form.get("message_body"):
            raise falcon.HTTPBadRequest(title="numbers and message_body are required")
        resp.text = ANSWER
        resp.content_type = falcon.MEDIA_JSON

app = falcon.App()
app.add_route("/api/v2/sms/send", Send())
"""

ASGI_APP = """
import falcon
import falcon.asgi
from floor_app import ANSWER

class Send:
    async def on_post(self, req, resp):
        form = falcon.uri.parse_query_string((await req.stream.read()).decode())
        if not form.get("numbers") or not form.get("message_body"):
            raise falcon.HTTPBadRequest(title="numbers and message_body are required")
        resp.text = ANSWER
        resp.content_type = falcon.MEDIA_JSON

app = falcon.asgi.App()
app.add_route("/api/v2/sms/send", Send())
"""


def parse_shape(text: str) -> tuple[int, int, str]:
    size, _, kind = text.partition(":")
    workers, _, threads = size.partition("x")
    kind = kind or "gthread"
    if kind not in (*CLASSES, *OUTSIDE):
        raise SystemExit(
            f"unknown server {kind!r} in {text!r}: one of {', '.join((*CLASSES, *OUTSIDE))}"
        )
    return int(workers), int(threads or 1), kind


@contextlib.contextmanager
def serve(directory: Path, workers: int, threads: int, kind: str, alt_python: str | None):
    """The server with the trivial app on 127.0.0.1; yields (port, pids of it and its children)."""
    port = free_port()
    cmd = command(port, workers, threads, kind, alt_python)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(directory), os.getcwd()])}
    proc = subprocess.Popen(
        cmd, cwd=directory, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        wait_until(
            lambda: len(procstat.children(proc.pid)) >= workers and _answers(port),
            timeout=30,
            message=f"{kind} serving",
        )
        yield port, [proc.pid, *procstat.children(proc.pid, recursive=True)]
    finally:
        stop_process(proc, 10)


def command(port: int, workers: int, threads: int, kind: str, alt_python: str | None) -> list[str]:
    if kind in CLASSES:
        return [
            sys.executable, "-m", "gunicorn", "-b", f"127.0.0.1:{port}", "-w", str(workers),
            "--threads", str(threads), "-k", CLASSES[kind], "--keep-alive", "75",
            "--log-level", "warning", "floor_app:app",
        ]  # fmt: skip
    if alt_python is None:
        raise SystemExit(f"{kind} needs --alt-python (see the module's docstring)")
    if kind == "granian":
        return [
            alt_python, "-m", "granian", "--interface", "wsgi", "--host", "127.0.0.1",
            "--port", str(port), "--workers", str(workers), "--blocking-threads", str(threads),
            "--log-level", "warning", "floor_app:app",
        ]  # fmt: skip
    return [
        alt_python, "-m", "uvicorn", "--host", "127.0.0.1", "--port", str(port),
        "--workers", str(workers), "--http", "httptools", "--loop", "uvloop",
        "--log-level", "warning", "--no-access-log", "floor_asgi:app",
    ]  # fmt: skip


def _answers(port: int) -> bool:
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
    try:
        conn.request("POST", "/api/v2/sms/send", "numbers=1&message_body=x")
        return conn.getresponse().status == 200
    except OSError:
        return False
    finally:
        conn.close()


def one_run(port: int, pids: list[int], connections: int, requests: int, start: int) -> dict:
    cpu = procstat.cpu_seconds(pids)
    since = time.perf_counter()
    out = plain_load(port, "floor", bodies(requests, start), connections)
    seconds = time.perf_counter() - since
    server = procstat.cpu_seconds(pids) - cpu
    lat = sorted(out.latencies)
    return {
        "rps": len(lat) / seconds,
        "p50": lat[len(lat) // 2] * 1000,
        "p99": lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1000,
        "errors": len(out.errors),
        "server_us": server / max(len(lat), 1) * 1e6,
        "loadgen_us": out.cpu_seconds / max(len(lat), 1) * 1e6,
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--shapes", default="2x8:balanced,2x8:gthread,4x4:gthread,4x1:sync")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--requests", type=int, default=10000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--alt-python", help="a python with granian / uvicorn (docstring)")
    args = parser.parse_args()
    shapes = [s.strip() for s in args.shapes.split(",") if s.strip()]
    results: dict[str, list[dict]] = {s: [] for s in shapes}
    loads = []
    with tempfile.TemporaryDirectory(prefix="sb-floor-") as tmp:
        (Path(tmp) / "floor_app.py").write_text(APP)
        (Path(tmp) / "floor_asgi.py").write_text(ASGI_APP)
        start = 0
        for n in range(args.runs):  # shapes interleaved: run n of every shape, then n + 1
            for shape in shapes:
                with serve(Path(tmp), *parse_shape(shape), args.alt_python) as (port, pids):
                    plain_load(port, "floor", bodies(300, start), args.connections)  # warm-up
                    loads.append(os.getloadavg()[0])
                    r = one_run(port, pids, args.connections, args.requests, start)
                    start += args.requests
                    results[shape].append(r)
                    print(
                        f"  {shape} run {n + 1}: {r['rps']:,.0f} req/s, p99 {r['p99']:.1f} ms, "
                        f"server {r['server_us']:,.0f} µs/req, loadgen {r['loadgen_us']:,.0f}",
                        flush=True,
                    )
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    print(
        f"\n{now}, nproc {os.cpu_count()}, {args.connections} plain connections, "
        f"{args.requests} requests per run, medians of {args.runs}, "
        f"load average {min(loads):.1f}-{max(loads):.1f}\n"
    )
    print(
        "| shape | req/s | p50 ms | p99 ms | errors | server CPU µs/req | loadgen CPU µs/req |\n"
        "|---|---|---|---|---|---|---|"
    )
    for shape, runs in results.items():
        med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
        print(
            f"| {shape} | {med['rps']:,.0f} | {med['p50']:.1f} | {med['p99']:.1f} | "
            f"{sum(r['errors'] for r in runs)} | {med['server_us']:,.0f} | "
            f"{med['loadgen_us']:,.0f} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
