"""The producing half: settlement writes each reported state change of a message with a
callback URL to the webhook outbox in the same transaction, the relay XADDs it to sb:webhooks
after the commit, and the sweep relays what a crash or a Redis outage left behind. Real Redis,
SQLite and PostgreSQL."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from sqlalchemy import func, select, update

from bridge.delivery.settlement import Failed, PartReceipt, Settlement, Submitted
from bridge.redis import keys
from bridge.storage.models import messages, webhook_outbox
from bridge.webhooks.events import decode_event
from tests.bridge.delivery.settlement.helpers import Clock, create_account, make_messages

T = 1_900_000_100.0
URL = "https://hooks.example.com/sms"


@pytest.fixture
def clock():
    return Clock(T)


@pytest.fixture
def settlement(db, redis_client, clock):
    return Settlement(db, redis_client, clock=clock)


@pytest.fixture
def make(db, clock):
    account = create_account(db, "acme", Decimal("1000.00"), clock.now)

    def factory(n=1, url: str | None = URL, events: str | None = "final", **kwargs):
        msgs = make_messages(db, account, n, clock.now, **kwargs)
        with db.begin() as conn:
            conn.execute(
                update(messages)
                .where(messages.c.id.in_([m.message_id for m in msgs]))
                .values(callback_url=url, callback_events=events if url else None)
            )
        return msgs

    return factory


def receipt(mid: str, state="delivered", stat="DELIVRD", err=None, at=T + 5) -> PartReceipt:
    return PartReceipt(mid, 0, f"smsc-{mid}", stat, state, True, err, None, None, at)


def stream(redis) -> list:
    return [decode_event(f) for _, f in redis.xrange(keys.webhooks_stream_key())]


def outbox_rows(db) -> int:
    with db.connect() as conn:
        return conn.execute(select(func.count()).select_from(webhook_outbox)).scalar_one()


def test_each_final_state_is_one_event_with_the_documented_body(db, redis_client, settlement, make):
    delivered, rejected, expired, failed = (m.message_id for m in make(4))
    settlement.apply([Submitted(delivered, ["s1"], "smsc1", T + 1)])
    assert stream(redis_client) == []  # submitted is not reported with callback_events=final
    settlement.apply(
        [
            receipt(delivered),
            Failed(rejected, "rejected", "ESME_RINVDSTADR", T + 2),
            Failed(expired, "expired", "validity elapsed", T + 3),
            Failed(failed, "failed", "no route", T + 4),
        ]
    )
    events = {e.message_id: e for e in stream(redis_client)}
    assert sorted(events) == sorted([delivered, rejected, expired, failed])
    for mid, state in [
        (delivered, "delivered"),
        (rejected, "rejected"),
        (expired, "expired"),
        (failed, "failed"),
    ]:
        e = events[mid]
        assert e.id == f"evt_{mid}_{state}" and e.kind == "message" and e.url == URL
        body = json.loads(e.body)
        assert body["id"] == e.id and body["type"] == f"message.{state}"
        data = body["data"]
        assert data["message_id"] == mid and data["state"] == state
        assert data["number"].startswith("+2547") and data["currency"] == "KES"
        assert data["cost"] == "0.80" and data["parts"] == 1 and data["accepted_at"]
        assert data["done_at"] is not None
    reject = json.loads(events[rejected].body)["data"]
    assert reject["error_code"] == "ESME_RINVDSTADR"
    assert reject["error_reason"] == "Invalid Destination Address"
    ok = json.loads(events[delivered].body)["data"]
    assert ok["error_code"] is None and ok["smsc_message_ids"] == ["s1"] and ok["submitted_at"]
    # webhooks.md: error_code and error_reason are both null when delivered
    assert ok["error_reason"] is None
    # a repeated receipt changes nothing and produces nothing
    settlement.apply([receipt(delivered, at=T + 9)])
    assert len(stream(redis_client)) == 4


def test_submitted_only_with_callback_events_all(db, redis_client, settlement, make):
    (final,) = (m.message_id for m in make(1, events="final"))
    (every,) = (m.message_id for m in make(1, events="all"))
    (raced,) = (m.message_id for m in make(1, events="all"))
    settlement.apply([Submitted(final, ["a"], "c", T + 1), Submitted(every, ["b"], "c", T + 1)])
    assert [e.id for e in stream(redis_client)] == [f"evt_{every}_submitted"]
    body = json.loads(stream(redis_client)[0].body)
    assert body["data"]["state"] == "submitted" and body["data"]["done_at"] is None
    # a receipt that overtook its submit_sm_resp still reports submitted, then delivered
    settlement.apply([receipt(raced)])
    assert [e.id for e in stream(redis_client)][1:] == [
        f"evt_{raced}_submitted",
        f"evt_{raced}_delivered",
    ]


def test_a_cancel_is_one_message_cancelled_event(db, redis_client, make, clock):
    from bridge.delivery.settlement.cancel import Canceller

    (one,) = (m.message_id for m in make(1, events="all"))
    batch = make(2, events="final")
    canceller = Canceller(db, redis_client, clock=clock)
    canceller.cancel_message(batch[0].account_id, one)
    canceller.cancel_batch(batch[0].account_id, batch[0].batch_id)
    canceller.cancel_message(batch[0].account_id, one)  # a repeat reports nothing more
    events = stream(redis_client)
    cancelled = [one] + [m.message_id for m in batch]
    assert [e.id for e in events] == [f"evt_{mid}_cancelled" for mid in cancelled]
    data = json.loads(events[0].body)["data"]  # no submitted: it never reached the SMSC
    assert json.loads(events[0].body)["type"] == "message.cancelled"
    assert data["state"] == "cancelled" and data["error_code"] is None
    assert data["error_reason"] == "cancelled by the account" and data["cost"] == "0.80"
    assert data["submitted_at"] is None and data["done_at"] is not None
    assert outbox_rows(db) == 0  # the cancel flushed its relayed rows


def test_messages_without_a_callback_url_produce_nothing(db, redis_client, settlement, make):
    (mid,) = (m.message_id for m in make(1, url=None))
    settlement.apply([Submitted(mid, ["a"], "c", T + 1), receipt(mid)])
    assert stream(redis_client) == [] and outbox_rows(db) == 0


def test_relayed_rows_go_with_the_next_transaction_or_the_flush(db, redis_client, settlement, make):
    a, b = (m.message_id for m in make(2))
    settlement.apply([Failed(a, "rejected", "ESME_RINVDSTADR", T + 1)])
    assert outbox_rows(db) == 1  # XADDed; its row goes with the next transaction
    settlement.apply([Failed(b, "rejected", "ESME_RINVDSTADR", T + 2)])
    assert outbox_rows(db) == 1  # a's deleted, b's waiting
    assert settlement.relay.flush() == 1
    assert outbox_rows(db) == 0 and len(stream(redis_client)) == 2


def test_redis_failing_at_enqueue_loses_nothing_the_sweep_relays_it(
    db, redis_client, settlement, make, clock
):
    mids = [m.message_id for m in make(3)]
    redis_client.set(keys.webhooks_stream_key(), "not a stream")  # every XADD now fails
    settlement.apply([Failed(m, "failed", "no route", T + 1) for m in mids])
    assert outbox_rows(db) == 3  # committed with the state change, not enqueued
    redis_client.delete(keys.webhooks_stream_key())
    assert settlement.relay.sweep(grace_seconds=30) == 0  # too young: maybe still in flight
    clock.advance(31)
    assert settlement.relay.sweep(grace_seconds=30) == 3
    assert sorted(e.message_id for e in stream(redis_client)) == sorted(mids)
    assert outbox_rows(db) == 0
    assert settlement.relay.sweep(grace_seconds=30) == 0


def test_the_outbox_costs_two_statements_per_batch(db, settlement, make):
    from tests.bridge.delivery.settlement.helpers import StatementCounter

    mids = [m.message_id for m in make(500)]
    with StatementCounter(db.engine) as sql:
        settlement.apply([Failed(m, "failed", "no route", T + 1) for m in mids])
    outbox = [s for s in sql.statements if "webhook_outbox" in s]
    assert len(outbox) == 1, outbox  # one executemany INSERT (+ one details SELECT)
    assert outbox_rows(db) == 500
