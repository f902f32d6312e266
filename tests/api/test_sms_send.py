"""Sending through HTTP, on SQLite and PostgreSQL: contract answers, money, the outbound stream."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import func, select

from bridge.redis import keys as redis_keys
from bridge.storage.models import messages
from tests.api.helpers import assert_common_headers, assert_rate_headers, basic

V2 = "/api/v2/sms/send"
V1 = "/v1/sms/send"


def _rows(db) -> int:
    with db.connect() as conn:
        return conn.execute(select(func.count()).select_from(messages)).scalar_one()


def _balance(service, demo) -> Decimal:
    return service.balance(demo.id).balance


def test_v2_send_by_post_json(client, key_headers, bridge_service, demo_account, db, redis_client):
    r = client.simulate_post(
        V2,
        headers=key_headers,
        json={"numbers": "0701234567, +254712345678,254701234567", "message_body": "Hello"},
    )
    assert r.status_code == 200, r.text
    body = r.json
    assert body["status"] == "accepted" and body["count"] == 2  # the same number twice -> once
    assert body["cost"] == "1.60" and body["currency"] == "KES" and body["balance"] == "998.40"
    assert [m["number"] for m in body["messages"]] == ["+254701234567", "+254712345678"]
    assert all(m["status"] == "accepted" and m["cost"] == "0.80" for m in body["messages"])
    assert_common_headers(r)
    assert_rate_headers(r)
    assert _balance(bridge_service, demo_account) == Decimal("998.40")
    assert _rows(db) == 2
    assert redis_client.xlen(redis_keys.OUTBOUND_STREAM) == 2


def test_v2_send_by_get_with_api_key_parameter(client, demo_account, db):
    r = client.simulate_get(
        V2, params={"api_key": demo_account.api_key, "numbers": "0701234567", "message_body": "hi"}
    )
    assert r.status_code == 200 and r.json["count"] == 1
    assert _rows(db) == 1


def test_v2_send_form_and_multipart_and_reference(client, key_headers):
    r = client.simulate_post(
        V2,
        headers={**key_headers, "Content-Type": "application/x-www-form-urlencoded"},
        body="numbers=0701234567&message_body=Hi+there&reference=order-17"
        "&sender_id=ACME&callback_url=https%3A%2F%2Fexample.com%2Fdlr",
    )
    assert r.status_code == 200, r.text
    assert r.json["reference"] == "order-17"
    boundary = "b0und"
    multipart = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="numbers"\r\n\r\n'
        f"0712345678\r\n--{boundary}\r\nContent-Disposition: form-data; "
        f'name="message_body"\r\n\r\nHi\r\n--{boundary}--\r\n'
    )
    r = client.simulate_post(
        V2,
        body=multipart,
        headers={**key_headers, "Content-Type": f"multipart/form-data; boundary={boundary}"},
    )
    assert r.status_code == 200 and r.json["messages"][0]["number"] == "+254712345678"


def test_body_wins_over_query(client, key_headers):
    r = client.simulate_post(
        V2,
        headers=key_headers,
        params={"numbers": "0799"},
        json={"numbers": "0701234567", "message_body": "x"},
    )
    assert r.status_code == 200 and r.json["messages"][0]["number"] == "+254701234567"


def test_numbers_as_a_json_list(client, key_headers):
    r = client.simulate_post(
        V2, headers=key_headers, json={"numbers": ["0701234567", "0712345678"], "message_body": "x"}
    )
    assert r.status_code == 200 and r.json["count"] == 2


def test_invalid_numbers_charge_nothing(
    client, key_headers, bridge_service, demo_account, db, redis_client
):
    r = client.simulate_post(
        V2,
        headers=key_headers,
        json={"numbers": "0701234567, 12345, 0201234567", "message_body": "x"},
    )
    assert r.status_code == 400
    assert r.json["error"] == "Invalid phone number format."
    assert r.json["invalid_numbers"] == ["12345", "0201234567"]  # a landline is not mobile
    assert _balance(bridge_service, demo_account) == Decimal("1000.00")
    assert _rows(db) == 0 and redis_client.xlen(redis_keys.OUTBOUND_STREAM) == 0


@pytest.mark.parametrize(
    "params,field",
    [
        ({"message_body": "x"}, "numbers"),
        ({"numbers": "", "message_body": "x"}, "numbers"),
        ({"numbers": " , ", "message_body": "x"}, "numbers"),
        ({"numbers": "0701234567"}, "message_body"),
        ({"numbers": "0701234567", "message_body": ""}, "message_body"),
        ({"numbers": 701234567, "message_body": "x"}, "numbers"),
        ({"numbers": "0701234567", "message_body": ["a", "b"]}, "message_body"),
        ({"numbers": "0701234567", "message_body": "x", "sender_id": "NOTMINE"}, "sender_id"),
        ({"numbers": "0701234567", "message_body": "x", "reference": "r" * 129}, "reference"),
        ({"numbers": "0701234567", "message_body": "x", "callback_url": "ftp://x"}, "callback_url"),
    ],
)
def test_bad_parameters_are_400_naming_the_field(client, key_headers, params, field):
    r = client.simulate_post(V2, headers=key_headers, json=params)
    assert r.status_code == 400, r.text
    assert field in r.json["error"]
    assert r.json.get("field") == field


@pytest.mark.parametrize("path", [V2, V1])
def test_insufficient_balance_is_402_and_nothing_queued(
    client, bridge_service, db, redis_client, path
):
    poor = bridge_service.create_account("poor", "pw-poor-1", balance=Decimal("1.00"))
    key = bridge_service.generate_key(poor.id)
    r = client.simulate_post(
        path,
        headers={"X-API-Key": key.api_key} if path == V2 else basic("poor", "pw-poor-1"),
        json={"numbers": "0701234567,0712345678", "message_body": "x"},
    )
    assert r.status_code == 402 and r.json == {"error": "Insufficient balance."}
    assert bridge_service.balance(poor.id).balance == Decimal("1.00")
    assert _rows(db) == 0 and redis_client.xlen(redis_keys.OUTBOUND_STREAM) == 0


def test_idempotency_key_replays_the_first_answer(
    client, key_headers, bridge_service, demo_account, db, redis_client
):
    headers = {**key_headers, "Idempotency-Key": "order-42"}
    params = {"numbers": "0701234567", "message_body": "once"}
    first = client.simulate_post(V2, headers=headers, json=params)
    again = client.simulate_post(V2, headers=headers, json=params)
    assert first.status_code == again.status_code == 200
    assert again.json == first.json
    assert again.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers
    assert _balance(bridge_service, demo_account) == Decimal("999.20")
    assert _rows(db) == 1 and redis_client.xlen(redis_keys.OUTBOUND_STREAM) == 1
    other = client.simulate_post(
        V2, headers=headers, json={"numbers": "0712345678", "message_body": "once"}
    )
    assert other.status_code == 400 and other.json["field"] == "Idempotency-Key"


def test_missing_key_is_the_contract_401(client, db):
    r = client.simulate_get(V2, params={"numbers": "0701234567", "message_body": "x"})
    assert r.status_code == 401
    assert r.json == {
        "error": "API key is required",
        "help": "Provide X-API-Key header or api_key parameter",
    }
    assert_rate_headers(r)
    assert _rows(db) == 0


@pytest.mark.parametrize(
    "key,error", [("sb_nope1234_" + "x" * 43, "Invalid API key."), ("garbage", "Invalid API key.")]
)
def test_unknown_key_is_401(client, key, error):
    r = client.simulate_get("/api/v2/account/balance", headers={"X-API-Key": key})
    assert r.status_code == 401 and r.json == {"error": error}
    assert_rate_headers(r)


def test_revoked_and_expired_keys_say_so(client, bridge_service, demo_account):
    bridge_service.revoke_keys(demo_account.id, demo_account.key_id)
    r = client.simulate_get("/api/v2/account/balance", headers={"X-API-Key": demo_account.api_key})
    assert r.status_code == 401 and r.json == {"error": "API key has been revoked."}


def test_balance(client, key_headers):
    r = client.simulate_get("/api/v2/account/balance", headers=key_headers)
    assert r.status_code == 200
    assert r.json == {"username": "demo", "balance": "1000.00", "currency": "KES"}
    assert_rate_headers(r)


def test_v1_send_with_credentials_in_form(client, bridge_service, demo_account, db):
    r = client.simulate_post(
        V1,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        body=f"username=demo&password={demo_account.password}"
        "&numbers=0701234567,%200712345678&message_body=Hi",
    )
    assert r.status_code == 200, r.text
    assert r.json["count"] == 2 and r.json["balance"] == "998.40"
    assert "x-ratelimit-limit" not in r.headers  # /v1 is not rate limited
    assert_common_headers(r)
    assert _rows(db) == 2


def test_v1_send_with_credentials_in_query_and_basic(client, demo_account):
    r = client.simulate_post(
        V1,
        params={
            "username": "demo",
            "password": demo_account.password,
            "numbers": "0701234567",
            "message_body": "x",
        },
    )
    assert r.status_code == 200
    r = client.simulate_post(
        V1,
        headers=basic("demo", demo_account.password),
        json={"numbers": "0701234567", "message_body": "x"},
    )
    assert r.status_code == 200


@pytest.mark.parametrize(
    "creds",
    [
        {},
        {"username": "demo"},
        {"username": "demo", "password": "no"},
        {"username": "nobody", "password": "x"},
    ],
)
def test_v1_wrong_or_missing_credentials(client, demo_account, db, creds):
    r = client.simulate_post(V1, json={**creds, "numbers": "0701234567", "message_body": "x"})
    assert r.status_code == 401 and r.json == {"error": "Unauthorized."}
    assert _rows(db) == 0


def test_v1_invalid_number(client, demo_account):
    r = client.simulate_post(
        V1,
        json={
            "username": "demo",
            "password": demo_account.password,
            "numbers": "0701234567,abc",
            "message_body": "x",
        },
    )
    assert r.status_code == 400
    assert r.json == {"error": "Invalid phone number format.", "invalid_numbers": ["abc"]}


def test_ten_thousand_numbers_in_one_request(client, key_headers, bridge_service, demo_account, db):
    bridge_service.topup(demo_account.id, Decimal("7000.00"))
    numbers = ",".join(f"07{n:08d}" for n in range(10_000))
    r = client.simulate_post(
        V2, headers=key_headers, json={"numbers": numbers, "message_body": "bulk"}
    )
    assert r.status_code == 200, r.text[:300]
    assert r.json["count"] == 10_000 and r.json["cost"] == "8000.00"
    assert r.json["balance"] == "0.00"
    assert _rows(db) == 10_000


def test_one_number_too_many_is_a_clear_400(client, key_headers, db):
    numbers = ",".join(f"07{n:08d}" for n in range(10_001))
    r = client.simulate_post(
        V2, headers=key_headers, json={"numbers": numbers, "message_body": "bulk"}
    )
    assert r.status_code == 400 and "limit is 10000" in r.json["error"]
    assert _rows(db) == 0


def test_sql_looking_text_is_just_text(client, key_headers, db):
    evil = "'; DROP TABLE messages; --"
    r = client.simulate_post(
        V2,
        headers=key_headers,
        json={"numbers": "0701234567", "message_body": evil, "reference": "1' OR '1'='1"},
    )
    assert r.status_code == 200 and r.json["reference"] == "1' OR '1'='1"
    with db.connect() as conn:
        assert conn.execute(select(messages.c.text)).scalar_one() == evil
    r = client.simulate_get("/api/v2/account/balance", headers={"X-API-Key": "' OR 1=1 --"})
    assert r.status_code == 401


def test_expired_key_and_disabled_account_say_so(
    api_config, bridge_service, db, redis_client, demo_account
):
    """The same key seen by a service whose clock is two days later (a 1-day key has expired)."""
    import time

    from falcon import testing

    from api.app import create_app
    from bridge.service import BridgeService

    short = bridge_service.generate_key(demo_account.id, expiry_days=1)
    later = BridgeService(
        api_config, db, redis_client, run_sweeper=False, clock=lambda: time.time() + 2 * 86_400
    )
    client = testing.TestClient(create_app(api_config, later, redis_client))
    r = client.simulate_get("/api/v2/account/balance", headers={"X-API-Key": short.api_key})
    assert r.status_code == 401 and r.json == {"error": "API key has expired."}
    bridge_service.set_active(demo_account.id, False)
    r = client.simulate_get("/api/v2/account/balance", headers={"X-API-Key": demo_account.api_key})
    assert r.status_code == 401 and r.json == {"error": "Account is disabled."}


def test_v1_honours_idempotency_key_too(client, bridge_service, demo_account, db):
    params = {
        "username": "demo",
        "password": demo_account.password,
        "numbers": "0701234567",
        "message_body": "once",
    }
    first = client.simulate_post(V1, json=params, headers={"Idempotency-Key": "v1-1"})
    again = client.simulate_post(V1, json=params, headers={"Idempotency-Key": "v1-1"})
    assert again.json == first.json and again.headers["idempotent-replayed"] == "true"
    assert _rows(db) == 1 and _balance(bridge_service, demo_account) == Decimal("999.20")
