"""The stream side of the worker against a real redis-server: group, reads, take-overs, acks."""

from __future__ import annotations

from decimal import Decimal

from bridge.delivery.reader import StreamReader, stream_info
from bridge.redis import keys as redis_keys
from bridge.redis import outbox
from bridge.redis.outbox import OutboundMessage
from tests.harness.procs import wait_until


def _msg(i: int) -> OutboundMessage:
    return OutboundMessage(
        f"m{i:04d}",
        "b1",
        1,
        f"+2547000{i:05d}",
        "ACME",
        f"text {i}",
        "gsm",
        1,
        Decimal("0.80"),
        4e9,
    )


def _ids(entries) -> list[str | None]:
    """The message ids of read entries (None for an entry that could not be read)."""
    return [e.message.message_id if e.message else None for e in entries]


def test_read_ack_and_delete(redis_client):
    reader = StreamReader(redis_client, "w1")
    reader.ensure_group()
    reader.ensure_group()  # idempotent (BUSYGROUP ignored)
    outbox.enqueue(redis_client, [_msg(i) for i in range(5)])
    entries = reader.read(3, 10) + reader.read(10, 10)
    assert _ids(entries) == [f"m{i:04d}" for i in range(5)]
    assert reader.read(10, 10) == []
    assert stream_info(redis_client).pending == 5
    reader.ack([e.entry_id for e in entries[:2]])
    info = stream_info(redis_client)
    assert (info.length, info.pending) == (3, 3)
    assert info.consumers == [{"name": "w1", "pending": 3, "idle_ms": info.consumers[0]["idle_ms"]}]


def test_unreadable_entries_come_back_with_the_reason(redis_client):
    reader = StreamReader(redis_client, "w1")
    reader.ensure_group()
    redis_client.xadd(redis_keys.OUTBOUND_STREAM, {"v": "9", "message_id": "x"})
    [entry] = reader.read(10, 10)
    assert entry.message is None and "unknown outbound entry version" in (entry.error or "")


def test_a_dead_consumers_entries_are_taken_over_once_idle(redis_client):
    dead, live = StreamReader(redis_client, "dead"), StreamReader(redis_client, "live")
    dead.ensure_group()
    outbox.enqueue(redis_client, [_msg(i) for i in range(4)])
    held = dead.read(10, 10)
    assert live.take_over(60, 100) == []  # not idle long enough
    taken = wait_until(lambda: live.take_over(0.05, 100), timeout=5, message="take-over")
    assert sorted(e.entry_id for e in taken) == sorted(e.entry_id for e in held)
    assert live.scan_complete
    pending = redis_client.xpending_range(
        redis_keys.OUTBOUND_STREAM, redis_keys.OUTBOUND_GROUP, "-", "+", 10
    )
    assert {p["consumer"].decode() for p in pending} == {"live"}


def test_touch_keeps_a_live_workers_entries_from_being_taken(redis_client):
    mine, other = StreamReader(redis_client, "slow"), StreamReader(redis_client, "other")
    mine.ensure_group()
    outbox.enqueue(redis_client, [_msg(1)])
    [entry] = mine.read(10, 10)
    wait_until(
        lambda: stream_info(redis_client).consumers[0]["idle_ms"] >= 300,
        timeout=5,
        message="entry to idle",
    )
    assert mine.touch([entry.entry_id]) == 1
    assert other.take_over(0.3, 10) == []


def test_a_vanished_group_is_recreated(redis_client):
    reader = StreamReader(redis_client, "w1")
    reader.ensure_group()
    redis_client.delete(redis_keys.OUTBOUND_STREAM)
    assert reader.read(10, 10) == []  # NOGROUP -> recreated, nothing read
    outbox.enqueue(redis_client, [_msg(7)])
    assert _ids(reader.read(10, 10)) == ["m0007"]


def test_only_idle_empty_consumers_of_past_processes_are_pruned(redis_client):
    past, busy, me = (StreamReader(redis_client, n) for n in ("past", "busy", "me"))
    me.ensure_group()
    outbox.enqueue(redis_client, [_msg(1)])
    past.ack([e.entry_id for e in past.read(10, None)])  # a past process: finished its work
    outbox.enqueue(redis_client, [_msg(2)])
    busy.read(10, None)  # holds one pending entry
    wait_until(
        lambda: min(c["idle_ms"] for c in stream_info(redis_client).consumers) >= 200,
        timeout=5,
        message="consumers to idle",
    )
    assert me.prune_consumers(0.2) == ["past"]  # busy still holds an entry: kept
    assert [c["name"] for c in stream_info(redis_client).consumers] == ["busy"]
    assert me.prune_consumers(60) == []  # nobody idle that long
