"""End-to-end throughput: HTTP accept -> Redis stream -> worker -> simulated SMSC -> receipt ->
`delivered`, everything on this machine, started the way `smpp-bridge run` starts it.

`smpp-bridge run --no-demo` in a temp var dir: embedded redis-server, SQLite (or --postgres, a
throwaway cluster as the tests use), gunicorn API, the simulated SMSC (receipts at once) and one
worker (2 binds, window 50, no TPS cap: the simulator connection's defaults). The load generator
is this script (tests/harness/loadgen.py): --procs processes (default 1) x --connections keep-alive
HTTP connections (16 for single, --bulk-connections 4 for bulk), closed loop.

Reported per run: messages/s from the first request to the last `delivered` event, and p50/p99
of accept (messages.created_at) -> delivered (its message_events row), read from the database.
With ``--webhooks`` every send names a callback_url on a local receiver (bench/e2e_sink.py, an
asyncio keep-alive server in its own process) and the run is timed to the last *signed webhook
received* (the `smpp-bridge webhooks` child signs and POSTs each `message.delivered`); latency is
accept (created_at) -> webhook received, and 20 received requests are verified with the
account's secret (standardwebhooks); ``--webhook-processes N`` has run start N senders.

Usage: .venv/bin/python -m bench.e2e [--mode bulk|single|both] [--bulk-messages 50000]
       [--single-messages 10000] [--runs 3] [--postgres] [--profile-worker SECONDS] [--webhooks]
       [--webhook-processes N]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Sequence
from datetime import UTC
from pathlib import Path

from tests.harness import loadgen, procstat

SMPP_BRIDGE = str(Path(sys.executable).parent / "smpp-bridge")
TEXT = "Benchmark message, one part."


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# ---------------------------------------------------------------------- the bridge under test


class Bridge:
    """`smpp-bridge run` in a temp dir, plus an account with a big balance and no rate limit."""

    def __init__(
        self,
        var: Path,
        database_url: str | None,
        processes: int = 1,
        settings: Sequence[str] = (),
    ) -> None:
        self.port = _free_port()
        self.env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith("BRIDGE_") and k not in ("REDIS_URL", "DATABASE_URL")
        }
        self.env.update(
            BRIDGE_VAR_DIR=str(var),
            BRIDGE_PORT=str(self.port),
            PYTHONUNBUFFERED="1",
            BRIDGE_MAX_RECIPIENTS="10000",
        )
        if database_url:
            self.env["DATABASE_URL"] = database_url
        if processes > 1 or settings:
            toml = var / "bench.toml"
            toml.write_text("\n".join(["[worker]", f"processes = {processes}", *settings]) + "\n")
            self.env["BRIDGE_CONFIG"] = str(toml)
        self.database_url = database_url or f"sqlite:///{var}/bridge.db"
        self.proc: subprocess.Popen | None = None
        self.lines: list[str] = []

    def cli(self, *args: str, stdin: str | None = None) -> str:
        return subprocess.run(
            [SMPP_BRIDGE, *args],
            env=self.env,
            input=stdin,
            text=True,
            capture_output=True,
            check=True,
            timeout=120,
        ).stdout

    def start(self) -> str:
        """Migrate, make the account, start run; returns the API key."""
        self.cli("db", "upgrade")
        self.cli(
            "account",
            "create",
            "bench",
            "--password",
            "-",
            "--balance",
            "1000000000",
            "--rate-limit",
            "100000000",
            stdin="bench-password-1\n",
        )
        created = self.cli("key", "create", "bench")
        found = re.search(r"api key: (\S+)", created)
        if found is None:
            raise RuntimeError(f"smpp-bridge key create printed no key:\n{created}")
        key = found[1]
        self.proc = subprocess.Popen(
            [SMPP_BRIDGE, "run", "--no-demo"],
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        threading.Thread(target=self._drain, daemon=True).start()
        deadline = time.monotonic() + 120
        while not any("Press Ctrl-C" in line for line in self.lines):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("smpp-bridge run did not start:\n" + "\n".join(self.lines))
            time.sleep(0.1)
        return key

    def _drain(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None  # started with a pipe
        for raw in iter(self.proc.stdout.readline, b""):
            self.lines.append(raw.decode("utf-8", "replace").rstrip())

    def pid_of(self, name: str) -> int:
        for line in self.lines:
            match = re.search(rf"started {name} \(pid (\d+)\)", line)
            if match:
                return int(match[1])
        raise KeyError(name)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(90)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)


# ---------------------------------------------------------------------- load generator


def _requests(
    port: int, key: str, mode: str, count: int, start: int, callback_url: str | None = None
) -> list[bytes]:
    """Form posts: 1,000 recipients each (bulk) or one each (single)."""
    numbers = [f"07{(start + i) % 10**8:08d}" for i in range(count)]
    size = 1000 if mode == "bulk" else 1
    extra = {"callback_url": callback_url} if callback_url else {}
    return [
        loadgen.post(
            port,
            "/api/v2/sms/send",
            key,
            urllib.parse.urlencode(
                {"numbers": ",".join(numbers[i : i + size]), "message_body": TEXT, **extra}
            ).encode(),
            "application/x-www-form-urlencoded",
        )
        for i in range(0, count, size)
    ]


# ---------------------------------------------------------------------- webhooks (--webhooks)


class Sink:
    """bench/e2e_sink.py in its own process: the callback URL and what it received."""

    def __init__(self, var: Path) -> None:
        self.path = var / "webhooks.log"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bench.e2e_sink", str(self.path)],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        self.url = f"http://127.0.0.1:{json.loads(self.proc.stdout.readline())['port']}/hooks"

    def received(self) -> dict[str, float]:
        """webhook-id -> first arrival (epoch seconds)."""
        seen: dict[str, float] = {}
        if self.path.exists():
            for line in self.path.read_text().splitlines():
                parts = line.split()
                if len(parts) == 2:
                    seen.setdefault(parts[0], float(parts[1]))
        return seen

    def wait(self, ids: set[str], timeout: float) -> dict[str, float]:
        deadline = time.monotonic() + timeout
        while True:
            got = self.received()
            if ids <= got.keys():
                return got
            if time.monotonic() > deadline:
                raise TimeoutError(f"{len(ids - got.keys())} of {len(ids)} webhooks missing")
            time.sleep(0.25)

    def verify(self, secret: str) -> int:
        """Verify the kept requests' signatures; how many (raises on a bad one)."""
        import base64

        from standardwebhooks import Webhook

        hook = Webhook(secret)
        lines = Path(str(self.path) + ".samples").read_text().splitlines()
        for line in lines:
            record = json.loads(line)
            hook.verify(base64.b64decode(record["body"]), record["headers"])
        return len(lines)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


