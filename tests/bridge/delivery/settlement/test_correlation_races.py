"""Receipt correlation when two workers' reads of a connection's learned form disagree.

Each test interleaves two ReceiptBooks on one real Redis at a chosen point: ``Interleaved``
runs the other worker's steps right after its own read of the learned state, the window in
which that read goes stale.
"""

from __future__ import annotations

from bridge.delivery.settlement import learning
from bridge.delivery.settlement.correlation import ReceiptBook
from bridge.redis import keys as redis_keys
from smpp.codec.receipt import parse_receipt

T = 1_900_000_100.0


def dlr(smsc_id: str, stat: str = "DELIVRD"):
    receipt = parse_receipt(
        f"id:{smsc_id} sub:001 dlvrd:001 submit date:3003171747 "
        f"done date:3003171748 stat:{stat} err:000 text:hello"
    )
    assert receipt is not None
    return receipt


class Interleaved(ReceiptBook):
    """A ReceiptBook that runs ``meanwhile()`` once, just after its first read of the forms."""

    def __init__(self, redis, meanwhile) -> None:
        super().__init__(redis)
        self._meanwhile = meanwhile

    def forms(self, connection: str) -> learning.Forms:
        forms = super().forms(connection)
        if self._meanwhile is not None:
            run, self._meanwhile = self._meanwhile, None
            run()
        return forms


def learn(redis, connection: str, form: str) -> None:
    redis.hset(redis_keys.dlr_forms_key(connection), "learned", form)


def targets(events) -> list[tuple[str, int]]:
    return sorted((e.message_id, e.part_index) for e in events)


def test_a_letter_receipt_parked_before_its_resp_is_taken_under_a_learned_conversion(
    redis_client,
):
    """Learned hex2dec from votes, but this SMSC quotes "ABC1" as it is: the receipt came
    first, so the map side must take it from under its own spelling (and switch to same)."""
    book = ReceiptBook(redis_client)
    learn(redis_client, "c", "hex2dec")
    assert book.correlate("c", "auto", [(dlr("ABC1"), T)]) == ([], 1)
    events = book.map_submit_ids("c", "auto", [("m1", 0, "ABC1")])
    assert targets(events) == [("m1", 0)]
    assert redis_client.exists(redis_keys.dlr_orphan_key("c", "abc1")) == 0
    assert book.forms("c").learned == "same"
    assert redis_client.hget(redis_keys.dlr_forms_key("c"), "conflicts") == b"1"


def test_the_map_side_with_a_stale_conversion_takes_a_receipt_parked_under_same(redis_client):
    """The map side read hex2dec; meanwhile another worker switched the connection to same
    and parked an all-digit receipt under its own spelling before the resp was stored."""
    other = ReceiptBook(redis_client)
    learn(redis_client, "c", "hex2dec")

    def switch_and_park():
        learning.learn_same(redis_client, "c", other.forms("c"), "abc9")
        assert other.correlate("c", "auto", [(dlr("1234"), T)]) == ([], 1)

    book = Interleaved(redis_client, switch_and_park)
    events = book.map_submit_ids("c", "auto", [("m1", 0, "1234")])
    assert targets(events) == [("m1", 0)]
    assert redis_client.exists(redis_keys.dlr_orphan_key("c", "1234")) == 0


def test_under_a_learned_conversion_an_all_digit_receipt_of_another_resp_stays_parked(
    redis_client,
):
    """Learned hex2dec: receipt "1234" names resp "4d2", so resp "1234" must not take it."""
    book = ReceiptBook(redis_client)
    learn(redis_client, "c", "hex2dec")
    assert book.correlate("c", "auto", [(dlr("1234"), T)]) == ([], 1)
    assert book.map_submit_ids("c", "auto", [("m1", 0, "1234")]) == []
    assert redis_client.llen(redis_keys.dlr_orphan_key("c", "1234")) == 1
    assert targets(book.map_submit_ids("c", "auto", [("m2", 0, "4D2")])) == [("m2", 0)]
    assert redis_client.exists(redis_keys.dlr_orphan_key("c", "1234")) == 0


def _learning_connection(book: ReceiptBook) -> None:
    """Hex resps with letters (m1..m3) and one all-digit resp (m4), mapped while learning."""
    resps = [("m1", 0, "ABC1"), ("m2", 0, "ABC2"), ("m3", 0, "ABC3"), ("m4", 0, "1234")]
    assert book.map_submit_ids("c", "auto", resps) == []


def test_a_receipt_held_on_a_stale_read_is_released_by_its_own_call(redis_client):
    """The holder read "learning"; before it held its receipt another worker learned hex2dec
    (and drained the held set, empty then). The held receipt must not wait for another call."""
    learner = ReceiptBook(redis_client)
    _learning_connection(learner)

    def learn_hex2dec():
        votes = [(dlr(str(int(h, 16))), T) for h in ("abc1", "abc2", "abc3")]
        events, _ = learner.correlate("c", "auto", votes)
        assert targets(events) == [("m1", 0), ("m2", 0), ("m3", 0)]
        assert learner.forms("c").learned == "hex2dec"

    holder = Interleaved(redis_client, learn_hex2dec)
    # "4660" is 0x1234 in decimal: it matches m4 only through hex2dec, and casts no vote
    events, _ = holder.correlate("c", "auto", [(dlr("4660"), T)])
    assert targets(events) == [("m4", 0)]
    forms = learner.forms("c")
    assert forms.held == 0
    assert redis_client.exists(redis_keys.dlr_orphan_key("c", "4660")) == 0


def test_a_receipt_moved_by_a_stale_map_side_is_released_by_its_own_call(redis_client):
    """The map side read "learning" and found a receipt under a converted spelling; another
    worker had learned hex2dec meanwhile: the receipt is matched now, not left held."""
    learner = ReceiptBook(redis_client)
    _learning_connection(learner)
    parker = ReceiptBook(redis_client)
    # "4661" is 0x1235 in decimal, before its resp: parked (no map key of any kind yet)
    assert parker.correlate("c", "auto", [(dlr("4661"), T)]) == ([], 1)

    def learn_hex2dec():
        votes = [(dlr(str(int(h, 16))), T) for h in ("abc1", "abc2", "abc3")]
        learner.correlate("c", "auto", votes)
        assert learner.forms("c").learned == "hex2dec"

    mapper = Interleaved(redis_client, learn_hex2dec)
    events = mapper.map_submit_ids("c", "auto", [("m5", 0, "1235")])
    assert targets(events) == [("m5", 0)]
    assert learner.forms("c").held == 0
