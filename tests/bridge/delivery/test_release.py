"""The releaser over a real Redis and database (SQLite and PostgreSQL), with an injected clock:
never early, rebuilt from the database, a lost ZADD found by the scan, the sweeper leaving
scheduled messages alone, and a cancel racing the release."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select, update

from bridge.accept.sweeper import Sweeper
from bridge.delivery.release import Releaser
from bridge.delivery.settlement.cancel import Canceller
from bridge.redis import keys as redis_keys
from bridge.redis import outbox
from bridge.storage.models import ledger, messages
from tests.bridge.delivery.conftest import numbers

HOUR = 3600.0


def _scheduled(bridge, count: int, ahead: float = HOUR) -> tuple[list[str], float]:
    send_at = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=ahead)
    body = bridge.service.send(bridge.account_id, numbers(count), "later", send_at=send_at).body
    return [m["message_id"] for m in body["messages"]], send_at.timestamp()


def _stream_ids(bridge) -> list[str]:
    return [
        outbox.decode_entry(fields).message_id
        for _, fields in bridge.redis.xrange(redis_keys.OUTBOUND_STREAM)
    ]


def test_nothing_is_released_before_send_at_and_everything_at_it(bridge):
    ids, due = _scheduled(bridge, 50)
    clock = [due - 0.5]
    releaser = Releaser(bridge.db, bridge.redis, clock=lambda: clock[0], scan_interval=0)
    assert releaser.release_once() == 0 and _stream_ids(bridge) == []
    assert {r["state"] for r in bridge.rows(ids)} == {"scheduled"}
    clock[0] = due
    assert releaser.release_once() == 50
    assert sorted(_stream_ids(bridge)) == sorted(ids)
    rows = bridge.rows(ids)
    assert {r["state"] for r in rows} == {"queued"} and all(r["queued_at"] for r in rows)
    assert bridge.redis.zcard(redis_keys.SCHEDULE_SET) == 0
    assert releaser.release_once() == 0  # a second pass adds nothing twice
    assert len(_stream_ids(bridge)) == 50


def test_an_emptied_redis_is_rebuilt_from_the_database(bridge):
    ids, due = _scheduled(bridge, 20)
    releaser = Releaser(bridge.db, bridge.redis, clock=lambda: due - 10, scan_interval=1e9)
    releaser.release_once()  # builds the "built" mark
    bridge.redis.flushall()
    assert releaser.release_once() == 0  # rebuilt, not due yet
    assert bridge.redis.zcard(redis_keys.SCHEDULE_SET) == 20
    releaser._clock = lambda: due + 0.01
    assert releaser.release_once() == 20


def test_a_lost_zadd_is_found_by_the_database_scan(bridge):
    ids, due = _scheduled(bridge, 3)
    releaser = Releaser(bridge.db, bridge.redis, clock=lambda: due + 1, scan_interval=0)
    bridge.redis.set(redis_keys.SCHEDULE_BUILT, "1")
    bridge.redis.zrem(redis_keys.SCHEDULE_SET, *ids)  # as if the accept path's ZADD failed
    assert releaser.release_once() == 3
    assert sorted(_stream_ids(bridge)) == sorted(ids)


def test_the_sweeper_leaves_scheduled_messages_and_counts_grace_from_send_at(bridge):
    ids, due = _scheduled(bridge, 4)
    grace = bridge.config.sweeper_grace_seconds
    late = Sweeper(bridge.config, bridge.db, bridge.redis, clock=lambda: due - 1)
    assert late.sweep_once() == 0  # created long before the cutoff, but scheduled
    # released (now `accepted`) but Redis failed before the XADD: the sweeper's job, after
    # its grace counted from send_at, not from created_at
    with bridge.db.begin() as conn:
        conn.execute(update(messages).where(messages.c.id.in_(ids)).values(state="accepted"))
    assert Sweeper(bridge.config, bridge.db, bridge.redis, clock=lambda: due + 1).sweep_once() == 0
    swept = Sweeper(bridge.config, bridge.db, bridge.redis, clock=lambda: due + grace + 1)
    assert swept.sweep_once() == 4


def test_a_cancel_racing_the_release_wins_or_loses_whole(bridge):
    ids, due = _scheduled(bridge, 600)
    releaser = Releaser(bridge.db, bridge.redis, clock=lambda: due, batch=50)
    canceller = Canceller(bridge.db, bridge.redis)
    results = []
    go = threading.Event()

    def release() -> None:
        go.wait(5)
        while releaser.release_once():
            pass

    def cancel() -> None:
        go.wait(5)
        results.append(
            canceller.cancel_batch(bridge.account_id, bridge.rows(ids[:1])[0]["batch_id"])
        )

    threads = [threading.Thread(target=release), threading.Thread(target=cancel)]
    for t in threads:
        t.start()
    go.set()
    for t in threads:
        t.join(60)
    streamed = set(_stream_ids(bridge))
    rows = {r["id"]: r for r in bridge.rows(ids)}
    with bridge.db.connect() as conn:
        refunded = set(
            conn.execute(
                select(ledger.c.message_id).where(
                    ledger.c.kind == "refund", ledger.c.message_id.in_(ids)
                )
            ).scalars()
        )
        refund_rows = conn.execute(
            select(func.count()).where(ledger.c.kind == "refund", ledger.c.message_id.in_(ids))
        ).scalar_one()
    assert refund_rows == len(refunded)  # never twice
    for mid in ids:  # each message was cancelled (and refunded) or released, never both
        cancelled = rows[mid]["state"] == "cancelled"
        assert cancelled == (mid in refunded), rows[mid]["state"]
        assert cancelled or (rows[mid]["state"] == "queued" and mid in streamed)
    # (a message cancelled right after its release has an entry the worker's claim refuses)
    assert results[0].cancelled == len(refunded)
