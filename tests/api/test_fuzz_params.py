"""Hostile values for every parameter of every endpoint never get a 5xx, and never get stored.

Hypothesis draws an operation from our OpenAPI document, starts from a request that would
succeed, and replaces some of its parameters (and maybe adds an unknown one) with hostile
values: huge integers, NaN, nested lists and objects, texts with lone surrogates, NUL and other
control characters, a lost ``+``. It sends them as JSON, form, multipart or query string through
the real falcon app over a real database (SQLite and PostgreSQL) and Redis. Every answer must be
below 500 and JSON with an ``error`` sentence when it is an error; afterwards no stored message
holds a control character the rule refuses (docs/api.md) or a surrogate.
"""

from __future__ import annotations

import base64
import json
import re
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from urllib.parse import quote_from_bytes

import pytest
from falcon import testing
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select

from api.app import create_app
from api.openapi import build_spec
from api.resources.docs import ASSETS
from bridge.storage.models import messages
from bridge.storage.paging import Key, encode_cursor
from tests.api.helpers import fuzz_settings

pytestmark = pytest.mark.slow

EXAMPLES = 300  # per backend; the whole file stays well under a minute on 2 cores
KEYS_USER, KEYS_PASSWORD = "keys", "pw-keys-1"
# refused anywhere but in message text (where TAB, LF and CR are allowed): see docs/api.md
FORBIDDEN = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")


class HugeInt:
    """A JSON integer of ``digits`` digits (Python's json cannot even write one this long)."""

    def __init__(self, digits: int) -> None:
        self.digits = digits


def _operations() -> list[tuple[str, str, list[str]]]:
    """(path, method, parameter names) for every operation of the document, body and query."""
    spec = build_spec()
    schemas = spec["components"]["schemas"]
    out = []
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            names = [p["name"] for p in op.get("parameters", []) if p.get("in") != "header"]
            for media in op.get("requestBody", {}).get("content", {}).values():
                schema = media.get("schema", {})
                if "$ref" in schema:
                    schema = schemas[schema["$ref"].rsplit("/", 1)[1]]
                names += [n for n in schema.get("properties", {}) if n not in names]
            out.append((path, method.upper(), names))
    return out


OPERATIONS = _operations()
SPECIALS = [
    "\ud800",
    "\udfff",
    "\x00",
    "\x01",
    "\x0b",
    "\x0c",
    "\x1b",
    "\x1f",
    "\x7f",
    "\x85",
    "\x9f",
    "\t",
    "\n",
    "\r",
    "\u2028",
    "\ufeff",
    "+",
    " ",
    "%",
    "&",
    "=",
    ",",
    ";",
    "\\",
    '"',
    "\U0001f600",
]
special = st.sampled_from(SPECIALS)
hostile_text = st.one_of(
    st.lists(st.one_of(special, st.text(max_size=4)), max_size=6).map("".join),
    st.text(st.characters(codec="utf-8"), max_size=12),
)
scalar = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=101, max_value=6000).map(HugeInt),
    st.floats(allow_nan=True, allow_infinity=True),
    hostile_text,
)
hostile_json = st.recursive(
    scalar,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(hostile_text, inner, max_size=3),
    max_leaves=6,
)


def _variant(base: Any):
    """Hostile values near a good one (so they pass the earlier checks) or anywhere else."""
    near = (
        [
            st.tuples(special, hostile_text).map(lambda t: base + t[0] + t[1]),
            st.tuples(hostile_text, special).map(lambda t: t[0] + t[1] + base),
            st.just(base.replace("0", "\x00", 1)),
            st.just(" " + base.lstrip("+")),
        ]
        if isinstance(base, str)
        else []
    )
    return st.one_of(*near, hostile_json)


def _to_json(value: Any) -> str:
    if isinstance(value, HugeInt):
        return "9" * value.digits
    if isinstance(value, dict):
        return "{" + ",".join(f"{json.dumps(k)}:{_to_json(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ",".join(_to_json(v) for v in value) + "]"
    return json.dumps(value)


def _as_text(value: Any) -> list[str]:
    """What a form or query string can carry: texts, a list becoming a repeated name."""
    if isinstance(value, list):
        return [t for v in value for t in _as_text(v)]
    if isinstance(value, str):
        return [value]
    if value is None:
        return [""]
    return [_to_json(value)]


def _quote(text: str, safe: str = "") -> str:
    return quote_from_bytes(text.encode("utf-8", "surrogatepass"), safe=safe)


def _urlencoded(params: dict[str, Any], raw_plus: bool) -> bytes:
    """Percent-encoded pairs; texts are UTF-8 with surrogates passed (so not valid UTF-8)."""
    pairs = []
    for name, value in params.items():
        for text in _as_text(value):
            encoded = _quote(text, safe="+" if raw_plus else "")
            pairs.append(f"{_quote(name)}={encoded}")
    return "&".join(pairs).encode("ascii")


def _multipart(params: dict[str, Any]) -> tuple[bytes, str]:
    out = b""
    for name, value in params.items():
        for text in _as_text(value):
            out += (
                b'--XyZ\r\nContent-Disposition: form-data; name="'
                + name.encode("utf-8", "surrogatepass")
                + b'"\r\n\r\n'
                + text.encode("utf-8", "surrogatepass")
                + b"\r\n"
            )
    return out + b"--XyZ--\r\n", "multipart/form-data; boundary=XyZ"


