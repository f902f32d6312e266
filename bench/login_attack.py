"""Password guessing as a CPU attack: latency of API-key sends while 8 threads guess passwords.

Starts an embedded redis-server, a SQLite database in a temp dir, one funded account (password
and API key, no rate limit to speak of) and gunicorn with the API (api.gunicorn_conf, as
`smpp-bridge run` does, 2 workers x 8 threads by default). Key clients (a separate process)
send ``POST /api/v2/sms/send`` at a fixed pace, so their latency shows what the server has left
for them; guessers (another process, closed loop, keep-alive) post wrong passwords to
``/v1/sms/send`` for the same account. Each server is measured idle, then under attack:

* "throttle on": the configured login throttle (the defaults), guesses from one address;
* "throttle off": the failure limits set out of reach, so only the bounded password hashing
  stands between the guessers and the CPU.

Usage: .venv/bin/python -m bench.login_attack [--seconds 10] [--guessers 8] [--key-clients 4]
       [--rate 25] [--workers 2] [--threads 8] [--only on|off]
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import multiprocessing
import os
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from urllib.parse import urlencode

from bench.accept import gunicorn, server_env, setup_account
from bridge.redis.embedded import EmbeddedRedis, free_port

PASSWORD = "bench-password"  # what bench.accept.setup_account gives the account
SEND_BODY = json.dumps({"numbers": "0701234567", "message_body": "Login attack bench."})
# The login throttle out of reach (environment of the "throttle off" server).
THROTTLE_OFF = {
    "BRIDGE_LOGIN_FAILURES_PER_USERNAME": "1000000000",
    "BRIDGE_LOGIN_FAILURES_PER_ADDRESS": "1000000000",
}


# ------------------------------------------------------------------ clients (child processes)
def key_clients(port: int, key: str, clients: int, rate: float, seconds: float, out) -> None:
    """``clients`` threads, each sending one key-authenticated send every 1/rate seconds."""
    latencies: list[float] = []
    statuses: Counter = Counter()
    lock = threading.Lock()
    until = time.perf_counter() + seconds

    def one(offset: float) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        headers = {"X-API-Key": key, "Content-Type": "application/json"}
        due = time.perf_counter() + offset
        while due < until:
            time.sleep(max(0.0, due - time.perf_counter()))
            start = time.perf_counter()
            conn.request("POST", "/api/v2/sms/send", body=SEND_BODY, headers=headers)
            resp = conn.getresponse()
            resp.read()
            took = time.perf_counter() - start
            with lock:
                latencies.append(took)
                statuses[resp.status] += 1
            due += 1 / rate
        conn.close()

    threads = [threading.Thread(target=one, args=(i / (rate * clients),)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    out.put(("keys", sorted(latencies), dict(statuses)))


def guessers(port: int, username: str, threads: int, seconds: float, out) -> None:
    """``threads`` closed-loop clients posting wrong passwords for ``username``."""
    statuses: Counter = Counter()
    lock = threading.Lock()
    until = time.perf_counter() + seconds

    def one(n: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        i = 0
        while time.perf_counter() < until:
            i += 1
            body = urlencode(
                {
                    "username": username,
                    "password": f"guess-{n}-{i}",
                    "numbers": "0701234567",
                    "message_body": "x",
                }
            )
            conn.request("POST", "/v1/sms/send", body=body, headers=headers)
            resp = conn.getresponse()
            resp.read()
            with lock:
                statuses[resp.status] += 1
            if resp.getheader("Connection", "").lower() == "close":
                conn.close()
        conn.close()

    pool = [threading.Thread(target=one, args=(n,)) for n in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    out.put(("guesses", dict(statuses)))


# ------------------------------------------------------------------ one measurement
def measure(args, port: int, key: str, username: str, attack: bool) -> dict:
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    seconds = args.seconds
    procs = [
        ctx.Process(target=key_clients, args=(port, key, args.key_clients, args.rate, seconds, out))
    ]
    if attack:
        # the guessers start first and run past the key clients, so every send is measured
        # under a running attack
        procs.insert(
            0,
            ctx.Process(target=guessers, args=(port, username, args.guessers, seconds + 3, out)),
        )
    procs[0].start()
    if attack:
        time.sleep(2)
        procs[1].start()
    results = dict((r[0], r[1:]) for r in (out.get(timeout=seconds + 180) for _ in procs))
    for p in procs:
        p.join(30)
    latencies, key_statuses = results["keys"]
    n = len(latencies)
    guesses = results.get("guesses", ({},))[0]
    return {
        "sends": n / seconds,
        "p50": latencies[n // 2] * 1000 if n else float("nan"),
        "p99": latencies[min(n - 1, int(n * 0.99))] * 1000 if n else float("nan"),
        "key_non_200": sum(v for k, v in key_statuses.items() if k != 200),
        "guesses": guesses,
        "guess_rate": sum(guesses.values()) / (seconds + 3) if guesses else 0.0,
    }


def _guess_column(r: dict) -> str:
    if not r["guesses"]:
        return "-"
    parts = ", ".join(f"{k}: {v}" for k, v in sorted(r["guesses"].items()))
    return f"{r['guess_rate']:,.0f}/s ({parts})"


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=10.0, help="measured seconds per phase")
    parser.add_argument("--guessers", type=int, default=8, help="password-guessing threads")
    parser.add_argument("--key-clients", type=int, default=4, help="paced API-key clients")
    parser.add_argument("--rate", type=float, default=25.0, help="sends/s of each key client")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn worker processes")
    parser.add_argument("--threads", type=int, default=8, help="threads per gunicorn worker")
    parser.add_argument("--only", choices=["on", "off"], help="measure one server only")
    args = parser.parse_args()
    servers = [("throttle on", {}), ("throttle off", THROTTLE_OFF)]
    if args.only:
        servers = [s for s in servers if s[0].endswith(args.only)]
    rows = []
    for name, extra_env in servers:
        with contextlib.ExitStack() as stack:
            tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix="sb-bench-"))
            redis = stack.enter_context(EmbeddedRedis(Path(tmp) / "var"))
            url = f"sqlite:///{tmp}/bench.db"
            key = setup_account(url, redis.url)
            username = f"bench{os.getpid()}"  # setup_account's name
            port = free_port()
            env = server_env(tmp, url, redis.url, port, args, **extra_env)
            stack.enter_context(gunicorn(env, port, args.workers))
            idle = measure(args, port, key, username, attack=False)
            attacked = measure(args, port, key, username, attack=True)
            for phase, r in (("idle", idle), (f"{args.guessers} guessers", attacked)):
                print(
                    f"  {name}, {phase}: {r['sends']:.0f} sends/s, p50 {r['p50']:.1f} ms, "
                    f"p99 {r['p99']:.1f} ms, key non-200 {r['key_non_200']}, "
                    f"guesses {_guess_column(r)}",
                    flush=True,
                )
            ratio = attacked["p99"] / idle["p99"]
            rows.append(
                f"| {name} | {idle['p50']:.1f} / {idle['p99']:.1f} | "
                f"{attacked['p50']:.1f} / {attacked['p99']:.1f} | {ratio:.1f}x | "
                f"{attacked['key_non_200']} | {_guess_column(attacked)} |"
            )
    print(
        f"\nnproc {os.cpu_count()}, SQLite (WAL), gunicorn {args.workers} workers x "
        f"{args.threads} threads, {args.key_clients} key clients x {args.rate:.0f} sends/s, "
        f"{args.guessers} guessing threads, {args.seconds:.0f} s per phase\n"
    )
    print(
        "| server | idle p50 / p99 ms | under attack p50 / p99 ms | p99 ratio "
        "| key sends non-200 | guesses answered (by status) |"
    )
    print("|---|---|---|---|---|---|")
    print("\n".join(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
