"""Many simultaneous sends: never an overdraft, never a double charge (SQLite and PostgreSQL)."""

from __future__ import annotations

import threading
from decimal import Decimal

from sqlalchemy import func, select

from bridge.errors import InsufficientBalance
from bridge.service import BridgeService
from bridge.storage.db import Database
from bridge.storage.ledger import ledger_sum
from bridge.storage.models import messages


def run_at_once(calls):
    """Run each callable in its own thread, released together; returns results or exceptions."""
    barrier = threading.Barrier(len(calls))
    results: list[object] = [None] * len(calls)

    def worker(i, call):
        barrier.wait(timeout=30)
        try:
            results[i] = call()
        except Exception as exc:  # collected and asserted on by the test
            results[i] = exc

    threads = [threading.Thread(target=worker, args=(i, c)) for i, c in enumerate(calls)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "a send hung"
    return results


def test_twenty_simultaneous_sends_only_the_affordable_succeed(service, db, account):
    # balance 100.00; each request is 25 numbers x 0.80 = 20.00; twenty of them cost 400.00
    numbers = ",".join(f"07{i:08d}" for i in range(25))
    sampled: list[Decimal] = []
    stop = threading.Event()

    def sample():
        while not stop.is_set():
            sampled.append(service.balance(account.id).balance)

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        results = run_at_once([lambda: service.send(account.id, numbers, "hi")] * 20)
    finally:
        stop.set()
        sampler.join(timeout=30)
    ok = [r for r in results if not isinstance(r, Exception)]
    refused = [r for r in results if isinstance(r, InsufficientBalance)]
    assert (len(ok), len(refused)) == (5, 15), results
    assert sorted(r.body["balance"] for r in ok) == ["0.00", "20.00", "40.00", "60.00", "80.00"]
    assert min(sampled) >= 0
    with db.connect() as conn:
        assert conn.execute(select(func.count()).select_from(messages)).scalar() == 125
        assert ledger_sum(conn, account.id) == service.balance(account.id).balance == 0
    assert service.audit() == []


def test_two_processes_worth_of_sends_share_one_balance(
    service, db, account, bridge_config, redis_client, fast_hasher
):
    """Two services with their own pools (as two API processes would have)."""
    other_db = Database(bridge_config.effective_database_url)
    other = BridgeService(
        bridge_config, other_db, redis_client, run_sweeper=False, hasher=fast_hasher
    )
    try:
        numbers = ",".join(f"07{i:08d}" for i in range(10))  # 8.00 a request; 12 affordable
        calls = [lambda s=s: s.send(account.id, numbers, "hi") for s in (service, other) * 10]
        results = run_at_once(calls)
        assert sum(not isinstance(r, Exception) for r in results) == 12
        assert all(
            isinstance(r, InsufficientBalance) for r in results if isinstance(r, Exception)
        ), results
        assert service.balance(account.id).balance == Decimal("4.00")
        assert service.audit() == []
    finally:
        other.stop()
        other_db.dispose()


def test_concurrent_sends_with_one_idempotency_key_charge_once(service, db, account, redis_client):
    results = run_at_once(
        [lambda: service.send(account.id, "0701234567,0711111111", "hi", idempotency_key="same")]
        * 10
    )
    assert not any(isinstance(r, Exception) for r in results), results
    assert sum(not r.replayed for r in results) == 1
    assert len({r.body["batch_id"] for r in results}) == 1
    assert service.balance(account.id).balance == Decimal("98.40")
    with db.connect() as conn:
        assert conn.execute(select(func.count()).select_from(messages)).scalar() == 2
    assert service.audit() == []
