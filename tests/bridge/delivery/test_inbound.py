"""Inbound (MO) through the worker against the simulated SMSC: stored before acknowledged,
reassembled, deduplicated, routed by number and keyword, opt-outs honoured by later sends."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from bridge.errors import InvalidInput
from bridge.redis import keys as redis_keys
from bridge.storage.models import inbound_messages, optouts
from smpp.codec.status import ESME_ROK, ESME_RX_T_APPN
from tests.bridge.delivery.conftest import database_held
from tests.harness.procs import wait_until

LONG = "A handset writes a long reply that needs three SMS parts to arrive whole. " * 5
ROUTES = (
    {"number": "22141", "keyword": "JOIN", "account": "beta"},
    {"number": "22141", "keyword": "ACME", "account": "beta"},
    {"number": "22141", "account": "engine"},
    {"number": "+254709000111", "account": "beta"},
)


@pytest.fixture
def inbound(bridge, start_worker):
    """A worker whose [[inbound]] tables route 22141 to engine (JOIN... and ACME... to beta) and the long
    number to beta; returns (worker, beta's account id)."""
    beta = bridge.service.create_account("beta", "beta-password-1", sender_id="BETA")
    bridge.config = bridge.config.replace(inbound=ROUTES)
    worker = start_worker()
    wait_until(lambda: len(bridge.sim.bound) == 2, message="two binds")
    return worker, beta.id


def _rows(bridge):
    with bridge.db.connect() as conn:
        query = select(inbound_messages).order_by(inbound_messages.c.received_at)
        return conn.execute(query).mappings().all()


def _answered(bridge, index: int) -> dict[int, int]:
    wait_until(lambda: bridge.sim.mo[index].acknowledged, message="MO answered")
    return bridge.sim.mo[index].responses


def test_mo_single_and_multipart_out_of_order_stored_once_and_routed(bridge, inbound):
    _, beta = inbound
    bridge.sim.send_mo("254700000001", "22141", "Hello there")
    bridge.sim.send_mo(
        "254700000002", "22141", "join " + LONG, parts_method="udh", order=[2, 0, 0, 1]
    )
    bridge.sim.send_mo("254700000003", "254709000111", LONG, parts_method="sar", order=[1, 2, 1, 0])
    for i in range(3):
        assert set(_answered(bridge, i).values()) == {ESME_ROK}
    wait_until(lambda: len(_rows(bridge)) == 3, message="three MO stored")
    rows = {r["number"]: r for r in _rows(bridge)}
    one, two, three = rows["+254700000001"], rows["+254700000002"], rows["+254700000003"]
    assert (one["account_id"], one["to"], one["text"], one["parts"]) == (
        bridge.account_id,
        "22141",
        "Hello there",
        1,
    )
    assert (two["account_id"], two["keyword"], two["text"], two["parts"]) == (
        beta,
        "JOIN",
        "join " + LONG,
        3,
    )
    assert (three["account_id"], three["to"], three["text"]) == (beta, "254709000111", LONG)


def test_a_redelivered_mo_is_stored_once_and_unrouted_ones_are_kept(bridge, inbound):
    worker, _ = inbound
    bridge.sim.send_mo("254700000004", "22141", "twice")
    _answered(bridge, 0)
    bridge.sim.send_mo("254700000004", "22141", "twice")  # the SMSC sends it again
    _answered(bridge, 1)
    bridge.sim.send_mo("254700000005", "99999", "to a number nobody routes")
    _answered(bridge, 2)
    rows = _rows(bridge)
    assert [r["text"] for r in rows] == ["twice", "to a number nobody routes"]
    assert rows[1]["account_id"] is None
    assert worker.inbound.duplicates == 1 and worker.inbound.unrouted == 1
    assert bridge.service.unrouted_count() == 1
    counter = redis_keys.unrouted_mo_count_key()  # what `smpp-bridge status` shows
    wait_until(lambda: bridge.redis.get(counter) == b"1", message="unrouted counted")


def _database_unavailable(database_url: str, db):
    """Hold the database so no MO can be written for a while (SQLite: another connection's
    write transaction; PostgreSQL: an exclusive lock on the table)."""
    return database_held(database_url, db, "inbound_messages", mode="ACCESS EXCLUSIVE")


def test_an_mo_that_cannot_be_stored_is_not_acknowledged_and_is_stored_on_redelivery(
    bridge, inbound, database_url
):
    with _database_unavailable(database_url, bridge.db):
        bridge.sim.send_mo("254700000006", "22141", "join " + LONG, parts_method="udh")
        answers = _answered(bridge, 0)
    # the two first parts were kept in memory (ROK); the one that completed the message
    # could not be stored, so it was refused for redelivery, never acknowledged and dropped
    assert sorted(answers.values()) == [ESME_ROK, ESME_ROK, ESME_RX_T_APPN]
    assert _rows(bridge) == []
    [again] = bridge.sim.resend_mo(0)
    wait_until(lambda: bridge.sim.mo[0].responses.get(again) == ESME_ROK, message="redelivery")
    [row] = _rows(bridge)
    assert (row["text"], row["parts"], row["keyword"]) == ("join " + LONG, 3, "JOIN")


def test_stop_refuses_later_sends_without_charge_and_start_allows_them_again(bridge, inbound):
    number = "+254700000007"
    bridge.sim.send_mo(number[1:], "22141", "stop")
    _answered(bridge, 0)
    with bridge.db.connect() as conn:
        [row] = conn.execute(select(optouts)).mappings().all()
    assert (row["account_id"], row["number"], row["source"]) == (bridge.account_id, number, "sms")
    before = bridge.balance()
    with pytest.raises(InvalidInput) as refused:
        bridge.service.send(bridge.account_id, number, "a promotion")
    assert refused.value.extra["refused"] == [{"number": number, "reason": "opted out"}]
    assert bridge.balance() == before
    body = bridge.service.send(bridge.account_id, [number, "+254700000008"], "a promotion").body
    assert body["count"] == 1 and [m["number"] for m in body["messages"]] == ["+254700000008"]
    assert body["refused"] == [{"number": number, "reason": "opted out"}]
    assert bridge.balance() == before - 1 * bridge.config.price_per_part
    _, beta = inbound
    # the opt-out is the account's own: beta may still send to the number
    bridge.service.topup(beta, bridge.config.price_per_part)
    assert bridge.service.send(beta, number, "from beta").body["count"] == 1
    bridge.sim.send_mo(number[1:], "22141", "START please")
    _answered(bridge, 1)
    assert bridge.service.send(bridge.account_id, number, "welcome back").body["count"] == 1
    actions = [r["action"] for r in _rows(bridge)]
    assert actions == ["optout", "optin"]


def test_stop_keyword_on_a_shared_short_code_opts_out_of_the_keywords_account_only(bridge, inbound):
    """22141 is engine's short code, shared with beta behind the keyword ACME: "STOP ACME" and
    "acme stop." opt the handset out of beta, never engine; "Start, ACME" opts it back in."""
    _, beta = inbound
    number, other = "+254700000010", "+254700000011"
    bridge.sim.send_mo(number[1:], "22141", "  STOP ACME ")
    bridge.sim.send_mo(other[1:], "22141", "acme stop.")
    for i in range(2):
        _answered(bridge, i)
    with bridge.db.connect() as conn:
        rows = conn.execute(select(optouts).order_by(optouts.c.number)).mappings().all()
    assert [(r["account_id"], r["number"]) for r in rows] == [(beta, number), (beta, other)]
    bridge.service.topup(beta, 2 * bridge.config.price_per_part)
    before = bridge.service.balance(beta).balance
    with pytest.raises(InvalidInput) as refused:
        bridge.service.send(beta, [number, other], "a promotion")
    assert [r["number"] for r in refused.value.extra["refused"]] == [number, other]
    assert bridge.service.balance(beta).balance == before  # not charged
    # the other account behind the plain number may still send to it
    assert bridge.service.send(bridge.account_id, number, "from engine").body["count"] == 1
    bridge.sim.send_mo(number[1:], "22141", "Start, ACME!")
    _answered(bridge, 2)
    assert bridge.service.send(beta, number, "welcome back").body["count"] == 1
    assert bridge.service.balance(beta).balance == before - bridge.config.price_per_part
    stored = {(r["text"], r["account_id"], r["action"]) for r in _rows(bridge)}
    assert stored == {
        ("  STOP ACME ", beta, "optout"),
        ("acme stop.", beta, "optout"),
        ("Start, ACME!", beta, "optin"),
    }


def test_an_mo_for_an_account_with_an_inbound_url_becomes_one_inbound_webhook_event(
    bridge, inbound
):
    from bridge.webhooks.events import decode_event

    worker, beta = inbound
    bridge.service.set_inbound_url(beta, "https://93.184.216.34/mo")  # a literal public address
    worker.inbound._accounts_until = 0  # the store caches accounts for 10 s
    bridge.sim.send_mo("254700000009", "254709000111", "reply YES")
    _answered(bridge, 0)
    stream = redis_keys.webhooks_stream_key()
    wait_until(lambda: bridge.redis.xlen(stream) == 1, message="one inbound event")
    [(_, fields)] = bridge.redis.xrange(stream)
    event = decode_event(fields)
    [row] = _rows(bridge)
    assert (event.kind, event.account_id, event.url) == (
        "inbound",
        beta,
        "https://93.184.216.34/mo",
    )
    assert event.id == f"evt_in_{row['id']}"
    body = json.loads(event.body)
    assert body["type"] == "inbound.received" and body["data"]["text"] == "reply YES"
    assert body["data"]["number"] == "+254700000009"
    wait_until(lambda: _rows(bridge)[0]["webhook_url"] is None, message="outbox column cleared")
