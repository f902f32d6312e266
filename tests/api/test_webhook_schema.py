"""The webhooks in the OpenAPI document match what the bridge sends: real bodies of every event
type, built by the code the sender posts from (settlement's notify, the inbound relay), validate
against the callbacks' schemas and have exactly their fields; the signature headers are the
ones signing produces; the callbacks' answers mean what the sender's classify does with them."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from openapi_schema_validator import OAS30Validator

from api.openapi import build_spec
from bridge.config import Config
from bridge.delivery.settlement import notify
from bridge.delivery.settlement.rules import Plan, Row
from bridge.inbound.relay import event_body
from bridge.inbound.store import InboundStore
from bridge.webhooks.client import Answer
from bridge.webhooks.sender import classify
from bridge.webhooks.signing import sign
from smpp.session.mo import MoMessage
from tests.api.helpers import sqlite_only

DOC = build_spec()
SCHEMAS = DOC["components"]["schemas"]
T0 = datetime(2026, 12, 4, 10, 0, 1, 20_000, tzinfo=UTC)
SEND_OPS = [("/api/v2/sms/send", "get"), ("/api/v2/sms/send", "post")]


def _inline(node: Any) -> Any:
    """``node`` with every ``#/components/schemas/...`` reference replaced by the schema."""
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/components/schemas/"):
            return _inline(SCHEMAS[ref.rsplit("/", 1)[1]])
        return {k: _inline(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_inline(v) for v in node]
    return node


def _callback_post(path: str, method: str, name: str) -> dict[str, Any]:
    [item] = DOC["paths"][path][method]["callbacks"][name].values()
    return item["post"]


def _body_schema(post: dict[str, Any]) -> dict[str, Any]:
    return _inline(post["requestBody"]["content"]["application/json"]["schema"])


def _same_fields(body: dict[str, Any], schema: dict[str, Any], where: str = "body") -> None:
    """The body has exactly the schema's fields, nested objects too."""
    assert set(body) == set(schema["properties"]), where
    for name, value in body.items():
        if isinstance(value, dict):
            _same_fields(value, schema["properties"][name], f"{where}.{name}")


def _row(mid: str, state: str, old: str, **kw: Any) -> Row:
    submitted = None if kw.get("refund") else T0 + timedelta(milliseconds=290)
    done = T0 + timedelta(seconds=1)
    return Row(
        id=mid,
        account_id=7,
        price=Decimal("0.80"),
        parts=1,
        state=state,
        submitted_at=submitted,
        smsc_ids=None if kw.get("refund") else ["5F3A21"],
        connection="sim",
        done_at=done,
        error_code=kw.pop("error_code", None),
        possible_duplicate=False,
        old_state=old,
        dirty=True,
        callback_url="https://1.1.1.1/hooks",
        callback_events="all",
        **kw,
    )


def _message_bodies() -> list[dict[str, Any]]:
    """One real event body of every message event the settlement produces."""
    rows = [
        _row("m1", "delivered", "queued"),  # submitted, then delivered
        _row("m2", "undelivered", "submitted", error_code="001"),
        _row("m3", "expired", "submitted", error_code="validity elapsed"),
        _row("m4", "rejected", "queued", error_code="ESME_RINVDSTADR", refund=True),
        _row("m5", "failed", "queued", error_code="no route", refund=True),
        _row("m6", "cancelled", "scheduled", refund=True),
    ]
    p = Plan({r.id: r for r in rows}, {})
    p.events.append(
        {"message_id": "m2", "state": "undelivered", "at": T0, "detail": "part 1/1: UNDELIV"}
    )
    details = {
        r.id: notify.Details("b1", "+254701234567", "order-17" if r.id == "m1" else None, "KES", T0)
        for r in rows
    }
    return [json.loads(e.body) for e in notify.build(p, details, T0 + timedelta(seconds=2))]


def test_every_message_event_matches_the_send_callbacks_schema():
    bodies = _message_bodies()
    for path, method in SEND_OPS:
        schema = _body_schema(_callback_post(path, method, "messageEvent"))
        for s in (schema, schema["properties"]["data"]):  # every field is always sent
            assert set(s["required"]) == set(s["properties"])
        types = schema["properties"]["type"]["enum"]
        assert sorted(b["type"] for b in bodies) == sorted(types)  # every type, each once
        for body in bodies:
            OAS30Validator(schema).validate(body)
            _same_fields(body, schema)


@sqlite_only
def test_the_inbound_event_matches_the_inbox_callbacks_schema(db):
    stored = InboundStore(Config(), db).store(
        "sim", MoMessage("254701000010", "22141", "STOP now", 1, 0)
    )
    body = json.loads(event_body(vars(stored)))  # as InboundRelay.publish sends it
    schema = _body_schema(_callback_post("/api/v2/inbox", "get", "inboundReceived"))
    assert body["type"] in schema["properties"]["type"]["enum"]
    OAS30Validator(schema).validate(body)
    _same_fields(body, schema)


@pytest.mark.parametrize(
    "path,method,name",
    [(*op, "messageEvent") for op in SEND_OPS] + [("/api/v2/inbox", "get", "inboundReceived")],
)
def test_callbacks_document_the_signature_headers_and_the_senders_verdicts(path, method, name):
    post = _callback_post(path, method, name)
    secret = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    headers = sign("evt_1", b"{}", [secret, secret], T0)  # two entries, as in an overlap
    documented = {p["name"]: p for p in post["parameters"] if p["in"] == "header"}
    assert set(documented) == set(headers)
    for header, value in headers.items():
        assert documented[header]["required"]
        OAS30Validator(documented[header]["schema"]).validate(value)
    verdicts = {"2XX": "delivered", "408": "retry", "429": "retry", "5XX": "retry"}
    assert set(post["responses"]) == {*verdicts, "default"}
    for status in (200, 204, 299, 301, 304, 400, 404, 408, 410, 422, 429, 500, 503, 599):
        key = next((k for k in (str(status), f"{status // 100}XX") if k in verdicts), "default")
        assert classify(Answer(status, None)).result == verdicts.get(key, "failed"), status


def test_every_operation_taking_callback_url_documents_its_webhook():
    for path, ops in DOC["paths"].items():
        for method, op in ops.items():
            params = {p["name"] for p in op.get("parameters", []) if p["in"] == "query"}
            body = op.get("requestBody", {}).get("content", {}).get("application/json", {})
            props = _inline(body.get("schema", {})).get("properties", {})
            if "callback_url" in params | set(props):
                assert "messageEvent" in op.get("callbacks", {}), (path, method)
