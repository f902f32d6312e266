"""Schemathesis against our own OpenAPI document, in process (WSGI), over a real migrated
database and a real Redis: no 5xx for any generated request (schema-valid or not), and every
answer conforms to the document (status code, content type, headers, body schema)."""

from __future__ import annotations

import base64
import re
from decimal import Decimal

import pytest
import schemathesis
from falcon import testing
from hypothesis import given
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from api.app import create_app
from api.openapi import build_spec
from tests.api.helpers import fuzz_settings, sqlite_only

pytestmark = [sqlite_only, pytest.mark.slow]

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
# Not used: positive_data_acceptance (text the schema allows, e.g. a random "numbers" string,
# is rightly refused by business rules with 400) and negative_data_rejection (a query string
# cannot carry a JSON type, so "type: integer" violations arrive as valid text).
EXAMPLES = 25  # per operation and generation mode: the whole file stays well under a minute
_PATHS = build_spec()["paths"]
# (path, method, mode); negative cases need some input to break, so pages without any get none
OPERATIONS = [
    (path, method, mode)
    for path, ops in _PATHS.items()
    for method, op in ops.items()
    for mode in GenerationMode
    if mode is GenerationMode.POSITIVE or op.get("parameters") or op.get("requestBody")
]
OPERATOR_TOKEN = "fuzz-operator-token-0123456789abcdef"
VALID_NUMBERS = ["0701234567", "+254712345678", "254 733 123 456"]


@pytest.fixture
def fuzz_headers(bridge_service, demo_account):
    """Credentials per operation: the demo key for /api/v2, Basic auth of a separate account for
    key management (so revoking keys there never revokes the key the other operations use)."""
    bridge_service.topup(demo_account.id, Decimal("100000000.00"))
    bridge_service.create_account("keys", "pw-keys-1")
    token = base64.b64encode(b"keys:pw-keys-1").decode()
    return {
        "key": {"X-API-Key": demo_account.api_key},
        "basic": {"Authorization": f"Basic {token}"},
    }


@pytest.fixture
def api_schema(api_config, bridge_service, redis_client):
    """Our document, loaded by schemathesis from the running app (as a client would)."""
    config = api_config.replace(rate_limit_per_minute=10_000_000, operator_token=OPERATOR_TOKEN)
    app = create_app(config, bridge_service, redis_client)
    return schemathesis.openapi.from_wsgi("/api/v2/openapi.json", app)


CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")  # refused in any text field
NOT_STEERED = ("api_key", "sender_id", "callback_url")  # the account's rules decide these


def _steer(case, demo) -> None:
    """Make a generated send reach the accept path: real numbers (and, on /v1, real
    credentials), no control characters, and the parameters the account's rules decide left
    out; the other generated parameters stay as they are."""
    for params in (case.body, case.query):
        if isinstance(params, dict) and "message_body" in params:
            for name in NOT_STEERED:
                params.pop(name, None)
            for name, value in params.items():
                if isinstance(value, str):
                    params[name] = CONTROL.sub("", value)
            params["message_body"] = params["message_body"] or "fuzz"
            params["numbers"] = ", ".join(VALID_NUMBERS)
            if case.path == "/v1/sms/send":
                params.update(username=demo.username, password=demo.password)


@pytest.mark.parametrize("path,method,mode", OPERATIONS, ids=lambda v: getattr(v, "value", v))
def test_generated_requests_get_documented_answers(
    api_schema, fuzz_headers, demo_account, path, method, mode
):
    operation = api_schema[path][method]
    headers = fuzz_headers["basic"] if path.endswith("-key") else fuzz_headers["key"]
    if path == "/api/v2/status":
        headers = {"Authorization": f"Bearer {OPERATOR_TOKEN}"}
    # /readyz's 503 is its documented "not ready" (no worker has bound the simulator here)
    checks = [c for c in CHECKS if c is not not_a_server_error] if path == "/readyz" else CHECKS
    statuses = []

    @given(case=operation.as_strategy(generation_mode=mode), steer=st.booleans())
    @fuzz_settings(EXAMPLES)
    def run(case, steer):
        if steer:
            _steer(case, demo_account)
        statuses.append(case.call_and_validate(headers=headers, checks=checks).status_code)

    run()
    assert statuses and all(code < 500 or path == "/readyz" for code in statuses)
    if path.endswith("sms/send") and mode is GenerationMode.POSITIVE:
        assert 200 in statuses, statuses  # the fuzzing reached the accept path


UNDOCUMENTED = ("GET", "POST", "PUT", "PATCH", "DELETE")


def _concrete(path: str) -> str:
    """A documented path with its {parameters} filled in (any value routes the same)."""
    return re.sub(r"\{[^}]+\}", "x1", path)


@pytest.mark.parametrize("path", sorted(_PATHS))
def test_undocumented_methods_get_405_with_allow(api_schema, fuzz_headers, path):
    """Every method a path does not document is 405 with the contract's JSON error and an
    `Allow` header naming exactly the documented methods (OPTIONS, the CORS preflight, aside);
    the OPTIONS answer's `Allow` names the same."""
    documented = {m.upper() for m in _PATHS[path]}
    client = testing.TestClient(api_schema.app)
    headers = {**fuzz_headers["key"], **fuzz_headers["basic"]}
    for method in sorted(set(UNDOCUMENTED) - documented):
        got = client.simulate_request(method, _concrete(path), headers=headers)
        assert got.status_code == 405, (method, path, got.status_code, got.text)
        allowed = {m.strip() for m in got.headers["allow"].split(",")} - {"OPTIONS"}
        assert allowed == documented, (method, path, got.headers["allow"])
        assert got.json["error"].startswith(f"Method {method} is not allowed here")
        assert got.headers["access-control-allow-origin"] == "*"
    preflight = client.simulate_options(_concrete(path))
    assert preflight.status_code == 204
    advertised = {m.strip() for m in preflight.headers["allow"].split(",")} - {"OPTIONS"}
    assert advertised == documented, (path, preflight.headers["allow"])