def measure_webhooks(url: str, since: float, sink: Sink) -> dict:
    """Rate to the last webhook received; accept -> webhook received quantiles."""
    from sqlalchemy import text

    engine = _engine(url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                text("SELECT id, created_at FROM messages WHERE created_at >= :t"),
                {"t": _ts(since)},
            ).all()
    finally:
        engine.dispose()
    got = sink.wait({f"evt_{mid}_delivered" for mid, _ in rows}, timeout=900)
    arrivals = {mid: got[f"evt_{mid}_delivered"] for mid, _ in rows}
    latencies = sorted(arrivals[mid] - _epoch(created) for mid, created in rows)
    last = max(arrivals.values())
    return {
        "messages": len(rows),
        "seconds": last - since,
        "rate": len(rows) / (last - since),
        "p50": latencies[len(latencies) // 2],
        "p99": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))],
    }


def _client_process(port: int, requests: list[bytes], connections: int) -> list[str]:
    return loadgen.run_all(port, requests, connections).errors


def load(port: int, requests: list[bytes], procs: int, connections: int) -> list[str]:
    """``procs`` load processes with ``connections`` keep-alive clients each
    (tests/harness/loadgen.py); the error answers."""
    if procs == 1:
        return _client_process(port, requests, connections)
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(procs) as pool:
        results = pool.starmap(
            _client_process, [(port, requests[i::procs], connections) for i in range(procs)]
        )
    return [e for errs in results for e in errs]


# ---------------------------------------------------------------------- measuring


def _engine(url: str):
    from sqlalchemy import create_engine

    return create_engine(url)


