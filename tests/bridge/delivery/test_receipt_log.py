"""The receipt log against a real redis-server: one round trip logs a read's receipts as
pending entries of this consumer; acks delete them; a dead consumer's are taken over; the log
is bounded; a lost group is recreated; unstorable receipts are dead-lettered."""

from __future__ import annotations

import pytest

from bridge.delivery.reader import stream_info
from bridge.delivery.receipt_log import ReceiptLog, ReceiptLogFull, backlog
from bridge.redis import keys as redis_keys
from smpp.codec.receipt import parse_receipt
from tests.harness.procs import wait_until

STREAM, GROUP = redis_keys.receipts_stream_key(), redis_keys.RECEIPTS_GROUP


def _receipt(i: int):
    text = (
        f"id:{1000 + i} sub:001 dlvrd:001 submit date:2401011200 done date:2401011201 "
        "stat:DELIVRD err:000 text:hello"
    )
    return parse_receipt(text.encode(), {})


def test_add_is_pending_under_its_consumer_until_acked(redis_client):
    log = ReceiptLog(redis_client, "w1")
    taken = log.add("sim", "hex", [_receipt(i) for i in range(3)], 1.5e9)
    assert [(t.connection, t.id_form, t.receipt.message_id, t.at) for t in taken] == [
        ("sim", "hex", f"{1000 + i}", 1.5e9) for i in range(3)
    ]
    assert taken[0].receipt == _receipt(0)  # every field survives the JSON
    info = stream_info(redis_client, STREAM, GROUP)
    assert (info.length, info.pending) == (3, 3)
    assert [(c["name"], c["pending"]) for c in info.consumers] == [("w1", 3)]
    first_two = [t.entry_id for t in taken[:2] if t.entry_id is not None]
    assert len(first_two) == 2, taken  # entries taken from the log carry their ids
    log.ack(first_two)
    assert backlog(redis_client) == 1
    assert stream_info(redis_client, STREAM, GROUP).pending == 1


def test_a_dead_consumers_receipts_are_taken_over_once_idle(redis_client):
    dead, live = ReceiptLog(redis_client, "dead"), ReceiptLog(redis_client, "live")
    held = dead.add("sim", "dec", [_receipt(i) for i in range(4)], 1.0)
    assert live.take_over(60, 100) == []  # not idle long enough
    taken = wait_until(lambda: live.take_over(0.05, 100), timeout=5, message="take-over")
    assert taken == held  # same entries, same receipts, now the live consumer's


def test_a_full_log_refuses_and_writes_nothing(redis_client):
    log = ReceiptLog(redis_client, "w1", limit=5)
    log.add("sim", "hex", [_receipt(i) for i in range(4)], 1.0)
    with pytest.raises(ReceiptLogFull, match="holds 4 receipts not yet applied"):
        log.add("sim", "hex", [_receipt(i) for i in range(2)], 1.0)
    assert backlog(redis_client) == 4
    log.add("sim", "hex", [_receipt(9)], 1.0)  # fits exactly


def test_a_lost_group_is_recreated_and_unread_entries_are_picked_up(redis_client):
    log = ReceiptLog(redis_client, "w1")
    first = log.add("sim", "hex", [_receipt(0)], 1.0)
    redis_client.xgroup_destroy(STREAM, GROUP)  # as if Redis had lost it
    again = log.add("sim", "hex", [_receipt(1)], 2.0)
    # the new receipt first, then the entry nobody had read any more: both pending under w1
    assert [t.receipt.message_id for t in again] == ["1001", "1000"]
    assert again[1].entry_id == first[0].entry_id
    assert stream_info(redis_client, STREAM, GROUP).pending == 2


def test_unstorable_and_unreadable_receipts_are_dead_lettered(redis_client):
    log = ReceiptLog(redis_client, "w1")
    first = log.add("sim", "hex", [_receipt(0)], 1.0)
    redis_client.xadd(STREAM, {"c": "sim"})  # an entry with no receipt in it, read by the next
    taken = log.add("sim", "hex", [_receipt(1)], 1.0)
    assert [t.receipt.message_id for t in taken] == ["1001"]  # the bad one is buried
    log.dead_letter(first, "settlement could not store this batch")
    assert backlog(redis_client) == 1  # only the good, unapplied one is left
    dead = [f for _id, f in redis_client.xrange(redis_keys.receipts_dead_key())]
    assert [d[b"error"][:10] for d in dead] == [b"unreadable", b"settlement"]
    assert dead[1][b"entry"].decode() == first[0].entry_id
    assert b'"message_id":"1000"' in dead[1][b"r"]  # kept whole, for replay
