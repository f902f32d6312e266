"""Receipt correlation in Redis: by (connection, id spelling), orphans parked then matched."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bridge.config.core import MAX_VALIDITY_LIMIT
from bridge.delivery.settlement import Submitted
from bridge.delivery.settlement.correlation import RECEIPT_MARGIN, _Evidence, lookups
from bridge.redis import keys as redis_keys
from smpp.codec.receipt import parse_receipt
from tests.bridge.delivery.settlement.helpers import row

T = 1_900_000_100.0


def dlr(smsc_id: str, stat: str = "DELIVRD", err: str = "000", done: str = "3003171748"):
    return parse_receipt(
        f"id:{smsc_id} sub:001 dlvrd:001 submit date:3003171747 "
        f"done date:{done} stat:{stat} err:{err} text:hello"
    )


def settle_receipts(settlement, connection, form, receipts):
    events, parked = settlement.correlate(connection, form, receipts)
    settlement.apply(settlement.receipt_outcomes(events))
    return events, parked


def test_receipt_after_the_mapping_delivers(db, settlement, make):
    [m] = make(1)
    settlement.apply([Submitted(m.message_id, ["1A2B3C"], "conn-a", T)])
    assert settlement.map_submit_ids("conn-a", "hex", [(m.message_id, 0, "1A2B3C")]) == []
    events, parked = settle_receipts(settlement, "conn-a", "hex", [dlr("1a2b3c")])
    assert parked == 0 and [(e.message_id, e.part_index) for e in events] == [(m.message_id, 0)]
    r = row(db, m.message_id)
    assert r["state"] == "delivered"
    assert r["done_at"] == datetime(2030, 3, 17, 17, 48, tzinfo=UTC)  # naive = UTC


def test_receipt_first_is_parked_then_matched_by_the_mapping(db, settlement, make, redis_client):
    [m] = make(1)
    settlement.claim([m], recovered=False)
    events, parked = settlement.correlate("conn-a", "auto", [dlr("1a2b", "UNDELIV", "034")])
    assert (events, parked) == ([], 1)
    orphan = redis_keys.dlr_orphan_key("conn-a", "1a2b")
    assert redis_client.llen(orphan) == 1 and 0 < redis_client.ttl(orphan) <= 3600
    # the resp spells it upper-case with leading zeros: the same id
    matched = settlement.map_submit_ids("conn-a", "auto", [(m.message_id, 0, "001A2B")])
    assert [(e.message_id, e.receipt.stat) for e in matched] == [(m.message_id, "UNDELIV")]
    assert redis_client.exists(orphan) == 0
    settlement.apply(
        settlement.receipt_outcomes(matched) + [Submitted(m.message_id, ["001A2B"], "conn-a", T)]
    )
    r = row(db, m.message_id)
    assert (r["state"], r["error_code"]) == ("undelivered", "034")


def test_a_receipt_matching_only_by_conversion_is_held_until_learned(settlement, make):
    """Decimal resps, hex receipts: nothing is applied on one converted match; after
    LEARN_VOTES such receipts the connection adopts dec2hex and the held ones are matched."""
    msgs = make(4)
    resp_ids = ["1000001", "1000002", "1000003", "1000004"]  # hex: f4241 ... f4244
    settlement.map_submit_ids(
        "c", "auto", [(m.message_id, 0, sid) for m, sid in zip(msgs, resp_ids, strict=True)]
    )
    events, parked = settlement.correlate("c", "auto", [dlr("F4241")])
    assert (events, parked) == ([], 1)
    forms = settlement.receipts.forms("c")
    assert (forms.learned, forms.held) == (None, 1)
    events, _ = settlement.correlate("c", "auto", [dlr("F4242"), dlr("F4243")])
    assert settlement.receipts.forms("c").learned == "dec2hex"
    assert sorted(e.message_id for e in events) == sorted(m.message_id for m in msgs[:3])
    events, parked = settlement.correlate("c", "auto", [dlr("f4244")])
    assert parked == 0 and [e.message_id for e in events] == [msgs[3].message_id]
    assert settlement.receipts.forms("c").held == 0


def test_exact_wins_over_a_conversion_written_first(settlement, make):
    """The issue: "122" (0x122 = 290) must not take the receipt of "290", whichever is first."""
    a, b = make(2)
    settlement.map_submit_ids("c", "auto", [(a.message_id, 0, "122")])
    events, parked = settlement.correlate("c", "auto", [dlr("290")])  # overtook B's resp
    assert (events, parked) == ([], 1)  # held, not given to A
    matched = settlement.map_submit_ids("c", "auto", [(b.message_id, 0, "290")])
    assert [e.message_id for e in matched] == [b.message_id]
    assert settlement.receipts.forms("c").held == 0
    events, _ = settlement.correlate("c", "auto", [dlr("122")])
    assert [e.message_id for e in events] == [a.message_id]


def test_a_letter_id_matched_exactly_proves_same(settlement, make):
    [m] = make(1)
    settlement.map_submit_ids("c", "auto", [(m.message_id, 0, "ABC1")])
    settlement.correlate("c", "auto", [dlr("abc1")])
    assert settlement.receipts.forms("c").learned == "same"


def test_same_spelling_wins_over_a_colliding_derived_spelling(settlement, make):
    """ "10" (hex 16) and "16" share the spelling "16": each receipt finds its own message."""
    a, b = make(2)
    settlement.map_submit_ids("c", "auto", [(a.message_id, 0, "10"), (b.message_id, 0, "16")])
    events, _ = settlement.correlate("c", "auto", [dlr("10"), dlr("16")])
    assert [e.message_id for e in events] == [a.message_id, b.message_id]


def test_correlation_is_per_connection(settlement, make):
    [m] = make(1)
    settlement.map_submit_ids("conn-a", "str", [(m.message_id, 0, "abc")])
    events, parked = settlement.correlate("conn-b", "str", [dlr("abc")])
    assert (events, parked) == ([], 1)


def test_mapping_keys_expire(settlement, make, redis_client):
    [m] = make(1)
    settlement.map_submit_ids("conn-a", "dec", [(m.message_id, 2, "00042")])
    key = redis_keys.dlr_map_key("conn-a", "42")
    assert redis_client.get(key) == f"{m.message_id}:2".encode()
    top = MAX_VALIDITY_LIMIT * 60 + RECEIPT_MARGIN  # the longest validity, plus the margin
    assert top - 60 < redis_client.ttl(key) <= top


def let_redis_time_pass(redis_client, seconds: float) -> None:
    """What ``seconds`` of waiting does to the receipt keys: each TTL is that much shorter,
    and a key whose TTL runs out is gone (Redis's clock cannot be moved)."""
    for key in redis_client.scan_iter(match=redis_keys.PREFIX + "dlr:*"):
        left = redis_client.pttl(key)
        if left < 0:  # no TTL
            continue
        if left <= seconds * 1000:
            redis_client.delete(key)
        else:
            redis_client.pexpire(key, left - int(seconds * 1000))


@pytest.mark.parametrize("form", ["dec", "auto"])
def test_a_receipt_after_the_end_of_the_longest_validity_still_settles(
    db, settlement, make, redis_client, clock, form
):
    """A message at the largest validity a send can have, submitted at once: its SMSC sends
    the EXPIRED receipt an hour after the validity's end (late, or its clock behind ours)."""
    [m] = make(1, validity=MAX_VALIDITY_LIMIT * 60)
    settlement.claim([m], recovered=False)
    settlement.apply([Submitted(m.message_id, ["4242"], "c", clock())])
    assert settlement.map_submit_ids("c", form, [(m.message_id, 0, "4242")]) == []
    late = MAX_VALIDITY_LIMIT * 60 + 3_600
    let_redis_time_pass(redis_client, late)
    clock.advance(late)
    events, parked = settle_receipts(settlement, "c", form, [dlr("4242", "EXPIRED", "000")])
    assert parked == 0, "the receipt found no map and waits as an orphan (then is lost)"
    assert [(e.message_id, e.part_index) for e in events] == [(m.message_id, 0)]
    assert row(db, m.message_id)["state"] == "expired"


def test_the_receipt_side_takes_its_orphan_back_when_the_map_came_in_between(
    settlement, make, redis_client
):
    """The race: the receipt's lookup missed, the map was written (finding no orphan yet), then
    the receipt parks; its park-and-recheck block sees the map and takes the receipt back."""
    [m] = make(1)
    book = settlement.receipts
    receipt = dlr("77")
    assert book.map_submit_ids("c", "dec", [(m.message_id, 0, "77")]) == []  # no orphan yet
    waiting = [(receipt, T, "77", lookups("c", "77", "same"), False)]
    events, parked = book._park("c", waiting, None, _Evidence())
    assert parked == 0 and [e.message_id for e in events] == [m.message_id]
    assert redis_client.exists(redis_keys.dlr_orphan_key("c", "77")) == 0


def test_orphans_of_one_id_are_all_matched(settlement, make):
    [m] = make(1)
    settlement.correlate("c", "auto", [dlr("5", "ENROUTE")])
    settlement.correlate("c", "auto", [dlr("5", "DELIVRD")])
    matched = settlement.map_submit_ids("c", "auto", [(m.message_id, 0, "5")])
    assert [e.receipt.stat for e in matched] == ["ENROUTE", "DELIVRD"]


def test_network_error_and_err_become_the_error_code(settlement):
    from bridge.delivery.settlement.receipt_fields import receipt_error

    tlv = parse_receipt("id:1 stat:UNDELIV err:000", {0x0423: bytes([3, 0, 0x22])})
    assert tlv is not None
    assert receipt_error(tlv) == "net3:34"
    assert receipt_error(dlr("1", err="000")) is None
    both = parse_receipt("id:1 stat:UNDELIV err:0B1", {0x0423: bytes([1, 0, 5])})
    assert both is not None
    assert receipt_error(both) == "0B1/net1:5"


def test_status_shows_what_each_connection_learned_and_holds(settlement, make, redis_client):
    from bridge.cli.status import render_status
    from bridge.config import Config
    from bridge.ops.status import collect_status

    a, b = make(2)
    settlement.map_submit_ids("learns", "auto", [(a.message_id, 0, "ABC1")])
    settlement.correlate("learns", "auto", [dlr("abc1")])
    settlement.map_submit_ids("seq", "auto", [(b.message_id, 0, "122")])
    settlement.correlate("seq", "auto", [dlr("290")])  # held: matches "122" only as hex
    report = collect_status(Config(), redis_client, None)
    assert report["receipt_forms"]["learns"]["learned"] == "same"
    assert report["receipt_forms"]["seq"] == {
        "learned": "learning",
        "held": 1,
        "held_total": 1,
        "conflicts": 0,
        "votes": {"hex2dec": 0, "dec2hex": 0},
    }
    text = render_status(report)
    assert "receipt ids on seq: learning; 1 receipt(s) held now (1 ever), 0 conflict(s)" in text
    assert "receipt ids on learns: same;" in text
