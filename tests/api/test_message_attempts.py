"""GET /api/v2/sms/{id} lists the message's webhook delivery attempts (the sender's records),
only to the account that sent it; on SQLite and PostgreSQL with a real Redis."""

from __future__ import annotations

from decimal import Decimal

from bridge.webhooks import attempts

T_MS = 1_900_000_000_000


def _send(client, key: str) -> str:
    r = client.simulate_post(
        "/api/v2/sms/send",
        headers={"X-API-Key": key},
        json={"numbers": "0701234567", "message_body": "hi"},
    )
    assert r.status_code == 200, r.text
    return r.json["messages"][0]["message_id"]


def _record(redis, message_id: str) -> None:
    pipe = redis.pipeline()
    attempts.add(
        pipe,
        message_id,
        attempts.record(
            f"evt_{message_id}_delivered",
            1,
            T_MS,
            "retrying",
            status=503,
            next_retry_ms=T_MS + 2000,
        ),
    )
    attempts.add(
        pipe,
        message_id,
        attempts.record(f"evt_{message_id}_delivered", 2, T_MS + 2100, "delivered", status=204),
    )
    pipe.execute()


def test_the_owner_sees_the_attempts_another_account_sees_nothing(
    client, demo_account, bridge_service, redis_client
):
    mid = _send(client, demo_account.api_key)
    r = client.simulate_get(f"/api/v2/sms/{mid}", headers={"X-API-Key": demo_account.api_key})
    assert r.status_code == 200 and r.json["webhook_attempts"] == []
    _record(redis_client, mid)
    r = client.simulate_get(f"/api/v2/sms/{mid}", headers={"X-API-Key": demo_account.api_key})
    assert r.json["webhook_attempts"] == [
        {
            "event_id": f"evt_{mid}_delivered",
            "attempt": 1,
            "at": "2030-03-17T17:46:40.000Z",
            "status": 503,
            "error": None,
            "next_retry_at": "2030-03-17T17:46:42.000Z",
            "outcome": "retrying",
        },
        {
            "event_id": f"evt_{mid}_delivered",
            "attempt": 2,
            "at": "2030-03-17T17:46:42.100Z",
            "status": 204,
            "error": None,
            "next_retry_at": None,
            "outcome": "delivered",
        },
    ]
    other = bridge_service.create_account("other", "pw", balance=Decimal("5"))
    key = bridge_service.generate_key(other.id, expiry_days=1).api_key
    r = client.simulate_get(f"/api/v2/sms/{mid}", headers={"X-API-Key": key})
    assert r.status_code == 404 and r.json == {"error": "Message not found."}
    assert "webhook_attempts" not in r.text


def test_redis_down_still_answers_with_null_attempts(client, demo_account, redis_server):
    mid = _send(client, demo_account.api_key)
    redis_server.stop()
    r = client.simulate_get(f"/api/v2/sms/{mid}", headers={"X-API-Key": demo_account.api_key})
    assert r.status_code == 200, r.text
    assert r.json["webhook_attempts"] is None and r.json["message_id"] == mid
