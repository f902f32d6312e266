"""GET /api/v2/sms/{message_id} through the real app (falcon.testing), on both databases."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from falcon import testing
from sqlalchemy import event

from api.app import create_app
from bridge.delivery.settlement import Failed, PartReceipt, Settlement, Submitted
from bridge.redis import keys as redis_keys
from bridge.redis.outbox import decode_entry


@pytest.fixture
def client(bridge_config, bridge_service, redis_client):
    return testing.TestClient(create_app(bridge_config, bridge_service, redis_client))


@pytest.fixture
def sent(client, demo_account, bridge_service, redis_client):
    """Two messages sent through the API (one request), claimed from the stream."""
    r = client.simulate_post(
        "/api/v2/sms/send",
        headers={"X-API-Key": demo_account.api_key},
        json={"numbers": "0701234567,0712345678", "message_body": "hi", "reference": "order-7"},
    )
    assert r.status_code == 200, r.text
    bridge_service.flusher.flush()
    entries = redis_client.xrange(redis_keys.OUTBOUND_STREAM)
    settlement = Settlement(bridge_service.db, redis_client)
    settlement.claim(
        [decode_entry(fields) for _id, fields in entries], recovered=False, connection="conn-a"
    )
    return r.json, settlement


def get(client, key, message_id):
    return client.simulate_get(f"/api/v2/sms/{message_id}", headers={"X-API-Key": key})


def test_a_delivered_message_with_its_history(client, demo_account, sent):
    body, settlement = sent
    mid = body["messages"][0]["message_id"]
    t = datetime(2030, 3, 17, 17, 40, tzinfo=UTC).timestamp()
    settlement.apply([Submitted(mid, ["1A2B"], "conn-a", t)])
    settlement.apply(
        [
            PartReceipt(
                mid,
                0,
                "1A2B",
                "DELIVRD",
                "delivered",
                True,
                None,
                datetime(2030, 3, 17, 17, 48, tzinfo=UTC),
                None,
                t + 9,
            )
        ]
    )
    r = get(client, demo_account.api_key, mid)
    assert r.status_code == 200
    assert r.headers["x-ratelimit-limit"] and r.headers["cache-control"] == "no-cache, private"
    m = r.json
    from api.resources.messages import MessageStatusAnswer

    assert MessageStatusAnswer().validate(m) == {}
    assert {
        k: m[k]
        for k in (
            "message_id",
            "batch_id",
            "number",
            "sender_id",
            "state",
            "parts",
            "cost",
            "currency",
            "reference",
            "smsc_message_ids",
            "error_code",
            "possible_duplicate",
        )
    } == {
        "message_id": mid,
        "batch_id": body["batch_id"],
        "number": "+254701234567",
        "sender_id": "SMSBRIDGE",
        "state": "delivered",
        "parts": 1,
        "cost": body["messages"][0]["cost"],
        "currency": body["currency"],
        "reference": "order-7",
        "smsc_message_ids": ["1A2B"],
        "error_code": None,
        "possible_duplicate": False,
    }
    assert m["submitted_at"] == "2030-03-17T17:40:00.000Z"
    assert m["done_at"] == "2030-03-17T17:48:00.000Z"
    assert m["created_at"].endswith("Z") and m["queued_at"].endswith("Z")
    assert [e["state"] for e in m["events"]] == ["accepted", "queued", "submitted", "delivered"]
    assert m["events"][2] == {
        "state": "submitted",
        "at": "2030-03-17T17:40:00.000Z",
        "detail": "1 part(s) via conn-a: 1A2B",
    }


def test_a_rejected_message_shows_its_error_and_is_refunded(
    client, demo_account, sent, bridge_service
):
    body, settlement = sent
    mid = body["messages"][1]["message_id"]
    before = bridge_service.balance(demo_account.id).balance
    settlement.apply([Failed(mid, "rejected", "ESME_RINVDSTADR", 1_900_000_000.0)])
    m = get(client, demo_account.api_key, mid).json
    assert (m["state"], m["error_code"], m["smsc_message_ids"]) == (
        "rejected",
        "ESME_RINVDSTADR",
        [],
    )
    assert m["events"][-1] == {
        "state": "rejected",
        "at": "2030-03-17T17:46:40.000Z",
        "detail": "ESME_RINVDSTADR",
    }
    after = bridge_service.balance(demo_account.id).balance
    assert after - before == Decimal(m["cost"])


def test_other_accounts_and_unknown_ids_are_not_found(client, demo_account, sent, bridge_service):
    body, _ = sent
    mid = body["messages"][0]["message_id"]
    other = bridge_service.create_account("other", "other-password-1")
    key = bridge_service.generate_key(other.id, expiry_days=30).api_key
    for k, ident in (
        (key, mid),
        (demo_account.api_key, "0" * 26),
        (demo_account.api_key, "not-an-id!"),
        (demo_account.api_key, "x" * 40),
    ):
        r = get(client, k, ident)
        assert (r.status_code, r.json) == (404, {"error": "Message not found."}), ident
    assert get(client, demo_account.api_key, mid.lower()).status_code == 200


def test_the_key_is_required(client, sent):
    body, _ = sent
    r = client.simulate_get(f"/api/v2/sms/{body['messages'][0]['message_id']}")
    assert r.status_code == 401 and r.json["error"] == "API key is required"
    assert "x-ratelimit-remaining" in r.headers


def test_send_is_still_the_send_route(client, demo_account):
    r = client.simulate_get("/api/v2/sms/send", headers={"X-API-Key": demo_account.api_key})
    assert r.status_code == 400  # the send endpoint's own validation, not a message lookup


def test_the_operation_is_in_the_openapi_document(client):
    from openapi_spec_validator import validate

    doc = client.simulate_get("/api/v2/openapi.json").json
    validate(doc)
    op = doc["paths"]["/api/v2/sms/{message_id}"]["get"]
    assert {"200", "401", "404", "429", "503"} == set(op["responses"])
    assert op["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "/MessageStatus"
    )
    props = doc["components"]["schemas"]["MessageStatus"]["properties"]
    assert {"message_id", "state", "cost", "events", "possible_duplicate", "done_at"} <= set(props)


def test_history_is_in_life_order_when_the_receipt_came_first(client, demo_account, sent):
    body, settlement = sent
    mid = body["messages"][0]["message_id"]
    t = 1_900_000_000.0
    settlement.apply([PartReceipt(mid, 0, "7", "DELIVRD", "delivered", True, None, None, None, t)])
    settlement.apply([Submitted(mid, ["7"], "conn-a", t + 0.5)])  # the resp stored later
    events = get(client, demo_account.api_key, mid).json["events"]
    assert [e["state"] for e in events] == ["accepted", "queued", "submitted", "delivered"]
    assert events[3]["at"] < events[2]["at"]  # the times stay true


def test_batch_totals_and_refunds_are_one_snapshot(client, demo_account, sent, bridge_service):
    """The states and the refunded sum come from ONE statement: read in two, a settlement that
    fails and refunds a message could commit between them (PostgreSQL's READ COMMITTED gives
    each statement its own snapshot) and the answer would show the refund of a message it
    still counts as queued."""
    body, settlement = sent
    mid = body["messages"][1]["message_id"]
    settlement.apply([Failed(mid, "rejected", "ESME_RINVDSTADR", 1_900_000_000.0)])
    reads: list[str] = []

    def grab(conn, cursor, statement, parameters, context, executemany):
        if statement.lstrip().upper().startswith("SELECT") and (
            "messages" in statement or "ledger" in statement
        ):
            reads.append(statement)

    engine = bridge_service.db.engine
    event.listen(engine, "before_cursor_execute", grab)
    try:
        r = client.simulate_get(
            f"/api/v2/batches/{body['batch_id']}", headers={"X-API-Key": demo_account.api_key}
        )
    finally:
        event.remove(engine, "before_cursor_execute", grab)
    assert r.status_code == 200, r.text
    assert (r.json["states"]["rejected"], r.json["states"]["queued"]) == (1, 1)
    assert Decimal(r.json["refunded"]) == Decimal(body["messages"][1]["cost"])
    totals = [s for s in reads if "GROUP BY" in s.upper()]
    assert len(totals) == 1 and "ledger" in totals[0], reads
    assert not [s for s in reads if "ledger" in s and "GROUP BY" not in s.upper()], reads