@pytest.fixture
def fuzz_app(api_config, bridge_service, redis_client, demo_account):
    bridge_service.topup(demo_account.id, Decimal("100000000.00"))
    bridge_service.create_account(KEYS_USER, KEYS_PASSWORD)
    # an operator token is configured (as `run` does), so /api/v2/status answers the fuzzer's
    # token-less requests 401, not the 503 that says none is configured
    config = api_config.replace(rate_limit_per_minute=10_000_000, operator_token="fuzz-operator")
    return create_app(config, bridge_service, redis_client)


def _good_params(path: str, demo, message_id: str, batch_id: str = "") -> dict[str, Any]:
    """A value that would succeed, for every parameter name any operation has."""
    key_user = path.endswith("-key")
    return {
        "numbers": "+254712345678",
        "message_body": "Hello",
        "sender_id": "ACME",
        "callback_url": "https://example.com/dlr",
        "reference": "ref-1",
        "api_key": demo.api_key,
        "username": KEYS_USER if key_user else demo.username,
        "password": KEYS_PASSWORD if key_user else demo.password,
        "expiry_days": 30,
        "key_id": "",
        "message_id": message_id,
        "name": next(iter(ASSETS)),
        # GET /api/v2/sms and /api/v2/batches/{batch_id}
        "batch_id": batch_id,
        "state": "accepted",
        "number": "0701234567",
        "since": "2020-01-01T00:00:00Z",
        "until": "2100-01-01T00:00:00+03:00",
        "limit": 10,
        "cursor": encode_cursor(Key(datetime(2100, 1, 1, tzinfo=UTC), "Z" * 26)),
    }


@st.composite
def requests(draw, good_for):
    path, method, names = draw(st.sampled_from(OPERATIONS))
    good = good_for(path)
    params = {n: good[n] for n in names if n in good}
    for name in draw(st.sets(st.sampled_from(names), min_size=1)) if names else ():
        params[name] = draw(_variant(good.get(name, "x")))
    if draw(st.booleans()):
        params[draw(hostile_text)] = draw(hostile_json)  # an unknown parameter
    place = draw(st.sampled_from(["json", "form", "multipart", "query"]))
    return path, method, params, place, draw(st.booleans())


def _send(client, path: str, method: str, params: dict, place: str, raw_plus: bool, demo):
    for name in re.findall(r"{(\w+)}", path):
        value = params.pop(name, "x")
        text = value if isinstance(value, str) else _to_json(value)
        path = path.replace("{" + name + "}", _quote(text))
    headers = {}
    # GETs whose key is only a security scheme (no api_key parameter listed) send the header,
    # so their own parameters are fuzzed behind the key check, not just refused with 401
    if path.startswith("/api/v2") and params.get("api_key", demo.api_key) == demo.api_key:
        headers["X-API-Key"] = demo.api_key
    if path.endswith("-key") and "username" not in params:
        token = base64.b64encode(f"{KEYS_USER}:{KEYS_PASSWORD}".encode()).decode()
        headers["Authorization"] = f"Basic {token}"
    body, query = b"", ""
    if method == "GET" or place == "query":
        query = _urlencoded(params, raw_plus).decode("ascii")
    elif place == "json":
        body, headers["Content-Type"] = _to_json(params).encode(), "application/json"
    elif place == "form":
        body = _urlencoded(params, raw_plus)
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    else:
        body, headers["Content-Type"] = _multipart(params)
    return client.simulate_request(method, path, query_string=query, body=body, headers=headers)


def test_hostile_parameters_never_get_a_server_error(fuzz_app, bridge_service, demo_account, db):
    client = testing.TestClient(fuzz_app)
    sent = client.simulate_post(
        "/api/v2/sms/send",
        json={"numbers": "0701234567", "message_body": "Hello"},
        headers={"X-API-Key": demo_account.api_key},
    )
    assert sent.status_code == 200, sent.text
    message_id, batch_id = sent.json["messages"][0]["message_id"], sent.json["batch_id"]
    statuses: dict[int, int] = {}

    @given(request=requests(lambda path: _good_params(path, demo_account, message_id, batch_id)))
    @fuzz_settings(EXAMPLES)
    def run(request):
        path, method, params, place, raw_plus = request
        r = _send(client, path, method, params, place, raw_plus, demo_account)
        # /readyz answers 503 by design while no bind is up (nothing here runs a worker)
        ready = path == "/readyz" and r.status_code == 503
        assert r.status_code < 500 or ready, (path, method, place, params, r.status_code, r.text)
        statuses[r.status_code] = statuses.get(r.status_code, 0) + 1
        if ready:  # its body is the readiness document, naming what is missing
            assert r.json["ready"] is False and r.json["problems"], r.text
        elif r.status_code >= 400:
            assert isinstance(r.json.get("error"), str) and r.json["error"], r.text

    run()
    assert {200, 400} <= statuses.keys(), statuses  # the fuzzing reached success and refusal
    with db.connect() as conn:
        rows = conn.execute(
            select(
                messages.c.text,
                messages.c.destination,
                messages.c.sender_id,
                messages.c.client_reference,
                messages.c.callback_url,
            )
        ).all()
    for row in rows:
        assert not FORBIDDEN.search(row.text), row
        for value in row[1:]:
            assert value is None or not re.search("[\x00-\x1f\x7f-\x9f]", value), row
