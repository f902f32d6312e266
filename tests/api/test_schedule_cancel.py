"""send_at, validity and DELETE (cancel) through the real app, service, database and Redis."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from sqlalchemy import func, select, update

from bridge.redis import keys as redis_keys
from bridge.storage.models import ledger, messages
from tests.conftest import DEMO_PASSWORD

NUMBERS = "0701234567,0712345678"


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds")


def _z(moment: datetime) -> str:
    """How answers show a time: 2030-03-17T17:48:00.000Z."""
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _later(**delta) -> str:
    return _iso(datetime.now(UTC) + timedelta(**delta))


def _send(client, headers, **params):
    return client.simulate_post(
        "/api/v2/sms/send",
        json={"numbers": NUMBERS, "message_body": "Later, please", **params},
        headers=headers,
    )


def _balance(client, headers) -> Decimal:
    return Decimal(client.simulate_get("/api/v2/account/balance", headers=headers).json["balance"])


def _refunds(db, message_id: str) -> int:
    with db.connect() as conn:
        return conn.execute(
            select(func.count()).select_from(ledger).where(ledger.c.message_id == message_id)
        ).scalar_one()


@pytest.mark.parametrize(
    ("value", "needle"),
    [
        ("2001-01-01T00:00:00Z", "is not in the future"),
        (None, "is not in the future"),  # a second ago
        ("+31d", "more than 30 days ahead"),
        ("2030-03-17T17:48:00", "with its offset"),  # no offset
        ("tomorrow at noon", "with its offset"),
        ("2030-13-45T25:61:00Z", "with its offset"),
        (12345, "with its offset"),
        # valid ISO 8601, but outside what a time holds once in UTC: out of range, not "offset"
        ("0001-01-01T00:00:00+14:00", "is out of range: 0001-01-01T00:00:00+14:00 is before"),
        ("9999-12-31T23:59:59-01:00", "is out of range: 9999-12-31T23:59:59-01:00 is after"),
    ],
)
def test_a_bad_send_at_is_a_400_naming_it_and_charges_nothing(
    client, key_headers, redis_client, value, needle
):
    if value is None:
        value = _later(seconds=-1)
    elif value == "+31d":
        value = _later(days=30, minutes=1)
    before = _balance(client, key_headers)
    r = _send(client, key_headers, send_at=value)
    assert r.status_code == 400, r.json
    assert r.json["field"] == "send_at" and needle in r.json["error"], r.json
    assert r.json["error"].startswith("send_at")
    assert _balance(client, key_headers) == before
    assert redis_client.zcard(redis_keys.SCHEDULE_SET) == 0


@pytest.mark.parametrize("value", [0, -5, 1441, "ten", "1.5", 2.5, True])
def test_validity_out_of_bounds_is_a_400_naming_it(client, key_headers, value):
    r = _send(client, key_headers, validity=value)
    assert r.status_code == 400, r.json
    assert r.json["field"] == "validity"
    assert r.json["error"].startswith("validity must be a whole number of minutes"), r.json


def test_a_scheduled_send_is_charged_held_and_not_on_the_stream(
    client, key_headers, redis_client, db
):
    send_at = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=2)
    before = _balance(client, key_headers)
    r = _send(
        client, key_headers, send_at=send_at.isoformat().replace("+00:00", "Z"), validity="30"
    )
    assert r.status_code == 200, r.json
    body = r.json
    assert body["status"] == "accepted" and body["send_at"] == _z(send_at)
    assert {m["status"] for m in body["messages"]} == {"scheduled"}
    assert _balance(client, key_headers) == before - Decimal(body["cost"])  # charged at accept
    assert redis_client.xlen(redis_keys.OUTBOUND_STREAM) == 0  # not enqueued
    ids = [m["message_id"] for m in body["messages"]]
    scores = {mid: redis_client.zscore(redis_keys.SCHEDULE_SET, mid) for mid in ids}
    assert scores == {mid: send_at.timestamp() for mid in ids}
    status = client.simulate_get(f"/api/v2/sms/{ids[0]}", headers=key_headers).json
    assert status["state"] == "scheduled"
    assert status["send_at"] == _z(send_at)
    expires = datetime.fromisoformat(status["expires_at"].replace("Z", "+00:00"))
    assert expires == send_at + timedelta(minutes=30)  # validity counts from send_at
    assert status["events"][0]["state"] == "scheduled"


def test_an_offset_other_than_utc_is_the_same_moment(client, key_headers, redis_client):
    moment = datetime.now(UTC).replace(microsecond=0) + timedelta(days=3)
    nairobi = moment.astimezone(timezone(timedelta(hours=3)))
    r = _send(client, key_headers, send_at=nairobi.isoformat())  # ...T..+03:00
    assert r.status_code == 200, r.json
    mid = r.json["messages"][0]["message_id"]
    assert redis_client.zscore(redis_keys.SCHEDULE_SET, mid) == moment.timestamp()


def test_validity_without_send_at_counts_from_now(client, key_headers, db):
    r = _send(client, key_headers, validity=5)
    assert r.status_code == 200, r.json
    assert {m["status"] for m in r.json["messages"]} == {"accepted"}
    status = client.simulate_get(
        f"/api/v2/sms/{r.json['messages'][0]['message_id']}", headers=key_headers
    ).json
    created = datetime.fromisoformat(status["created_at"].replace("Z", "+00:00"))
    expires = datetime.fromisoformat(status["expires_at"].replace("Z", "+00:00"))
    assert abs((expires - created) - timedelta(minutes=5)) < timedelta(seconds=1)
    assert status["send_at"] is None


def test_cancel_refunds_exactly_once_and_repeats_answer_the_same(
    client, key_headers, redis_client, db
):
    before = _balance(client, key_headers)
    body = _send(client, key_headers, send_at=_later(hours=1)).json
    mid = body["messages"][0]["message_id"]
    price = body["messages"][0]["cost"]

    r = client.simulate_delete(f"/api/v2/sms/{mid}", headers=key_headers)
    assert r.status_code == 200, r.json
    assert r.json["state"] == "cancelled" and r.json["refunded"] == price
    assert r.json["events"][-1]["state"] == "cancelled"
    assert int(r.headers["x-ratelimit-limit"]) >= 1  # the /api/v2 rate limit applies
    assert redis_client.zscore(redis_keys.SCHEDULE_SET, mid) is None
    again = client.simulate_delete(f"/api/v2/sms/{mid}", headers=key_headers)
    assert again.status_code == 200 and again.json["refunded"] == price
    assert _refunds(db, mid) == 1
    # one message refunded, the other still scheduled and charged
    assert _balance(client, key_headers) == before - Decimal(body["cost"]) + Decimal(price)


def test_cancel_of_an_immediate_message_before_any_worker_took_it(client, key_headers, db):
    body = _send(client, key_headers).json
    mid = body["messages"][0]["message_id"]
    r = client.simulate_delete(f"/api/v2/sms/{mid}", headers=key_headers)
    assert r.status_code == 200, r.json
    assert r.json["state"] == "cancelled"


@pytest.mark.parametrize(
    ("state", "attempts", "needle"),
    [
        ("submitted", 1, "already submitted"),
        ("delivered", 1, "already delivered"),
        ("queued", 1, "being submitted"),  # a worker claimed it: it may be on the wire
    ],
)
def test_cancel_of_a_message_past_its_submit_is_a_409_with_its_state(
    client, key_headers, db, state, attempts, needle
):
    before = _balance(client, key_headers)
    mid = _send(client, key_headers).json["messages"][0]["message_id"]
    with db.begin() as conn:
        conn.execute(
            update(messages).where(messages.c.id == mid).values(state=state, attempts=attempts)
        )
    r = client.simulate_delete(f"/api/v2/sms/{mid}", headers=key_headers)
    assert r.status_code == 409, r.json
    assert r.json["state"] == state and needle in r.json["error"], r.json
    assert _refunds(db, mid) == 0
    assert _balance(client, key_headers) < before


def test_another_accounts_message_and_batch_answer_404(client, key_headers, bridge_service):
    body = _send(client, key_headers, send_at=_later(hours=1)).json
    other = bridge_service.create_account("other", DEMO_PASSWORD, balance=Decimal("10.00"))
    other_key = {"X-API-Key": bridge_service.generate_key(other.id).api_key}
    mid = body["messages"][0]["message_id"]
    r = client.simulate_delete(f"/api/v2/sms/{mid}", headers=other_key)
    assert r.status_code == 404 and r.json == {"error": "Message not found."}
    r = client.simulate_delete(f"/api/v2/batches/{body['batch_id']}", headers=other_key)
    assert r.status_code == 404 and r.json == {"error": "Batch not found."}
    for path in (f"/api/v2/sms/{'Z' * 26}", "/api/v2/sms/not-an-id!"):
        assert client.simulate_delete(path, headers=key_headers).status_code == 404
    # still scheduled and charged
    status = client.simulate_get(f"/api/v2/sms/{mid}", headers=key_headers).json
    assert status["state"] == "scheduled"


def test_cancel_needs_the_api_key(client, key_headers):
    mid = _send(client, key_headers, send_at=_later(hours=1)).json["messages"][0]["message_id"]
    r = client.simulate_delete(f"/api/v2/sms/{mid}")
    assert r.status_code == 401 and r.json["error"] == "API key is required"
    assert "x-ratelimit-remaining" in r.headers


def test_batch_cancel_counts_cancelled_and_not_cancellable(client, key_headers, db):
    before = _balance(client, key_headers)
    body = _send(
        client, key_headers, numbers="0701234567,0712345678,0722000111", send_at=_later(hours=1)
    ).json
    ids = [m["message_id"] for m in body["messages"]]
    with db.begin() as conn:  # one of them already went out
        conn.execute(
            update(messages).where(messages.c.id == ids[0]).values(state="submitted", attempts=1)
        )
    r = client.simulate_delete(f"/api/v2/batches/{body['batch_id']}", headers=key_headers)
    assert r.status_code == 200, r.json
    price = Decimal(body["messages"][1]["cost"])
    assert r.json["cancelled"] == 2 and r.json["not_cancellable"] == 1
    assert r.json["already_cancelled"] == 0
    assert Decimal(r.json["refunded"]) == 2 * price
    assert r.json["states"]["cancelled"] == 2 and r.json["states"]["submitted"] == 1
    again = client.simulate_delete(f"/api/v2/batches/{body['batch_id']}", headers=key_headers).json
    assert again["cancelled"] == 0 and again["already_cancelled"] == 2
    assert again["refunded"] == "0.00"
    assert _balance(client, key_headers) == before - Decimal(body["cost"]) + 2 * price
    assert sum(_refunds(db, mid) for mid in ids) == 2


def test_delete_is_in_the_openapi_document_and_the_preflight(client):
    doc = client.simulate_get("/api/v2/openapi.json").json
    assert doc["paths"]["/api/v2/sms/{message_id}"]["delete"]["operationId"] == "cancel_message"
    assert "409" in doc["paths"]["/api/v2/sms/{message_id}"]["delete"]["responses"]
    assert doc["paths"]["/api/v2/batches/{batch_id}"]["delete"]["operationId"] == "cancel_batch"
    params = doc["components"]["schemas"]["SendParams"]["properties"]
    assert (
        params["send_at"]["format"] == "date-time" and "30 days" in params["send_at"]["description"]
    )
    assert params["validity"]["type"] == "integer" and params["validity"]["minimum"] == 1
    r = client.simulate_options("/api/v2/sms/x")
    assert "DELETE" in r.headers["access-control-allow-methods"]
