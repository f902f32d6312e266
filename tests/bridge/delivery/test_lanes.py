"""A lane's claimer when the worker's claim answers False (stopping with the database down)."""

from __future__ import annotations

import queue
from decimal import Decimal

from bridge.config import Connection, WorkerSettings
from bridge.delivery.jobs import Job, Tracker
from bridge.delivery.lanes import Lane
from bridge.delivery.pool import SessionPool
from bridge.redis.outbox import OutboundMessage
from tests.harness.procs import wait_until

CONN = Connection(name="c", host="127.0.0.1", port=9, system_id="acct", password="pw")


def job(i: int) -> Job:
    message = OutboundMessage(
        f"m{i}", "b", 1, f"+2547000000{i:02d}", "SMSBRIDGE", "hi", "gsm", 1, Decimal("1"), 2e9
    )
    return Job(message, [f"{i}-0"])


def test_a_claim_refused_while_stopping_is_not_retried_and_gives_its_slots_back(redis_client):
    """Before the fix the claimer asked again at once, for as long as the drain lasted: a busy
    loop with one database attempt and one warning each time, the slots held all along."""
    calls: list[list[str]] = []

    def claim(jobs: list[Job]) -> bool:  # what Worker._claim_jobs answers then
        calls.append([j.message_id for j in jobs])
        return False

    pool = SessionPool((CONN,), redis_client, WorkerSettings(), lambda name, r: None)
    tracker = Tracker(max_unrecorded=100)
    lane = Lane(CONN, pool, None, queue.SimpleQueue(), 5.0, tracker, claim)
    lane.start()
    try:
        jobs = [job(i) for i in range(3)]
        lane.push_many([(j, [0]) for j in jobs])
        assert wait_until(lambda: calls and tracker.unrecorded == 0, timeout=5)
    finally:
        left = lane.stop()
    assert calls == [["m0", "m1", "m2"]]
    assert [j.message_id for j, _ in left] == ["m0", "m1", "m2"]  # never written, returned
    assert not any(j.counted or j.claimed for j in jobs)
