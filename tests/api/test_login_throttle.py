"""Failed password logins are throttled in Redis (per address, per username and address, per
username) and password hashing is bounded per process: the real app, Redis and database."""

from __future__ import annotations

import threading

import pytest
from argon2 import PasswordHasher
from falcon import testing

from api.app import create_app
from bridge.redis import keys as redis_keys
from bridge.service import BridgeService
from tests.api.helpers import basic, sqlite_only
from tests.harness.procs import wait_until

pytestmark = sqlite_only  # the counters live in Redis; the database engine does not matter

SEND = "/v1/sms/send"
LIMIT = 3  # failures per username (and per username from one address)
PER_ADDRESS = 5
ATTACKER, OWNER, ELSEWHERE = "203.0.113.9", "198.51.100.7", "192.0.2.44"
UNAUTHORIZED = {"error": "Unauthorized."}


@pytest.fixture
def bridge_config(bridge_config, request):
    """Small limits; a test may change more with an indirect parameter (a dict)."""
    small = {
        "login_failures_per_username": LIMIT,
        "login_failures_per_address": PER_ADDRESS,
        "login_window_seconds": 60,
        "login_lockout_seconds": 120,
    }
    return bridge_config.replace(**{**small, **getattr(request, "param", {})})


def _send(client, demo, password: str, address: str, username: str | None = None):
    return client.simulate_post(
        SEND,
        params={
            "username": username or demo.username,
            "password": password,
            "numbers": "0701234567",
            "message_body": "hello",
        },
        remote_addr=address,
    )


def _assert_locked(r, most: int) -> None:
    assert r.status_code == 429, r.json
    assert r.json["error"] == "Too many requests."
    assert 1 <= int(r.headers["retry-after"]) == r.json["retry_after"] <= most
    assert "API key" in r.json["help"]


def test_wrong_passwords_get_401_until_the_limit_then_429(client, demo_account, redis_client):
    for _ in range(LIMIT):
        r = _send(client, demo_account, "wrong", ATTACKER)
        assert (r.status_code, r.json) == (401, UNAUTHORIZED)
    locked = _send(client, demo_account, "wrong", ATTACKER)
    _assert_locked(locked, 120)
    # the right password from the locked address is refused too (unchecked: no oracle) ...
    _assert_locked(_send(client, demo_account, demo_account.password, ATTACKER), 120)
    # ... while the owner, from an address with no failures, gets in
    assert _send(client, demo_account, demo_account.password, OWNER).status_code == 200
    # refused attempts were not counted: the pair counter stopped at the limit
    pair = redis_keys.login_fail_keys(demo_account.username, ATTACKER)[1]
    assert int(redis_client.get(pair)) == LIMIT
    assert 60_000 < redis_client.pttl(pair) <= 120_000  # locked for the lockout, not the window


def test_the_username_limit_only_slows_addresses_that_failed_on_it(client, demo_account):
    # three addresses, one failure each: no pair reaches the limit, the username does
    bots = ["203.0.113.1", "203.0.113.2", "203.0.113.3"]
    for bot in bots:
        assert _send(client, demo_account, "wrong", bot).status_code == 401
    for bot in bots:  # each of them has failed on this username: wait
        _assert_locked(_send(client, demo_account, "wrong", bot), 60)
    # a fresh address is still checked: a wrong guess gets the contract's 401 (once) ...
    assert _send(client, demo_account, "wrong", "203.0.113.4").json == UNAUTHORIZED
    _assert_locked(_send(client, demo_account, "wrong", "203.0.113.4"), 60)
    # ... and the real user, from their own address, gets in
    assert _send(client, demo_account, demo_account.password, OWNER).status_code == 200


def test_an_address_guessing_many_usernames_is_locked(client, demo_account):
    for i in range(PER_ADDRESS):
        assert _send(client, demo_account, "wrong", ATTACKER, f"user{i}").status_code == 401
    _assert_locked(_send(client, demo_account, demo_account.password, ATTACKER), 120)
    assert _send(client, demo_account, demo_account.password, ELSEWHERE).status_code == 200