def wait_delivered(url: str, since: float, count: int, timeout: float) -> None:
    from sqlalchemy import text

    engine = _engine(url)
    since_sql = _ts(since)
    deadline = time.monotonic() + timeout
    try:
        while True:
            with engine.connect() as conn:
                rows = dict(
                    conn.execute(
                        text(
                            "SELECT state, count(*) FROM messages WHERE created_at >= :t GROUP BY state"
                        ),
                        {"t": since_sql},
                    ).all()
                )
            done = sum(
                n
                for s, n in rows.items()
                if s in ("delivered", "undelivered", "failed", "rejected", "expired")
            )
            if done >= count:
                if rows.get("delivered", 0) != count:
                    print(f"  warning: not all delivered: {rows}", file=sys.stderr)
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"after {timeout}s: {rows}")
            time.sleep(0.25)
    finally:
        engine.dispose()


def _ts(epoch: float):
    from datetime import datetime

    return datetime.fromtimestamp(epoch, UTC).replace(tzinfo=None)


def measure(url: str, since: float) -> dict:
    """Rate from the first request to the last delivered event; accept->delivered quantiles."""
    from sqlalchemy import text

    engine = _engine(url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                text(
                    "SELECT m.created_at, e.at FROM messages m JOIN message_events e "
                    "ON e.message_id = m.id AND e.state = 'delivered' WHERE m.created_at >= :t"
                ),
                {"t": _ts(since)},
            ).all()
    finally:
        engine.dispose()
    latencies = sorted((_epoch(at) - _epoch(created)) for created, at in rows)
    last = max(_epoch(at) for _, at in rows)
    return {
        "messages": len(rows),
        "seconds": last - since,
        "rate": len(rows) / (last - since),
        "p50": latencies[len(latencies) // 2],
        "p99": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))],
    }


def _epoch(value) -> float:
    from datetime import datetime

    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=UTC).timestamp()


