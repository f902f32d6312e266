"""Multipart: delivered when every part is delivered; the first final non-delivered part
decides otherwise; part rows make a repeated receipt a no-op."""

from __future__ import annotations

from datetime import UTC, datetime

from bridge.delivery.settlement import PartReceipt, Submitted
from tests.bridge.delivery.settlement.helpers import events, parts_of, row

T = 1_900_000_100.0


def part(mid, i, stat="DELIVRD", state="delivered", final=True, minute=0, err=None):
    done = datetime(2030, 3, 17, 17, minute, tzinfo=UTC)
    return PartReceipt(mid, i, f"id{i}", stat, state, final, err, done, None, T + i)


def test_delivered_only_when_all_three_parts_are(db, settlement, make):
    [m] = make(1, parts=3)
    settlement.apply([Submitted(m.message_id, ["a", "b", "c"], "conn", T)])
    settlement.apply([part(m.message_id, 0, minute=1), part(m.message_id, 1, minute=3)])
    assert row(db, m.message_id)["state"] == "submitted"
    settlement.apply([part(m.message_id, 1, minute=9)])  # a repeat of part 2: nothing
    assert row(db, m.message_id)["state"] == "submitted"
    settlement.apply([part(m.message_id, 2, minute=2)])
    r = row(db, m.message_id)
    assert r["state"] == "delivered"
    assert r["done_at"] == datetime(2030, 3, 17, 17, 3, tzinfo=UTC)  # the last part
    assert parts_of(db, m.message_id) == {0: "delivered", 1: "delivered", 2: "delivered"}
    assert [e[0] for e in events(db, m.message_id)] == ["submitted", "delivered"]


def test_first_non_delivered_final_part_decides(db, settlement, make):
    [m] = make(1, parts=3)
    settlement.apply([Submitted(m.message_id, ["a", "b", "c"], "conn", T)])
    settlement.apply([part(m.message_id, 0)])
    settlement.apply([part(m.message_id, 1, "UNDELIV", "undelivered", err="001")])
    r = row(db, m.message_id)
    assert (r["state"], r["error_code"]) == ("undelivered", "001")
    settlement.apply([part(m.message_id, 2, "EXPIRED", "expired")])
    assert row(db, m.message_id)["state"] == "undelivered"
    assert parts_of(db, m.message_id)[2] == "expired"  # recorded, but it decides nothing


def test_first_in_one_batch_decides_too(db, settlement, make):
    [m] = make(1, parts=3)
    settlement.apply(
        [
            part(m.message_id, 2, "REJECTD", "rejected"),
            part(m.message_id, 0, "UNDELIV", "undelivered"),
        ]
    )
    assert row(db, m.message_id)["state"] == "rejected"


def test_a_non_final_note_is_upgraded_by_the_final_receipt(db, settlement, make):
    [m] = make(1, parts=2)
    settlement.apply([Submitted(m.message_id, ["a", "b"], "conn", T)])
    settlement.apply(
        [part(m.message_id, 0, "ENROUTE", "enroute", final=False), part(m.message_id, 1)]
    )
    assert parts_of(db, m.message_id) == {0: "enroute", 1: "delivered"}
    assert row(db, m.message_id)["state"] == "submitted"
    settlement.apply([part(m.message_id, 0, "ACCEPTD", "accepted", final=False)])
    assert parts_of(db, m.message_id)[0] == "enroute"
    settlement.apply([part(m.message_id, 0)])
    assert row(db, m.message_id)["state"] == "delivered"


def test_part_index_out_of_range_is_ignored(db, settlement, make):
    [m] = make(1, parts=1)
    applied = settlement.apply([part(m.message_id, 3)])
    assert applied.changed_ids == [] and parts_of(db, m.message_id) == {}