def test_key_endpoints_share_the_counters(client, demo_account):
    for _ in range(LIMIT):
        r = client.simulate_post(
            "/api/generate-key", headers=basic(demo_account.username, "wrong"), remote_addr=ATTACKER
        )
        assert (r.status_code, r.json) == (401, UNAUTHORIZED)
    for path in ("/api/generate-key", "/api/regenerate-key", "/api/revoke-key"):
        r = client.simulate_post(
            path,
            headers=basic(demo_account.username, demo_account.password),
            remote_addr=ATTACKER,
        )
        _assert_locked(r, 120)
    _assert_locked(_send(client, demo_account, demo_account.password, ATTACKER), 120)
    r = client.simulate_post(
        "/api/generate-key",
        headers=basic(demo_account.username, demo_account.password),
        remote_addr=OWNER,
    )
    assert r.status_code == 201


def test_a_correct_password_clears_its_own_address_only(client, demo_account, redis_client):
    address, pair, user = redis_keys.login_fail_keys(demo_account.username, OWNER)
    assert _send(client, demo_account, "wrong", OWNER).status_code == 401
    assert _send(client, demo_account, demo_account.password, OWNER).status_code == 200
    assert redis_client.get(pair) is None  # the owner is no longer suspect here
    assert int(redis_client.get(address)) == int(redis_client.get(user)) == 1  # still counted


def test_missing_credentials_are_not_counted(client, demo_account, redis_client):
    for _ in range(LIMIT + 1):
        r = _send(client, demo_account, "", ATTACKER)
        assert (r.status_code, r.json) == (401, UNAUTHORIZED)
    assert not redis_client.keys(redis_keys.LOGIN_FAIL_PREFIX + "*")


def test_the_counters_expire(client, demo_account, redis_client):
    """Every counter carries a TTL no longer than the lockout; once they lapse (shortened here
    rather than waited for, so a loaded machine cannot race the window) logins are judged anew."""
    for _ in range(LIMIT):
        assert _send(client, demo_account, "wrong", ATTACKER).status_code == 401
    _assert_locked(_send(client, demo_account, "wrong", ATTACKER), 120)
    keys = [
        k
        for k in redis_keys.login_fail_keys(demo_account.username, ATTACKER)
        if redis_client.exists(k)
    ]
    assert keys
    assert all(0 < redis_client.pttl(k) <= 120_000 for k in keys)
    for key in keys:
        redis_client.pexpire(key, 1)
    wait_until(lambda: redis_client.exists(*keys) == 0, timeout=5, message="counters expire")
    assert _send(client, demo_account, "wrong", ATTACKER).json == UNAUTHORIZED
    assert _send(client, demo_account, demo_account.password, ATTACKER).status_code == 200


# --- bounded hashing: a request waits a bounded time for a hashing slot, then 503 -------------
SLOW = PasswordHasher(time_cost=40)  # a verify of its hashes takes about a second


@pytest.fixture
def slow_client(bridge_config, db, redis_client):
    config = bridge_config.replace(password_hash_concurrency=1, password_hash_wait_seconds=0.1)
    service = BridgeService(config, db, redis_client, run_sweeper=False, hasher=SLOW)
    service.start()
    try:
        yield testing.TestClient(create_app(config, service, redis_client)), service
    finally:
        service.close()


def test_no_free_hashing_slot_within_the_wait_is_a_503(slow_client):
    client, service = slow_client
    service.create_account("slow", "right-password")
    holder: list = []
    creds = {"username": "slow", "password": "right-password"}
    thread = threading.Thread(
        target=lambda: holder.append(client.simulate_post("/api/generate-key", params=creds))
    )
    thread.start()
    try:
        wait_until(lambda: service.verifier.active == 1, timeout=10, message="a verify running")
        r = client.simulate_post("/api/generate-key", params=creds, remote_addr=OWNER)
        assert r.status_code == 503
        assert (
            r.json["error"]
            == "Service temporarily unavailable, nothing was charged; retry shortly."
        )
        assert r.headers["retry-after"] == "1" and r.json["retry_after"] == 1
        assert "API key" in r.json["help"]
    finally:
        thread.join(30)
    assert holder[0].status_code == 201  # the one that held the slot was answered
    assert service.verifier.peak == 1
    assert not service.redis.keys(redis_keys.LOGIN_FAIL_PREFIX + "*")  # a 503 is no failure
