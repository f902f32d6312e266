"""Swagger UI with local assets only, the OpenAPI document, and the OAuth2 redirect page."""

from __future__ import annotations

import re

from openapi_spec_validator import validate

from api.resources.docs import ASSETS, OAUTH2_CALLBACK_HTML
from tests.api.helpers import assert_common_headers, assert_rate_headers, sqlite_only

pytestmark = sqlite_only

CONTRACT_CALLBACK_HTML = (
    '<!doctype html>\n<html lang="en-US">\n<body>\n'
    '<script src="oauth2-redirect.js"></script>\n</body>\n</html>\n'
)


def test_swagger_ui_page_uses_only_local_assets(client):
    r = client.simulate_get("/api/v2")
    assert r.status_code == 200
    assert r.headers["content-type"] == "text/html; charset=UTF-8"
    assert_common_headers(r)
    assert_rate_headers(r)
    refs = re.findall(r'(?:src|href)="([^"]+)"', r.text)
    assert len(refs) >= 4
    for ref in refs:
        assert ref.startswith("/api/v2/assets/"), ref
        asset = client.simulate_get(ref)
        assert asset.status_code == 200, ref
        assert len(asset.content) > 100


def test_no_docs_page_may_be_framed_by_another_site_or_sniffed(client):
    paths = ["/api/v2", "/api/v2/openapi.json", "/api/oauth2-callback", "/api/oauth2-redirect.js"]
    for path in paths + [f"/api/v2/assets/{name}" for name in ASSETS]:
        r = client.simulate_get(path)
        assert r.status_code == 200, path
        assert "frame-ancestors 'none'" in r.headers["content-security-policy"], path
        assert r.headers["x-frame-options"] == "DENY", path
        assert r.headers["x-content-type-options"] == "nosniff", path
        assert r.headers["referrer-policy"] == "no-referrer", path


def test_docs_pages_run_only_their_own_scripts_styles_and_connections(client):
    """Swagger UI with local assets needs nothing else (test_swagger_browser.py shows it renders,
    authorizes and tries out under this policy with no violation)."""
    for path in ["/api/v2", "/api/oauth2-callback", "/api/v2/assets/swagger-ui-bundle.js"]:
        policy = client.simulate_get(path).headers["content-security-policy"]
        directives = {d.split()[0]: d.split()[1:] for d in policy.split("; ")}
        assert directives["default-src"] == ["'none'"], path
        assert directives["script-src"] == ["'self'"], path
        assert directives["style-src"] == ["'self'"], path  # no 'unsafe-inline', no hash
        assert directives["connect-src"] == ["'self'"], path
        assert directives["img-src"] == ["'self'", "data:"], path
        assert "'unsafe-inline'" not in policy and "'unsafe-eval'" not in policy, path


def test_initializer_points_at_our_document_and_no_online_validator(client):
    js = client.simulate_get("/api/v2/assets/swagger-initializer.js").text
    assert 'url: "/api/v2/openapi.json"' in js
    assert "validatorUrl: null" in js
    assert "http://" not in js and "https://" not in js


def test_every_listed_asset_is_served_with_its_type(client):
    for name, kind in ASSETS.items():
        r = client.simulate_get(f"/api/v2/assets/{name}")
        assert r.status_code == 200 and r.headers["content-type"] == kind


def test_unknown_asset_and_path_walking_are_404(client):
    assert client.simulate_get("/api/v2/assets/nope.js").status_code == 404
    assert client.simulate_get("/api/v2/assets/..%2Fapp.py").status_code == 404


def test_docs_pages_are_not_counted_by_the_rate_limit(client):
    first = client.simulate_get("/api/v2/openapi.json")
    for _ in range(3):
        again = client.simulate_get("/api/v2/openapi.json")
    assert again.headers["x-ratelimit-remaining"] == first.headers["x-ratelimit-remaining"]


def test_oauth2_callback_is_the_contract_page(client):
    assert OAUTH2_CALLBACK_HTML == CONTRACT_CALLBACK_HTML
    r = client.simulate_get("/api/oauth2-callback")
    assert r.status_code == 200
    assert r.headers["content-type"] == "text/html; charset=UTF-8"
    assert r.text == CONTRACT_CALLBACK_HTML
    assert_common_headers(r)


def test_oauth2_redirect_script_is_served_beside_the_page(client):
    r = client.simulate_get("/api/oauth2-redirect.js")  # what "oauth2-redirect.js" resolves to
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/javascript")
    assert "swaggerUIRedirectOauth2" in r.text and "<script" not in r.text


def test_openapi_document_is_valid_and_complete(app, client):
    r = client.simulate_get("/api/v2/openapi.json")
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    doc = r.json
    validate(doc)  # OpenAPI 3.0 schema
    assert doc["openapi"].startswith("3.")
    expected = {
        "/v1/sms/send": {"post"},
        "/api/v2/sms/send": {"get", "post"},
        "/api/v2/account/balance": {"get"},
        "/api/v2/sms/{message_id}": {"get", "delete"},
        "/api/v2/sms": {"get"},
        "/api/v2/batches/{batch_id}": {"get", "delete"},
        "/api/v2/inbox": {"get"},
        "/api/v2/inbox/{inbound_id}": {"get"},
        "/api/v2/optouts": {"get", "post"},
        "/api/v2/optouts/{number}": {"delete"},
        "/api/generate-key": {"post"},
        "/api/revoke-key": {"post"},
        "/api/regenerate-key": {"post"},
        "/api/v2": {"get"},
        "/api/v2/openapi.json": {"get"},
        "/api/v2/assets/{name}": {"get"},
        "/api/oauth2-callback": {"get"},
        "/api/oauth2-redirect.js": {"get"},
        "/api/v2/status": {"get"},
        "/healthz": {"get"},
        "/readyz": {"get"},
    }
    assert {p: set(ops) for p, ops in doc["paths"].items()} == expected