def run_mode(
    bridge: Bridge,
    key: str,
    mode: str,
    count: int,
    start: int,
    procs: int,
    connections: int,
    profile: float,
    sink: Sink | None = None,
) -> dict:
    requests = _requests(bridge.port, key, mode, count, start, sink.url if sink else None)
    profiler = None
    if profile:
        out = Path(tempfile.gettempdir()) / "e2e-profile"
        out.mkdir(exist_ok=True)
        profiler = subprocess.Popen(
            [
                str(Path(sys.executable).parent / "py-spy"),
                "record",
                "-p",
                str(bridge.pid_of("worker")),
                "-d",
                str(int(profile)),
                "-f",
                "raw",
                "--nonblocking",
                "-o",
                str(out / f"worker-{mode}.txt"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        print(
            f"  profiling the worker into {out} (.venv/bin/python -m bench.tools.profile_top {out})",
            flush=True,
        )
    cpu_before = cpu_times(bridge)
    since = time.time()
    errors = load(bridge.port, requests, procs, connections)
    accepted_in = time.time() - since
    if errors:
        raise RuntimeError(f"{len(errors)} failed requests, e.g. {errors[:3]}")
    wait_delivered(bridge.database_url, since, count, timeout=600)
    if profiler is not None:
        profiler.wait(profile + 30)
    if sink is not None:
        result = measure_webhooks(bridge.database_url, since, sink)
    else:
        result = measure(bridge.database_url, since)
    result["accept_rate"] = count / accepted_in
    after = cpu_times(bridge)
    result["cpu"] = {name: round(after[name] - cpu_before.get(name, 0.0), 1) for name in after}
    return result


def cpu_times(bridge: Bridge) -> dict[str, float]:
    """CPU seconds (user + system) used so far by each part: api (gunicorn master and
    workers), worker, simulator, redis."""
    out: dict[str, float] = {}
    names = ("api", "worker", "worker-2", "worker-3", "simulator", "webhooks", "webhooks-2")
    for name in (*names, "webhooks-3", "redis-server"):
        try:
            root = bridge.pid_of(name)
        except KeyError:
            continue
        out[name] = procstat.cpu_seconds([root, *procstat.children(root, recursive=True)])
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mode", choices=("bulk", "single", "both"), default="both")
    parser.add_argument("--bulk-messages", type=int, default=50_000)
    parser.add_argument("--single-messages", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--procs", type=int, default=1, help="load generator processes")
    parser.add_argument(
        "--connections",
        type=int,
        default=16,
        help="keep-alive connections per load process, single mode",
    )
    parser.add_argument(
        "--bulk-connections",
        type=int,
        default=4,
        help="keep-alive connections per load process, bulk mode",
    )
    parser.add_argument("--postgres", action="store_true")
    parser.add_argument(
        "--worker-processes",
        type=int,
        default=2,
        help="worker processes run starts ([worker] processes; the simulator's 2 "
        "binds are shared out between them)",
    )
    parser.add_argument(
        "--worker-setting",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="another [worker] setting for the run, e.g. max_pending=1000",
    )
    parser.add_argument(
        "--profile-worker",
        type=float,
        default=0,
        metavar="SECONDS",
        help="py-spy the worker for the first run of each mode",
    )
    parser.add_argument(
        "--webhooks",
        action="store_true",
        help="every send has a callback_url on a local receiver; time to the last webhook",
    )
    parser.add_argument(
        "--webhook-processes",
        type=int,
        default=0,
        metavar="N",
        help="webhook sender processes run starts (BRIDGE_WEBHOOK_PROCESSES; default: its own)",
    )
    args = parser.parse_args()
    modes = ("bulk", "single") if args.mode == "both" else (args.mode,)
    results: dict[str, list[dict]] = {m: [] for m in modes}
    with contextlib.ExitStack() as stack:
        var = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="sb-e2e-")))
        url = None
        if args.postgres:
            from tests.harness.postgres import postgres_cluster

            url = stack.enter_context(postgres_cluster()).create_database()
        bridge = Bridge(var, url, args.worker_processes, args.worker_setting)
        if args.webhook_processes:
            bridge.env["BRIDGE_WEBHOOK_PROCESSES"] = str(args.webhook_processes)
        stack.callback(bridge.stop)
        key = bridge.start()
        sink = None
        if args.webhooks:
            sink = Sink(var)
            stack.callback(sink.stop)
        start = 0
        for run in range(args.runs):
            for mode in modes:
                count = args.bulk_messages if mode == "bulk" else args.single_messages
                conns = args.bulk_connections if mode == "bulk" else args.connections
                r = run_mode(
                    bridge,
                    key,
                    mode,
                    count,
                    start,
                    args.procs,
                    conns,
                    args.profile_worker if run == 0 else 0,
                    sink,
                )
                start += count
                results[mode].append(r)
                print(
                    f"run {run + 1} {mode:<6} {r['messages']:>7} msgs  {r['rate']:>7.0f} msg/s "
                    f"e2e  (accept {r['accept_rate']:.0f}/s)  p50 {r['p50'] * 1000:.0f} ms  "
                    f"p99 {r['p99'] * 1000:.0f} ms  cpu s {r['cpu']}",
                    flush=True,
                )
        if sink is not None:
            shown = bridge.cli("account", "show", "bench")
            secret = re.search(r"webhook secret: (whsec_\S+)", shown)
            if secret is None:
                raise RuntimeError(f"account show printed no webhook secret:\n{shown}")
            print(f"webhook signatures verified: {sink.verify(secret[1])} sampled requests")
    print(
        f"\ndatabase: {'postgresql' if args.postgres else 'sqlite'}  nproc: {os.cpu_count()}  "
        f"runs: {args.runs}  worker processes: {args.worker_processes}  "
        f"webhook processes: {args.webhook_processes or 'default'}  "
        f"until: {'signed webhook received' if args.webhooks else 'delivered'}"
    )
    print(f"{'mode':<8}{'median msg/s':>14}{'p50 ms':>9}{'p99 ms':>9}   all runs (msg/s)")
    for mode, rs in results.items():
        print(
            f"{mode:<8}{statistics.median(r['rate'] for r in rs):>14.0f}"
            f"{statistics.median(r['p50'] for r in rs) * 1000:>9.0f}"
            f"{statistics.median(r['p99'] for r in rs) * 1000:>9.0f}   "
            + ", ".join(f"{r['rate']:.0f}" for r in rs)
        )
    print(json.dumps(results), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
