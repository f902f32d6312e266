"""generate-key, revoke-key, regenerate-key over HTTP, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from api.resources.keys import ONLY_ITSELF
from tests.api.helpers import assert_common_headers, basic

EXPIRY_ERROR = {"error": "expiry_days must be between 1 and 365.", "field": "expiry_days"}


def _works(client, api_key: str) -> bool:
    r = client.simulate_get("/api/v2/account/balance", headers={"X-API-Key": api_key})
    return r.status_code == 200


def _creds(demo) -> dict:
    return {"username": demo.username, "password": demo.password}


def test_generate_key_with_json_credentials(client, demo_account):
    r = client.simulate_post("/api/generate-key", json={**_creds(demo_account), "expiry_days": 3})
    assert r.status_code == 201
    assert set(r.json) == {"api_key", "key_id", "expires_at"}
    expires = datetime.fromisoformat(r.json["expires_at"])
    assert timedelta(days=2, hours=23) < expires - datetime.now(UTC) <= timedelta(days=3)
    assert _works(client, r.json["api_key"])
    assert _works(client, demo_account.api_key)  # an account may hold several keys
    assert_common_headers(r)


def test_generate_key_with_basic_auth_defaults_to_90_days(client, demo_account):
    r = client.simulate_post(
        "/api/generate-key", headers=basic(demo_account.username, demo_account.password)
    )
    assert r.status_code == 201
    expires = datetime.fromisoformat(r.json["expires_at"])
    assert timedelta(days=89) < expires - datetime.now(UTC) <= timedelta(days=90)


@pytest.mark.parametrize("value", [0, 366, -1, "abc", "3.5", 3.5, True, "", None, [3]])
def test_expiry_days_out_of_range_or_not_an_integer(client, demo_account, value):
    r = client.simulate_post(
        "/api/generate-key", json={**_creds(demo_account), "expiry_days": value}
    )
    assert r.status_code == 400 and r.json == EXPIRY_ERROR


def test_expiry_days_as_form_text(client, demo_account):
    r = client.simulate_post(
        "/api/generate-key", params={**_creds(demo_account), "expiry_days": "365"}
    )
    assert r.status_code == 201


@pytest.mark.parametrize(
    "auth",
    [
        {},
        {"json": {"username": "demo", "password": "wrong"}},
        {"headers": {"Authorization": "Basic !!!"}},
    ],
)
def test_generate_key_needs_the_password(client, demo_account, auth):
    r = client.simulate_post("/api/generate-key", **auth)
    assert r.status_code == 401 and r.json["error"] == "Unauthorized."


def test_an_api_key_cannot_mint_keys(client, demo_account):
    r = client.simulate_post("/api/generate-key", headers={"X-API-Key": demo_account.api_key})
    assert r.status_code == 401 and r.json["error"] == "Unauthorized."
    assert "cannot create keys" in r.json["help"]


def test_revoke_the_key_given_as_header(client, demo_account):
    r = client.simulate_post("/api/revoke-key", headers={"X-API-Key": demo_account.api_key})
    assert r.status_code == 200 and r.json == {"revoked": 1}
    assert not _works(client, demo_account.api_key)
    again = client.simulate_post("/api/revoke-key", headers={"X-API-Key": demo_account.api_key})
    assert again.status_code == 401 and again.json == {"error": "API key has been revoked."}


def test_a_key_revokes_only_itself(client, bridge_service, demo_account):
    other = bridge_service.generate_key(demo_account.id)
    r = client.simulate_post(
        "/api/revoke-key",
        headers={"X-API-Key": demo_account.api_key},
        json={"key_id": other.key_id},
    )
    assert r.status_code == 400 and r.json == {"error": ONLY_ITSELF, "field": "key_id"}
    assert _works(client, other.api_key) and _works(client, demo_account.api_key)


def test_revoke_by_key_id_with_password(client, bridge_service, demo_account):
    other = bridge_service.generate_key(demo_account.id)
    r = client.simulate_post(
        "/api/revoke-key", json={**_creds(demo_account), "key_id": other.key_id}
    )
    assert r.json == {"revoked": 1}
    assert not _works(client, other.api_key) and _works(client, demo_account.api_key)
    again = client.simulate_post(
        "/api/revoke-key", json={**_creds(demo_account), "key_id": other.key_id}
    )
    assert again.status_code == 200 and again.json == {"revoked": 0}


def test_revoke_all_keys_with_password_alone(client, bridge_service, demo_account):
    other = bridge_service.generate_key(demo_account.id)
    r = client.simulate_post(
        "/api/revoke-key", headers=basic(demo_account.username, demo_account.password)
    )
    assert r.json == {"revoked": 2}
    assert not _works(client, other.api_key) and not _works(client, demo_account.api_key)


def test_password_plus_key_of_another_account_is_refused(client, bridge_service, demo_account):
    stranger = bridge_service.create_account("stranger", "pw-stranger-1")
    key = bridge_service.generate_key(stranger.id)
    r = client.simulate_post(
        "/api/revoke-key", json={**_creds(demo_account), "api_key": key.api_key}
    )
    assert r.status_code == 401 and r.json == {"error": "Invalid API key."}
    assert _works(client, key.api_key)


def test_revoke_without_any_proof_is_401(client, demo_account):
    r = client.simulate_post("/api/revoke-key", json={"key_id": demo_account.key_id})
    assert r.status_code == 401 and r.json["error"] == "Unauthorized."
    assert _works(client, demo_account.api_key)


def test_regenerate_with_the_key_itself(client, bridge_service, demo_account):
    other = bridge_service.generate_key(demo_account.id)
    r = client.simulate_post(
        "/api/regenerate-key", headers={"X-API-Key": demo_account.api_key}, json={"expiry_days": 9}
    )
    assert r.status_code == 201 and set(r.json) == {"api_key", "key_id", "expires_at"}
    assert not _works(client, demo_account.api_key)
    assert _works(client, r.json["api_key"]) and _works(client, other.api_key)


def test_regenerate_all_with_password(client, bridge_service, demo_account):
    other = bridge_service.generate_key(demo_account.id)
    r = client.simulate_post("/api/regenerate-key", json=_creds(demo_account))
    assert r.status_code == 201
    assert not _works(client, demo_account.api_key) and not _works(client, other.api_key)
    assert _works(client, r.json["api_key"])


def test_regenerate_checks_expiry_days_and_then_revokes_nothing(client, demo_account):
    r = client.simulate_post(
        "/api/regenerate-key",
        headers={"X-API-Key": demo_account.api_key},
        json={"expiry_days": 400},
    )
    assert r.status_code == 400 and r.json == EXPIRY_ERROR
    assert _works(client, demo_account.api_key)
