"""apply(): conditional transitions that never go backwards, events, refunds exactly once,
and a fixed number of SQL statements per batch."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from bridge.delivery.settlement import Failed, Finalised, PartReceipt, Submitted
from tests.bridge.delivery.settlement.helpers import (
    StatementCounter,
    balance,
    events,
    refunds,
    row,
    smsc_ids,
    states,
)

T = 1_900_000_100.0


def receipt(
    mid: str,
    state: str = "delivered",
    stat: str = "DELIVRD",
    part: int = 0,
    final: bool = True,
    err: str | None = None,
    at: float = T + 5,
) -> PartReceipt:
    return PartReceipt(
        mid,
        part,
        f"smsc-{mid}-{part}",
        stat,
        state,
        final,
        err,
        datetime(2030, 3, 17, 17, 48, tzinfo=UTC),
        None,
        at,
    )


def test_submitted_then_delivered(db, settlement, make):
    [m] = make(1)
    settlement.claim([m], recovered=False)
    applied = settlement.apply([Submitted(m.message_id, ["AB12"], "conn-a", T)])
    assert applied.changed_ids == [m.message_id] and applied.settled_ids == [m.message_id]
    r = row(db, m.message_id)
    assert (r["state"], r["connection"]) == ("submitted", "conn-a")
    assert r["submitted_at"].timestamp() == T and smsc_ids(db, m.message_id) == ["AB12"]
    applied = settlement.apply([receipt(m.message_id)])
    assert applied.changed_ids == [m.message_id] and applied.settled_ids == []
    r = row(db, m.message_id)
    assert r["state"] == "delivered" and r["done_at"] == datetime(2030, 3, 17, 17, 48, tzinfo=UTC)
    assert [e[0] for e in events(db, m.message_id)] == ["submitted", "delivered"]
    assert refunds(db, [m.message_id]) == {m.message_id: 0}


def test_receipt_before_resp_applies_and_resp_fills_in_later(db, settlement, make):
    [m] = make(1)
    settlement.claim([m], recovered=False)
    settlement.apply([receipt(m.message_id)])
    r = row(db, m.message_id)
    assert r["state"] == "delivered" and r["submitted_at"] is not None  # the receipt proves it
    applied = settlement.apply([Submitted(m.message_id, ["AB12"], "conn-a", T)])
    assert applied.changed_ids == [m.message_id]
    r = row(db, m.message_id)
    assert r["state"] == "delivered"  # never back to submitted
    assert smsc_ids(db, m.message_id) == ["AB12"] and r["submitted_at"].timestamp() == T


def test_a_receipt_seen_twice_changes_nothing(db, settlement, make):
    [m] = make(1)
    settlement.apply([Submitted(m.message_id, ["AB12"], "conn-a", T)])
    settlement.apply([receipt(m.message_id)])
    before = row(db, m.message_id)
    applied = settlement.apply([receipt(m.message_id, "undelivered", "UNDELIV", at=T + 9)])
    assert applied.changed_ids == [] and applied.unchanged_ids == [m.message_id]
    assert row(db, m.message_id) == before
    assert [e[0] for e in events(db, m.message_id)] == ["submitted", "delivered"]


@pytest.mark.parametrize("state", ["rejected", "failed", "expired"])
def test_failed_refunds_once_and_a_repeat_changes_nothing(db, settlement, make, account, state):
    msgs = make(2, price=Decimal("1.60"))
    start = balance(db, account)
    settlement.claim(msgs, recovered=False)
    outcome = [Failed(m.message_id, state, "ESME_RINVDSTADR", T) for m in msgs]
    applied = settlement.apply(outcome)
    assert sorted(applied.refunded_ids) == sorted(m.message_id for m in msgs)
    assert balance(db, account) == start + Decimal("3.20")
    again = settlement.apply(outcome)
    assert again.changed_ids == [] and again.refunded_ids == []
    assert balance(db, account) == start + Decimal("3.20")
    assert refunds(db, [m.message_id for m in msgs]) == {m.message_id: 1 for m in msgs}
    r = row(db, msgs[0].message_id)
    assert (r["state"], r["error_code"]) == (state, "ESME_RINVDSTADR")
    assert events(db, msgs[0].message_id) == [(state, "ESME_RINVDSTADR")]


def test_failed_after_submitted_or_delivered_changes_nothing(db, settlement, make, account):
    msgs = make(2)
    settlement.apply([Submitted(m.message_id, ["1"], "c", T) for m in msgs])
    settlement.apply([receipt(msgs[1].message_id)])
    start = balance(db, account)
    applied = settlement.apply([Failed(m.message_id, "failed", "timeout", T) for m in msgs])
    assert applied.changed_ids == [] and applied.refunded_ids == []
    assert states(db, [m.message_id for m in msgs]) == {
        msgs[0].message_id: "submitted",
        msgs[1].message_id: "delivered",
    }
    assert balance(db, account) == start


def test_receipts_never_refund(db, settlement, make, account):
    msgs = make(3)
    settlement.apply([Submitted(m.message_id, ["1"], "c", T) for m in msgs])
    start = balance(db, account)
    settlement.apply(
        [
            receipt(msgs[0].message_id, "undelivered", "UNDELIV"),
            receipt(msgs[1].message_id, "expired", "EXPIRED"),
            Finalised(msgs[2].message_id, "rejected", "0x0B", None, T),
        ]
    )
    assert balance(db, account) == start and refunds(db) == {}
    assert set(states(db, [m.message_id for m in msgs]).values()) == {
        "undelivered",
        "expired",
        "rejected",
    }


def test_one_batch_composes_outcomes_of_one_message_in_order(db, settlement, make):
    [m] = make(1)
    settlement.apply(
        [
            Submitted(m.message_id, ["9"], "c", T),
            receipt(m.message_id),
            Failed(m.message_id, "failed", "late", T + 1),
        ]
    )
    assert row(db, m.message_id)["state"] == "delivered"
    assert [e[0] for e in events(db, m.message_id)] == ["submitted", "delivered"]


def test_unknown_message_ids_are_ignored(db, settlement, make):
    [m] = make(1)
    applied = settlement.apply(
        [Failed("0" * 26, "failed", None, T), Submitted(m.message_id, ["1"], "c", T)]
    )
    assert applied.changed_ids == [m.message_id]
    assert applied.settled_ids == ["0" * 26, m.message_id]


def test_a_second_submit_is_recorded_as_a_possible_duplicate(db, settlement, make):
    [m] = make(1)
    settlement.apply([Submitted(m.message_id, ["1"], "c", T)])
    settlement.apply([Submitted(m.message_id, ["2"], "c", T + 1)])
    r = row(db, m.message_id)
    assert r["state"] == "submitted" and r["possible_duplicate"]
    assert smsc_ids(db, m.message_id) == ["1", "2"]
    detail = events(db, m.message_id)[-1][1]
    assert detail is not None and "possible duplicate" in detail


def test_possible_duplicate_flag_on_an_outcome(db, settlement, make, redis_client):
    from bridge.redis import keys as redis_keys

    [m] = make(1)
    settlement.apply([Submitted(m.message_id, ["1"], "c", T, possible_duplicate=True)])
    assert row(db, m.message_id)["possible_duplicate"]
    assert int(redis_client.get(redis_keys.POSSIBLE_DUPLICATES)) == 1


def test_a_thousand_outcomes_take_a_fixed_number_of_statements(db, settlement, make, account):
    msgs = make(1000)
    settlement.claim(msgs, recovered=False)
    outcomes = (
        [Submitted(m.message_id, [f"s{i}"], "c", T) for i, m in enumerate(msgs[:400])]
        + [Failed(m.message_id, "rejected", "ESME_RINVDSTADR", T) for m in msgs[400:700]]
        + [receipt(m.message_id) for m in msgs[:200]]
        + [receipt(m.message_id, part=0) for m in msgs[700:]]
    )  # receipt before resp
    with StatementCounter(db.engine) as sql:
        applied = settlement.apply(outcomes)
    assert len(applied.changed_ids) == 1000 and len(applied.refunded_ids) == 300
    # lock-select, parts-select, parts-insert, messages-update, events-insert,
    # refunds-insert, balances-update
    assert len(sql.statements) <= 10, sql.statements
    counts: dict[str, int] = {}
    for state in states(db, [m.message_id for m in msgs]).values():
        counts[state] = counts.get(state, 0) + 1
    assert counts == {"delivered": 500, "submitted": 200, "rejected": 300}


def test_a_batch_of_any_size_takes_one_statement_per_kind(db, settlement, make):
    """The ids of a batch are one parameter (an array on PostgreSQL, JSON for json_each on
    SQLite): 2,500 messages are locked, updated and recorded in one statement each."""
    msgs = make(2500, price=Decimal("0.01"))
    outcomes = [Submitted(m.message_id, [f"s{i}"], "c", T) for i, m in enumerate(msgs)]
    with StatementCounter(db.engine) as sql:
        applied = settlement.apply(outcomes)
    assert len(applied.changed_ids) == 2500
    # lock-select, messages-update, events-insert
    assert len(sql.statements) == 3, sql.statements
    assert set(states(db, [m.message_id for m in msgs]).values()) == {"submitted"}


def test_a_refund_already_in_the_ledger_blocks_a_second_one(db, settlement, make, account):
    """bridge.storage.ledger.refund and settlement share the UNIQUE key refund:<message id>."""
    from bridge.storage import ledger

    [m] = make(1)
    with db.begin() as conn:
        ledger.refund(conn, [m.message_id], datetime.fromtimestamp(T, UTC))
    start = balance(db, account)
    applied = settlement.apply([Failed(m.message_id, "failed", "no route", T)])
    assert applied.changed_ids == [m.message_id] and applied.refunded_ids == []
    assert balance(db, account) == start and refunds(db, [m.message_id]) == {m.message_id: 1}
