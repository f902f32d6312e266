"""The sender against a real receiver: signatures, rotation, retries, Retry-After, 4xx, dead
letters, attempt records."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta

import pytest
from standardwebhooks import Webhook, WebhookVerificationError

from bridge.redis import keys
from bridge.storage import webhook_secrets
from bridge.webhooks.attempts import read_attempts
from tests.bridge.webhooks.conftest import publish
from tests.harness.closing_receiver import closing_receiver
from tests.harness.procs import wait_until


def _verify(secret, request):
    return Webhook(secret).verify(request.body, request.headers)


def test_signed_so_that_standardwebhooks_verifies(receiver, account, start_sender, redis_client):
    account_id, secret = account()
    start_sender()
    publish(redis_client, account_id, receiver.url(), n=3)
    wait_until(lambda: len(receiver.accepted()) == 3, message="3 deliveries")
    for request in receiver.accepted():
        assert _verify(secret, request)["type"] == "message.delivered"
        assert request.headers["webhook-id"].startswith("evt_")
        assert request.headers["content-type"] == "application/json"
        assert request.headers["host"] == f"127.0.0.1:{receiver.port}"
    with pytest.raises(WebhookVerificationError):
        _verify(webhook_secrets.generate_secret(), receiver.accepted()[0])
    wait_until(lambda: redis_client.xlen(keys.webhooks_stream_key()) == 0)  # XACK + XDEL


def test_rotation_overlap_signs_with_both_secrets(
    receiver, account, start_sender, redis_client, wh_db
):
    account_id, old = account()
    with wh_db.begin() as conn:
        new = webhook_secrets.rotate(conn, account_id, datetime.now(UTC)).current
    start_sender()
    publish(redis_client, account_id, receiver.url(), n=1, prefix="during")
    wait_until(lambda: len(receiver.accepted()) == 1)
    during = receiver.accepted()[0]
    assert len(during.headers["webhook-signature"].split(" ")) == 2
    assert _verify(old, during) and _verify(new, during)

    with wh_db.begin() as conn:  # the overlap (24 h by default) ended
        conn.execute(
            webhook_secrets.accounts.update().values(
                webhook_secret_rotated_at=datetime.now(UTC) - timedelta(days=2)
            )
        )
    time.sleep(0.25)  # outlive the fixture's SecretCache ttl (0.2 s); not a readiness wait
    publish(redis_client, account_id, receiver.url(), n=1, prefix="after")
    wait_until(lambda: len(receiver.accepted()) == 2)
    after = receiver.accepted()[1]
    assert _verify(new, after)
    with pytest.raises(WebhookVerificationError):
        _verify(old, after)


def test_failing_then_recovering_receiver_gets_each_event_once(
    receiver, account, start_sender, redis_client
):
    account_id, secret = account()
    receiver.answers = [500] * 30  # the first 30 requests fail, then 200
    start_sender(webhook_endpoint_pause_after=100)
    ids = publish(redis_client, account_id, receiver.url(), n=20, message_id="m1")
    wait_until(lambda: len(receiver.accepted()) >= 20, timeout=30, message="all accepted")
    accepted = receiver.accepted_ids()
    assert sorted(accepted) == sorted(ids)  # every event, exactly once
    assert len(receiver.requests) == 50
    for request in receiver.requests:
        assert _verify(secret, request)
    wait_until(lambda: len(read_attempts(redis_client, "m1")) == 50)
    records = read_attempts(redis_client, "m1")
    assert [r["outcome"] for r in records].count("delivered") == 20
    assert [r["outcome"] for r in records].count("retrying") == 30
    retrying = next(r for r in records if r["outcome"] == "retrying")
    assert retrying["status"] == 500 and retrying["next_retry_at"].endswith("Z")
    wait_until(lambda: redis_client.zcard(keys.webhooks_retry_key()) == 0)
    assert redis_client.xlen(keys.webhooks_dead_key()) == 0


def test_429_retry_after_is_honoured(receiver, account, start_sender, redis_client):
    account_id, _ = account()
    receiver.answers = [(429, {"Retry-After": "1"})]
    start_sender()
    publish(redis_client, account_id, receiver.url(), n=1, message_id="m429")
    wait_until(lambda: len(read_attempts(redis_client, "m429")) == 2, timeout=10)
    first, second = receiver.requests
    assert first.status == 429 and second.status == 200
    assert second.at - first.at >= 1.0  # the backoff alone would be ~0.02 s
    assert [r["outcome"] for r in read_attempts(redis_client, "m429")] == [
        "retrying",
        "delivered",
    ]


def test_a_4xx_is_not_retried_and_is_recorded(receiver, account, start_sender, redis_client):
    account_id, _ = account()
    receiver.default = 404
    start_sender()
    publish(redis_client, account_id, receiver.url(), n=1, message_id="m404")
    wait_until(lambda: redis_client.xlen(keys.webhooks_dead_key()) == 1)
    records = read_attempts(redis_client, "m404")
    assert [(r["outcome"], r["status"]) for r in records] == [("failed", 404)]
    assert len(receiver.requests) == 1
    assert redis_client.zcard(keys.webhooks_retry_key()) == 0
    ((_, dead),) = redis_client.xrange(keys.webhooks_dead_key())
    assert dead[b"reason"] == b"HTTP 404" and dead[b"id"] == b"evt_0"


def test_past_the_retry_period_an_event_is_dead_lettered(
    receiver, account, start_sender, redis_client
):
    account_id, _ = account()
    receiver.default = 503
    start_sender(webhook_retry_seconds=1.0, webhook_endpoint_pause_after=1000)
    publish(redis_client, account_id, receiver.url(), n=1, message_id="mdead")
    wait_until(lambda: redis_client.xlen(keys.webhooks_dead_key()) == 1, timeout=10)
    records = read_attempts(redis_client, "mdead")
    assert records[-1]["outcome"] == "dead" and records[-1]["next_retry_at"] is None
    assert all(r["outcome"] == "retrying" for r in records[:-1]) and len(records) > 3
    ((_, dead),) = redis_client.xrange(keys.webhooks_dead_key())
    assert dead[b"reason"].startswith(b"retry period spent; last: HTTP 503")
    assert redis_client.zcard(keys.webhooks_retry_key()) == 0
    assert int(dead[b"attempt"]) == len(records)
    assert json.loads(dead[b"body"])["data"] == {"n": 0}


def test_two_senders_share_the_retries_and_deliver_each_event_once(
    receiver, account, start_sender, redis_client
):
    """Two senders in one consumer group (what webhook_processes=2 runs): the failures are
    retried through the one retry set, each event is accepted exactly once, none is lost."""
    account_id, secret = account()
    receiver.answers = [500] * 30
    first = start_sender(webhook_endpoint_pause_after=100)
    second = start_sender(webhook_endpoint_pause_after=100)
    assert first.consumer != second.consumer
    ids = publish(redis_client, account_id, receiver.url(), n=40, message_id="m2")
    wait_until(lambda: len(receiver.accepted()) >= 40, timeout=30, message="all accepted")
    assert sorted(receiver.accepted_ids()) == sorted(ids)
    assert len(receiver.requests) == 70
    wait_until(lambda: len(read_attempts(redis_client, "m2")) == 50)  # the newest 50 kept
    wait_until(lambda: redis_client.zcard(keys.webhooks_retry_key()) == 0)
    wait_until(lambda: redis_client.xlen(keys.webhooks_stream_key()) == 0)
    assert redis_client.xlen(keys.webhooks_dead_key()) == 0
    for request in receiver.requests:
        assert _verify(secret, request)


def test_a_kept_connection_the_receiver_closed_as_it_was_reused_costs_no_attempt(
    account, start_sender, redis_client
):
    """The receiver keeps the first event's connection alive, then closes it unanswered as the
    second event's POST arrives on it: the second event is sent again at once on a new
    connection and delivered on its first attempt, with no back-off (30 s here)."""
    account_id, _ = account()
    with closing_receiver() as server:
        start_sender(webhook_backoff_base_seconds=30.0, webhook_backoff_max_seconds=60.0)
        publish(redis_client, account_id, server.url(), prefix="first", message_id="m1")
        wait_until(lambda: len(read_attempts(redis_client, "m1")) == 1, message="first done")
        started = time.monotonic()
        publish(redis_client, account_id, server.url(), prefix="second", message_id="m2")
        wait_until(
            lambda: len(read_attempts(redis_client, "m2")) >= 1, timeout=10, message="second"
        )
        assert time.monotonic() - started < 5.0  # well before the first back-off (30 s)
        assert [r["outcome"] for r in read_attempts(redis_client, "m2")] == ["delivered"]
        assert server.requests == [
            (1, "first_0", True),
            (1, "second_0", False),  # closed as the kept connection was reused
            (2, "second_0", True),  # sent again at once, same webhook-id
        ]
