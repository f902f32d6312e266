"""Rate limiting as clients see it: headers on every /api/v2 answer, 429, per-account limits."""

from __future__ import annotations

from decimal import Decimal

import pytest
from falcon import testing

from api.app import create_app
from tests.api.helpers import assert_common_headers, sqlite_only

pytestmark = sqlite_only
BALANCE = "/api/v2/account/balance"
SEND = "/api/v2/sms/send"


def _remaining(result) -> int:
    return int(result.headers["x-ratelimit-remaining"])


def test_sixty_per_minute_then_429(client, key_headers):
    answers = [client.simulate_get(BALANCE, headers=key_headers) for _ in range(61)]
    assert [a.status_code for a in answers[:60]] == [200] * 60
    assert [_remaining(a) for a in answers[:3]] == [59, 58, 57]
    last = answers[60]
    assert last.status_code == 429
    assert last.headers["x-ratelimit-limit"] == "60" and _remaining(last) == 0
    retry = int(last.headers["retry-after"])
    assert 1 <= retry <= 60
    assert last.json == {"error": "Too many requests.", "retry_after": retry}
    assert_common_headers(last)


def test_missing_key_401s_count_per_address_as_in_the_seed(client):
    first = client.simulate_get("/api/v2/sms/send")
    second = client.simulate_get(BALANCE)
    assert (first.status_code, second.status_code) == (401, 401)
    assert (first.headers["x-ratelimit-limit"], _remaining(first), _remaining(second)) == (
        "60",
        59,
        58,
    )


def test_bad_keys_are_throttled_per_address(client, api_config, bridge_service, redis_client):
    app = create_app(api_config.replace(rate_limit_per_minute=3), bridge_service, redis_client)
    c = testing.TestClient(app)
    codes = [
        c.simulate_get(BALANCE, headers={"X-API-Key": f"sb_guess{i:03d}_x"}).status_code
        for i in range(4)
    ]
    assert codes == [401, 401, 401, 429]


@pytest.mark.parametrize(
    ("body", "content_type", "status"),
    [
        (b"{nope", "application/json", 400),  # not JSON
        (b"<xml/>", "application/xml", 415),  # a body type the API does not take
        (b"api_key=%ff", "application/x-www-form-urlencoded", 400),  # not UTF-8
    ],
)
def test_a_refused_body_counts_against_the_key(
    api_config, bridge_service, redis_client, key_headers, body, content_type, status
):
    """A request whose parameters cannot be read is still a request of that key: counted, with
    the key's headers, and 429 over the limit (it was neither counted nor limited)."""
    c = testing.TestClient(
        create_app(api_config.replace(rate_limit_per_minute=3), bridge_service, redis_client)
    )
    headers = {**key_headers, "Content-Type": content_type}
    answers = [c.simulate_post(SEND, body=body, headers=headers) for _ in range(4)]
    assert [a.status_code for a in answers] == [status, status, status, 429]
    assert [_remaining(a) for a in answers] == [2, 1, 0, 0]
    assert _remaining(c.simulate_get(BALANCE, headers=key_headers)) == 0  # the key's bucket
    assert_common_headers(answers[3])


def test_a_refused_body_without_a_key_counts_against_the_address(
    api_config, bridge_service, redis_client
):
    c = testing.TestClient(
        create_app(api_config.replace(rate_limit_per_minute=2), bridge_service, redis_client)
    )
    json_body = {"Content-Type": "application/json"}
    codes = [c.simulate_post(SEND, body=b"[1]", headers=json_body).status_code for _ in range(3)]
    assert codes == [400, 400, 429]
    assert c.simulate_get(BALANCE).status_code == 429  # the same address bucket


def test_a_valid_key_has_its_own_bucket(client, key_headers):
    for _ in range(3):
        client.simulate_get(BALANCE)  # address bucket
    assert _remaining(client.simulate_get(BALANCE, headers=key_headers)) == 59


def test_per_account_override(client, bridge_service):
    account = bridge_service.create_account("slow", "pw-slow-1", rate_limit_per_minute=2)
    headers = {"X-API-Key": bridge_service.generate_key(account.id).api_key}
    codes = [client.simulate_get(BALANCE, headers=headers).status_code for _ in range(3)]
    assert codes == [200, 200, 429]
    assert client.simulate_get(BALANCE, headers=headers).headers["x-ratelimit-limit"] == "2"


def test_configured_default(api_config, bridge_service, redis_client, key_headers):
    c = testing.TestClient(
        create_app(api_config.replace(rate_limit_per_minute=5), bridge_service, redis_client)
    )
    r = c.simulate_get(BALANCE, headers=key_headers)
    assert r.headers["x-ratelimit-limit"] == "5" and _remaining(r) == 4


def test_two_app_instances_share_the_count(api_config, bridge_service, redis_client, key_headers):
    """Two apps (as two gunicorn workers would be) over one Redis count one bucket."""
    a, b = (
        testing.TestClient(create_app(api_config, bridge_service, redis_client)) for _ in range(2)
    )
    assert _remaining(a.simulate_get(BALANCE, headers=key_headers)) == 59
    assert _remaining(b.simulate_get(BALANCE, headers=key_headers)) == 58


def test_sends_keep_working_when_redis_is_down(
    api_config, bridge_service, redis_server, key_headers, demo_account
):
    """Fail open: no Redis, no limit, but the accept path still answers (and charges)."""
    from api.app import limiter_client

    c = testing.TestClient(create_app(api_config, bridge_service, limiter_client(api_config)))
    redis_server.stop()
    r = c.simulate_post(
        "/api/v2/sms/send",
        headers=key_headers,
        json={"numbers": "0701234567", "message_body": "no redis"},
    )
    assert r.status_code == 200, r.text
    assert r.headers["x-ratelimit-limit"] == "60" and _remaining(r) == 60
    assert bridge_service.balance(demo_account.id).balance == Decimal("999.20")


def test_a_redis_that_stops_answering_fails_open_within_two_attempts(
    api_config, redis_server, monkeypatch
):
    """Connects that time out (not refused: a dead host) cost the limiter's own policy of two
    attempts, not redis-py's default eleven, before the request goes on unlimited."""
    from api.app import LIMITER_REDIS_RETRIES, limiter_client
    from bridge.accept.ratelimit import RateLimiter
    from tests.harness.redis_server import time_out_connects

    limiter = RateLimiter(limiter_client(api_config))
    assert not limiter.hit("key:t", 5).degraded  # the thread keeps a connection
    redis_server.stop()
    attempts = time_out_connects(monkeypatch)
    assert limiter.hit("key:t", 5).degraded
    assert len(attempts) <= 1 + LIMITER_REDIS_RETRIES
