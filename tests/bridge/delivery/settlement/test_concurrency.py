"""Two workers (two Settlement instances, each with its own engine) racing on the same rows."""

from __future__ import annotations

import random
import threading
from decimal import Decimal

from bridge.delivery.settlement import Failed, Settlement, Submitted
from bridge.storage.db import Database
from tests.bridge.delivery.settlement.helpers import balance, refunds, states

T = 1_900_000_100.0


def _race(workers, jobs) -> list:
    """Run jobs[i](workers[i]) in threads started together; re-raise the first error."""
    barrier = threading.Barrier(len(jobs))
    results, errors = [None] * len(jobs), []

    def run(i):
        try:
            barrier.wait(timeout=10)
            results[i] = jobs[i](workers[i])
        except BaseException as exc:  # reported to the test below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(jobs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not any(t.is_alive() for t in threads), "a worker hung"
    if errors:
        raise errors[0]
    return results


def _workers(database_url, redis_client, clock, n=2):
    dbs = [Database(database_url) for _ in range(n)]
    return dbs, [Settlement(d, redis_client, clock=clock) for d in dbs]


def test_two_workers_failing_the_same_messages_refund_each_once(
    db, database_url, redis_client, clock, make, account
):
    msgs = make(300, price=Decimal("0.80"))
    ids = [m.message_id for m in msgs]
    start = balance(db, account)
    dbs, workers = _workers(database_url, redis_client, clock)
    try:
        for _round in range(3):
            outcomes = [Failed(mid, "rejected", "ESME_RINVDSTADR", T) for mid in ids]
            shuffled = random.Random(_round).sample(outcomes, len(outcomes))
            results = _race(
                workers, [lambda w, o=outcomes: w.apply(o), lambda w, o=shuffled: w.apply(o)]
            )
            if _round == 0:
                refunded = [set(r.refunded_ids) for r in results]
                assert refunded[0].isdisjoint(refunded[1])
                assert refunded[0] | refunded[1] == set(ids)
    finally:
        for d in dbs:
            d.dispose()
    assert refunds(db, ids) == {mid: 1 for mid in ids}
    assert balance(db, account) == start + Decimal("0.80") * 300
    assert set(states(db, ids).values()) == {"rejected"}


def test_submit_and_fail_racing_leave_one_consistent_outcome(
    db, database_url, redis_client, clock, make, account
):
    msgs = make(200)
    ids = [m.message_id for m in msgs]
    start = balance(db, account)
    dbs, workers = _workers(database_url, redis_client, clock)
    try:
        _race(
            workers,
            [
                lambda w: w.apply([Submitted(i, ["x"], "c", T) for i in ids]),
                lambda w: w.apply([Failed(i, "failed", "t", T) for i in reversed(ids)]),
            ],
        )
    finally:
        for d in dbs:
            d.dispose()
    final = states(db, ids)
    assert set(final.values()) <= {"submitted", "failed"}
    failed = [i for i in ids if final[i] == "failed"]
    assert refunds(db, ids) == {i: int(final[i] == "failed") for i in ids}
    assert balance(db, account) == start + Decimal("0.80") * len(failed)


def test_two_workers_claiming_the_same_fresh_entries_claim_each_once(
    db, database_url, redis_client, clock, make
):
    msgs = make(500)
    dbs, workers = _workers(database_url, redis_client, clock)
    try:
        results = _race(
            workers,
            [
                lambda w: w.claim(msgs, recovered=False),
                lambda w: w.claim(list(reversed(msgs)), recovered=False),
            ],
        )
    finally:
        for d in dbs:
            d.dispose()
    claimed = [{c.message.message_id for c in r.claimed} for r in results]
    assert claimed[0].isdisjoint(claimed[1])
    assert claimed[0] | claimed[1] == {m.message_id for m in msgs}
