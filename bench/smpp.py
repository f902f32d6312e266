"""Submits per second through one smpp.session.client.Session bind, against the simulated SMSC in its
own process (`smpp-bridge simulator`), for window 1/10/50 and SMSC latency 0/5 ms. Each cell
is the median of --runs runs; a run queues --seconds worth of submits (estimated from a short
probe) up front and times first submit to last response, collecting outcomes with
add_done_callback (as the delivery worker should: no thread blocks per future). Also measures how closely the
session's tps cap holds over 10 s (--cap-check).

    .venv/bin/python -m bench.smpp [--runs 3] [--seconds 2] [--cap-check 1000]
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import threading
import time

from smpp.codec import pdu
from smpp.session.client import Session, SessionConfig, SubmitRequest
from tests.harness.procs import stop_process as stop  # SIGTERM, then SIGKILL
from tests.harness.simproc import start_simulator as start_sim

TEXT = b"benchmark message of some sixty characters, GSM 7-bit text."


def start_simulator(latency_ms: float) -> tuple[subprocess.Popen, int]:
    extra = ["--scenario", f"latency:ms={latency_ms}"] if latency_ms else []
    proc, (_host, port) = start_sim(["--record-limit", "0", *extra])
    return proc, port


def bound_session(port: int, window: int, tps: float | None = None) -> Session:
    config = SessionConfig(
        "127.0.0.1",
        port,
        "bench",
        "bench",
        window=window,
        tps=tps,
        registered_delivery=0,
        max_queued=1_000_000,
        name="bench",
        down_queue_timeout=30.0,
    )
    session = Session(config, on_receipt=lambda receipt, info: None)
    session.start()
    if session.submit(SubmitRequest("BENCH", "254700000000", TEXT)).result(30).kind != "ok":
        raise SystemExit(f"warm-up submit failed: {session.snapshot().last_error}")
    return session


def run_once(port: int, window: int, messages: int) -> tuple[float, float]:
    """(submits/s, mean response time in s) for ``messages`` submits queued at once, first
    submit to last response."""
    session = bound_session(port, window)
    try:
        requests = [
            SubmitRequest("BENCH", f"2547{i:08d}", TEXT, source_ton=5, source_npi=0)
            for i in range(messages)
        ]
        done, outcomes = threading.Event(), []

        def collect(future) -> None:  # runs on the session thread, as a worker's would
            outcomes.append(future.result())
            if len(outcomes) == messages:
                done.set()

        start = time.perf_counter()
        for request in requests:
            session.submit(request).add_done_callback(collect)
        if not done.wait(300):
            raise SystemExit(f"only {len(outcomes)} of {messages} submits resolved in 300 s")
        elapsed = time.perf_counter() - start
        counters = session.snapshot().counters
    finally:
        session.stop(10)
    bad = sum(o.kind != "ok" for o in outcomes)
    if bad:
        raise SystemExit(f"{bad} of {messages} submits were not ok")
    return messages / elapsed, counters.response_seconds / counters.responses


def run_raw(port: int, window: int, messages: int) -> float:
    """Baseline without the session: a bare blocking socket keeping ``window`` submits in
    flight with smpp.codec.pdu — what the simulator itself allows at this window and latency."""
    sock = socket.create_connection(("127.0.0.1", port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        sock.sendall(pdu.encode_bind(pdu.BIND_TRANSCEIVER, 1, pdu.Bind("bench", "bench")))
        buffer, acked, sent = b"", -1, 0  # the bind_resp counts as one answer
        message = pdu.ShortMessage(
            source_addr="BENCH", destination_addr="254700000000", short_message=TEXT
        )
        start = time.perf_counter()
        while acked < messages:
            burst = min(window - (sent - max(acked, 0)), messages - sent)
            if acked >= 0 and burst > 0:
                sock.sendall(
                    b"".join(pdu.encode_submit_sm(sent + i + 2, message) for i in range(burst))
                )
                sent += burst
            frames, buffer = pdu.split_frames(buffer + sock.recv(262144))
            acked += len(frames)
        return messages / (time.perf_counter() - start)
    finally:
        sock.close()


def measure(
    port: int, window: int, seconds: float, runs: int
) -> tuple[float, float, float, list[float]]:
    """(median submits/s, median mean response time, median raw-socket baseline, every
    run's submits/s)."""
    probe, _ = run_once(port, window, max(50, window * 20))
    messages = max(200, int(probe * seconds))
    results = [run_once(port, window, messages) for _ in range(runs)]
    raw = statistics.median(run_raw(port, window, messages) for _ in range(runs))
    rates = [rate for rate, _ in results]
    return statistics.median(rates), statistics.median(r for _, r in results), raw, rates


def cap_check(tps: float) -> str:
    """How many submits a tps-capped session gets acknowledged over 10 s (after 1 s)."""
    proc, port = start_simulator(0)
    try:
        session = bound_session(port, 50, tps=tps)
        try:
            total = int(tps * 12)
            futures = [
                session.submit(SubmitRequest("BENCH", "254700000000", TEXT)) for _ in range(total)
            ]
            time.sleep(1.0)  # a benchmark, not a test: measure a fixed 10 s slice
            t0, n0 = time.perf_counter(), session.snapshot().counters.acked
            time.sleep(10.0)
            t1, n1 = time.perf_counter(), session.snapshot().counters.acked
            for future in futures:
                future.result(timeout=60)
        finally:
            session.stop(10)
    finally:
        stop(proc)
    rate = (n1 - n0) / (t1 - t0)
    return f"tps cap {tps:g}/s over {t1 - t0:.2f} s: {rate:.1f}/s ({(rate / tps - 1) * 100:+.2f} %)"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=2.0, help="target length of a run")
    parser.add_argument("--windows", default="1,10,50")
    parser.add_argument("--latencies", default="0,5", help="SMSC latency in ms")
    parser.add_argument(
        "--cap-check",
        type=float,
        default=1000.0,
        help="tps for the 10 s cap accuracy check (0: skip)",
    )
    args = parser.parse_args()
    print(f"nproc={os.cpu_count()} python={sys.version.split()[0]} runs={args.runs}")
    print(
        "window/latency: the nominal bound; window/response: the bound given the response "
        "time the session measured (SMSC hold + network + the SMSC's own scheduling)"
    )
    print("raw socket: a bare pipelining client without the session, same window (baseline)")
    print(
        f"{'latency ms':>10} {'window':>6} {'submits/s':>10} {'window/latency':>14} "
        f"{'response ms':>11} {'window/response':>15} {'raw socket':>10}  runs"
    )
    for latency in (float(x) for x in args.latencies.split(",")):
        proc, port = start_simulator(latency)
        try:
            for window in (int(x) for x in args.windows.split(",")):
                median, response, raw, rates = measure(port, window, args.seconds, args.runs)
                nominal = f"{window / (latency / 1000):,.0f}" if latency else "-"
                print(
                    f"{latency:>10g} {window:>6} {median:>10,.0f} {nominal:>14} "
                    f"{response * 1000:>11.2f} {window / response:>15,.0f} {raw:>10,.0f}  "
                    + " ".join(f"{r:,.0f}" for r in rates),
                    flush=True,
                )
        finally:
            stop(proc)
    if args.cap_check:
        print(cap_check(args.cap_check))
    return 0


if __name__ == "__main__":
    sys.exit(main())
