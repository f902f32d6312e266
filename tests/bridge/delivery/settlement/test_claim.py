"""claim(): one UPDATE ... RETURNING per batch, dedupe of stream entries, possible duplicates."""

from __future__ import annotations

from bridge.redis import keys as redis_keys
from tests.bridge.delivery.settlement.helpers import StatementCounter, row, states


def test_claim_moves_accepted_to_queued_and_counts_attempts(db, settlement, make):
    msgs = make(3)
    with StatementCounter(db.engine) as sql:
        result = settlement.claim(msgs, recovered=False, connection="conn-a")
    assert len(sql.statements) == 1 and "RETURNING" in sql.statements[0].upper()
    assert [c.message.message_id for c in result.claimed] == [m.message_id for m in msgs]
    assert all(c.attempts == 1 and not c.possible_duplicate for c in result.claimed)
    assert result.duplicates == []
    r = row(db, msgs[0].message_id)
    assert (r["state"], r["attempts"], r["connection"]) == ("queued", 1, "conn-a")
    assert r["queued_at"] is not None


def test_a_fresh_entry_of_a_message_claimed_elsewhere_is_a_duplicate(db, settlement, make):
    """The sweeper may re-enqueue a message in flight in another worker: never send it twice."""
    msgs = make(2)
    settlement.claim(msgs[:1], recovered=False)
    result = settlement.claim(msgs, recovered=False)
    assert [c.message.message_id for c in result.claimed] == [msgs[1].message_id]
    assert result.duplicates == [msgs[0].message_id]
    assert row(db, msgs[0].message_id)["attempts"] == 1


def test_messages_past_queued_are_duplicates(db, settlement, make):
    msgs = make(2)
    settlement.claim(msgs, recovered=False)
    from bridge.delivery.settlement import Submitted

    settlement.apply([Submitted(msgs[0].message_id, ["x1"], "conn-a", 1.0)])
    result = settlement.claim(msgs, recovered=True)
    assert [c.message.message_id for c in result.claimed] == [msgs[1].message_id]
    assert result.duplicates == [msgs[0].message_id]
    assert states(db, [msgs[0].message_id]) == {msgs[0].message_id: "submitted"}


def test_recovered_claim_flags_and_counts_possible_duplicates(db, settlement, make, redis_client):
    msgs = make(3)
    settlement.claim(msgs[:2], recovered=False)  # a worker claimed two, then died
    result = settlement.claim(msgs, recovered=True)
    by_id = {c.message.message_id: c for c in result.claimed}
    assert [by_id[m.message_id].attempts for m in msgs] == [2, 2, 1]
    assert [by_id[m.message_id].possible_duplicate for m in msgs] == [True, True, False]
    assert [row(db, m.message_id)["possible_duplicate"] for m in msgs] == [True, True, False]
    assert int(redis_client.get(redis_keys.POSSIBLE_DUPLICATES)) == 2


def test_a_batch_with_two_entries_of_one_message_claims_it_once(db, settlement, make):
    msgs = make(1)
    result = settlement.claim(msgs + msgs, recovered=False)
    assert len(result.claimed) == 1 and result.duplicates == []
    assert row(db, msgs[0].message_id)["attempts"] == 1


def test_release_undoes_a_claim_so_recovery_is_not_a_duplicate(db, settlement, make):
    msgs = make(1)
    settlement.claim(msgs, recovered=False)
    assert settlement.release([msgs[0].message_id]) == 1
    result = settlement.claim(msgs, recovered=True)
    assert result.claimed[0].attempts == 1 and not result.claimed[0].possible_duplicate


def test_mark_possible_duplicates_counts_only_new_flags(db, settlement, make, redis_client):
    msgs = make(2)
    assert settlement.mark_possible_duplicates([m.message_id for m in msgs]) == 2
    assert settlement.mark_possible_duplicates([msgs[0].message_id]) == 0
    assert int(redis_client.get(redis_keys.POSSIBLE_DUPLICATES)) == 2