def test_openapi_documents_contract_errors_and_headers(client):
    doc = client.simulate_get("/api/v2/openapi.json").json
    send = doc["paths"]["/api/v2/sms/send"]["post"]
    assert {"200", "400", "401", "402", "413", "415", "429", "503"} <= set(send["responses"])
    assert "422" not in send["responses"]
    assert send["responses"]["401"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "/Error"
    )
    assert "x-ratelimit-remaining" in send["responses"]["401"]["headers"]
    assert "retry-after" in send["responses"]["429"]["headers"]
    assert set(send["requestBody"]["content"]) == {
        "application/json",
        "application/x-www-form-urlencoded",
        "multipart/form-data",
    }
    assert doc["paths"]["/api/generate-key"]["post"]["responses"].keys() >= {"201", "400", "401"}
    assert doc["paths"]["/api/regenerate-key"]["post"]["responses"].keys() >= {"201"}
    body = doc["components"]["schemas"]["GenerateKeyParams"]["properties"]["expiry_days"]
    assert (body["minimum"], body["maximum"], body["default"]) == (1, 365, 90)
    schemes = doc["components"]["securitySchemes"]
    assert schemes["ApiKeyHeader"] == {"type": "apiKey", "in": "header", "name": "X-API-Key"}
    assert schemes["ApiKeyQuery"]["name"] == "api_key"


PASSWORD_OPERATIONS = (
    ("/v1/sms/send", "post"),
    ("/api/generate-key", "post"),
    ("/api/revoke-key", "post"),
    ("/api/regenerate-key", "post"),
)


def test_openapi_documents_the_failed_login_throttle(client):
    """The password endpoints answer 429 with Retry-After (too many failed logins) and 503 with
    Retry-After: 1 (password checks saturated); the document said neither."""
    doc = client.simulate_get("/api/v2/openapi.json").json
    for path, method in PASSWORD_OPERATIONS:
        answers = doc["paths"][path][method]["responses"]
        assert "429" in answers, path
        assert "failed logins" in answers["429"]["description"], path
        assert "retry-after" in answers["429"]["headers"], path
        assert "x-ratelimit-limit" not in answers["429"]["headers"], path  # not the key limit
        assert "password checks are saturated" in answers["503"]["description"], path


def test_openapi_promises_rate_limit_headers_on_answers_made_before_the_app(client):
    """A 413 (the worker's loop refuses an over-long body before it is read) and a 414 carry
    x-ratelimit-* like every /api/v2 answer (the app makes them: api/refusals.py), as the
    contract says; the document said they came without."""
    doc = client.simulate_get("/api/v2/openapi.json").json
    send = doc["paths"]["/api/v2/sms/send"]
    for method, status in (("post", "413"), ("get", "413"), ("get", "414")):
        answer = send[method]["responses"][status]
        assert {"x-ratelimit-limit", "x-ratelimit-remaining"} <= set(answer["headers"])
        assert "without the rate-limit headers" not in answer["description"], (method, status)
        assert "access-control-allow-origin" in answer["headers"]
    text = " ".join(doc["info"]["description"].split())
    assert "(the 401s and those refusals too)" in text and "not the 408" not in text


def test_openapi_states_the_contracts_error_strings(client):
    """The contract's exact answers are in the document where they are given (the 400 of a bad
    number and the 402 of each send, the 401 sentences of a key), not only their codes."""
    doc = client.simulate_get("/api/v2/openapi.json").json
    for path, method in (("/api/v2/sms/send", "post"), ("/api/v2/sms/send", "get")) + (
        ("/v1/sms/send", "post"),
    ):
        answers = doc["paths"][path][method]["responses"]
        assert '"Invalid phone number format."' in answers["400"]["description"], path
        assert '"invalid_numbers"' in answers["400"]["description"], path
        assert '{"error": "Insufficient balance."}' in answers["402"]["description"], path
    assert '{"error": "Unauthorized."}' in doc["paths"]["/v1/sms/send"]["post"]["description"]
    text = doc["info"]["description"]
    for sentence in (
        "Invalid API key.",
        "API key has been revoked.",
        "API key has expired.",
        "Account is disabled.",
    ):
        assert f"`{sentence}`" in text, sentence
    assert "408, 409, 413, 414, 415, 429" in text  # every status the API answers


def test_openapi_is_generated_from_the_validating_schemas(client):
    """The send parameters in the document are the fields of api.schemas.SendParams."""
    from api.schemas import SendParams

    doc = client.simulate_get("/api/v2/openapi.json").json
    props = doc["components"]["schemas"]["SendParams"]["properties"]
    assert set(props) == set(SendParams().fields)
    assert set(doc["components"]["schemas"]["SendParams"]["required"]) == {
        "numbers",
        "message_body",
    }
