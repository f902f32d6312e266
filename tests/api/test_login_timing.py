"""A wrong username answers as slowly as a wrong password (it spends one verify on a dummy
hash), with the same answer, so timing does not tell which usernames exist: the real app, its
default argon2 parameters, Redis and the database."""

from __future__ import annotations

import statistics
import time
from decimal import Decimal

import pytest

from bridge.redis import keys as redis_keys
from tests.api.helpers import basic, sqlite_only

pytestmark = sqlite_only  # the hash's cost does not depend on the database engine

SEND = "/v1/sms/send"
ROUNDS = 15
ADDRESS = "203.0.113.9"
UNKNOWN = "nobody-here"


@pytest.fixture
def bridge_config(bridge_config):
    """Limits high enough that every attempt below is checked, none locked out."""
    return bridge_config.replace(
        login_failures_per_username=10 * ROUNDS, login_failures_per_address=10 * ROUNDS
    )


def _form(client, username: str, password: str):
    return client.simulate_post(
        SEND,
        params={
            "username": username,
            "password": password,
            "numbers": "0701234567",
            "message_body": "hello",
        },
        remote_addr=ADDRESS,
    )


def _timed(client, username: str, password: str) -> float:
    start = time.perf_counter()
    r = _form(client, username, password)
    elapsed = time.perf_counter() - start
    assert r.status_code == 401, r.json
    return elapsed


def _answer(r) -> tuple[int, bytes, dict[str, str]]:
    """Status, body and the headers that are not per-request (rate counters, dates)."""
    headers = {
        k: v for k, v in r.headers.items() if not k.startswith("x-ratelimit") and k != "date"
    }
    return r.status_code, r.content, headers


def test_a_wrong_username_takes_as_long_as_a_wrong_password(
    client, demo_account, bridge_service, redis_client
):
    disabled = bridge_service.create_account("gone", "gone-password-1", balance=Decimal(1))
    bridge_service.set_active(disabled.id, False)
    for username in (UNKNOWN, demo_account.username, "gone"):  # warm up (the dummy is made)
        _timed(client, username, "not-the-password")
    unknown, wrong, off = [], [], []
    for i in range(ROUNDS):  # interleaved, so a busy moment of the machine hits all three
        unknown.append(_timed(client, f"{UNKNOWN}-{i}", "not-the-password"))
        wrong.append(_timed(client, demo_account.username, "not-the-password"))
        off.append(_timed(client, "gone", "not-the-password"))
    base = statistics.median(wrong)
    for name, times in (("unknown", unknown), ("disabled", off)):
        ratio = statistics.median(times) / base
        # without the dummy hash an unknown username answers ~100x faster (ratio ~0.01); the
        # wide band keeps a noisy shared machine from failing a correct build
        assert 0.25 <= ratio <= 4.0, (name, ratio, times, wrong)

    # failed-login throttling counted each of them, as it counts a wrong password
    address_count = redis_keys.login_fail_keys(UNKNOWN, ADDRESS)[0]
    assert int(redis_client.get(address_count)) == 3 * (ROUNDS + 1)
    assert int(redis_client.get(redis_keys.login_fail_keys(UNKNOWN, ADDRESS)[2])) == 1


def test_a_wrong_username_gets_the_same_answer_as_a_wrong_password(client, demo_account):
    wrong = _form(client, demo_account.username, "not-the-password")
    unknown = _form(client, UNKNOWN, "not-the-password")
    assert _answer(unknown) == _answer(wrong)
    assert wrong.json == {"error": "Unauthorized."}
    by_basic = [
        client.simulate_post(SEND, headers=basic(name, "not-the-password"), remote_addr=ADDRESS)
        for name in (demo_account.username, UNKNOWN)
    ]
    assert _answer(by_basic[0]) == _answer(by_basic[1]) == _answer(wrong)
