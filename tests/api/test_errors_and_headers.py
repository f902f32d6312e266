"""Every answer is JSON with the contract's headers: 404, 405, 413, 415, 400, 500, preflight."""

from __future__ import annotations

import logging

import pytest

from tests.api.helpers import assert_common_headers, assert_rate_headers, sqlite_only

pytestmark = sqlite_only


class Boom:
    def on_get(self, req, resp):
        raise RuntimeError("secret internal detail")


def test_unknown_path_is_json_404(client):
    r = client.simulate_get("/nope")
    assert r.status_code == 404
    assert r.headers["content-type"].startswith("application/json")
    assert r.json == {"error": "No such endpoint: GET /nope. The API is described at /api/v2."}
    assert_common_headers(r)


def test_wrong_method_is_json_405_with_allow(client):
    r = client.simulate_delete("/api/v2/account/balance")
    assert r.status_code == 405
    assert "GET" in r.headers["allow"]
    assert r.json["error"].startswith("Method DELETE is not allowed here; use GET")
    assert_common_headers(r)
    assert_rate_headers(r)  # an /api/v2 answer


def test_v1_send_by_get_is_405(client):
    r = client.simulate_get("/v1/sms/send")
    assert r.status_code == 405 and "error" in r.json


def test_unexpected_exception_is_500_json_without_trace(app, client, caplog):
    app.add_route("/boom", Boom())
    with caplog.at_level(logging.ERROR, logger="api.errors"):
        r = client.simulate_get("/boom")
    assert r.status_code == 500
    assert r.json == {"error": "Internal server error."}
    assert "secret" not in r.text and "Traceback" not in r.text
    assert_common_headers(r)
    assert any(
        "secret internal detail" in (rec.exc_text or "") or rec.exc_info for rec in caplog.records
    )


def test_body_too_large_is_413(api_config, client, key_headers):
    body = b'{"numbers": "' + b"0" * api_config.max_body_bytes + b'"}'
    r = client.simulate_post(
        "/api/v2/sms/send", body=body, headers={**key_headers, "Content-Type": "application/json"}
    )
    assert r.status_code == 413
    assert "larger than 1048576 bytes" in r.json["error"]
    assert_common_headers(r)
    assert_rate_headers(r)


def test_413_on_the_legacy_endpoint_too(api_config, client):
    r = client.simulate_post(
        "/v1/sms/send",
        body=b"a" * (api_config.max_body_bytes + 1),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert r.status_code == 413 and "error" in r.json


def test_unknown_media_type_is_415(client, key_headers):
    r = client.simulate_post(
        "/api/v2/sms/send",
        body=b"<xml/>",
        headers={**key_headers, "Content-Type": "application/xml"},
    )
    assert r.status_code == 415
    assert "application/xml is not supported" in r.json["error"]
    assert_common_headers(r)


def test_json_array_body_is_400(client, key_headers):
    r = client.simulate_post(
        "/api/v2/sms/send",
        body=b'["0701234567"]',
        headers={**key_headers, "Content-Type": "application/json"},
    )
    assert r.status_code == 400
    assert "JSON body must be an object" in r.json["error"]


def test_bad_json_is_400_not_html(client, key_headers):
    r = client.simulate_post(
        "/api/v2/sms/send",
        body=b"{nope",
        headers={**key_headers, "Content-Type": "application/json"},
    )
    assert r.status_code == 400 and r.json["error"].startswith("Request body is not valid JSON")


def test_non_utf8_body_is_400(client, key_headers):
    r = client.simulate_post(
        "/api/v2/sms/send",
        body=b"numbers=0701234567&message_body=%ff",
        headers={**key_headers, "Content-Type": "application/x-www-form-urlencoded"},
    )
    assert r.status_code == 400
    assert r.json["error"] == "Request is not valid UTF-8; encode every parameter as UTF-8."


@pytest.mark.parametrize(
    "path", ["/api/v2/sms/send", "/v1/sms/send", "/api/generate-key", "/anything/at/all"]
)
def test_preflight_answers_204_with_allowed_headers(client, path):
    r = client.simulate_options(
        path,
        headers={
            "Origin": "https://app.example",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "x-api-key, idempotency-key, content-type",
        },
    )
    assert r.status_code == 204
    allowed = {h.strip().lower() for h in r.headers["access-control-allow-headers"].split(",")}
    assert {"x-api-key", "idempotency-key", "content-type", "authorization"} <= allowed
    assert {"GET", "POST"} <= {
        m.strip() for m in r.headers["access-control-allow-methods"].split(",")
    }
    assert_common_headers(r)


def test_rate_limit_headers_are_readable_by_browsers(client):
    r = client.simulate_get("/api/v2/account/balance")
    exposed = r.headers["access-control-expose-headers"].lower()
    assert "x-ratelimit-remaining" in exposed and "retry-after" in exposed


def test_trailing_slash_is_the_same_endpoint(client):
    assert client.simulate_get("/api/v2/account/balance/").status_code == 401


def test_database_down_is_503_with_headers(api_config, redis_client):
    """A database nobody listens on: the service raises DependencyDown -> 503, JSON."""
    from falcon import testing

    from api.app import create_app
    from bridge.service import BridgeService
    from bridge.storage.db import Database
    from tests.harness.procs import free_port

    url = f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/none"
    service = BridgeService(
        api_config.replace(database_url=url), Database(url), redis_client, run_sweeper=False
    )
    client = testing.TestClient(create_app(api_config, service, redis_client))
    r = client.simulate_post(
        "/api/v2/sms/send",
        headers={"X-API-Key": "sb_abcdefgh_" + "x" * 43},
        json={"numbers": "0701234567", "message_body": "x"},
    )
    assert r.status_code == 503
    assert r.json == {
        "error": "Service temporarily unavailable, nothing was charged; retry shortly."
    }
    assert_common_headers(r)
    assert "x-ratelimit-remaining" in r.headers
    r = client.simulate_post("/v1/sms/send", json={"username": "a", "password": "b"})
    assert r.status_code == 503
    service.db.dispose()
