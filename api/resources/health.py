"""Probes and the NOC's document: ``/healthz``, ``/readyz`` and ``GET /api/v2/status``.

``/healthz`` reads nothing (the process answers); ``/readyz`` and ``/api/v2/status`` call
bridge.ops.status, which bounds every read. ``/api/v2/status`` takes the operator token
(``Authorization: Bearer``), never a customer API key; with no token configured it answers 503
saying how to set one, so it is never open by accident.
"""

from __future__ import annotations

from typing import Any

import falcon

from bridge.errors import Unauthorized
from bridge.ops.access import token_matches
from bridge.ops.status import collect_status, readiness

STATUS_PATH = "/api/v2/status"
OPERATOR_TOKEN_REQUIRED = "Operator token is required."
OPERATOR_TOKEN_INVALID = "Invalid operator token."
OPERATOR_TOKEN_HELP = (
    "Send Authorization: Bearer <operator token> (BRIDGE_OPERATOR_TOKEN; `smpp-bridge run` "
    "keeps one in var/operator-token). A customer API key is not accepted here."
)
NO_OPERATOR_TOKEN = (
    "No operator token is configured: set BRIDGE_OPERATOR_TOKEN (or operator_token in the "
    "BRIDGE_CONFIG file) and restart the API; `smpp-bridge run` makes one in var/operator-token"
)
OPERATOR_SECURITY: list[dict[str, list[str]]] = [{"OperatorBearer": []}]


class Healthz:
    """Liveness: the process answers. Reads nothing, so a slow database cannot fail it."""

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = {"status": "ok"}


class Readyz:
    """Readiness: 200 when the database and Redis answer and every configured connection has
    a bound bind, else 503 with what is not so."""

    def __init__(self, config, redis, db) -> None:
        self._config, self._redis, self._db = config, redis, db

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        answer = readiness(self._config, self._redis, self._db)
        resp.status = 200 if answer["ready"] else 503
        resp.media = answer


class Status:
    """The status document, for operators holding the operator token."""

    auth = "operator"

    def __init__(self, config, redis, db) -> None:
        self._config, self._redis, self._db = config, redis, db

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        require_operator(self._config.operator_token, req, resp)
        resp.media = collect_status(self._config, self._redis, self._db)


def require_operator(token: str, req: falcon.Request, resp: falcon.Response) -> None:
    """Refuse the request unless it carries the operator token (503 when none is set)."""
    if not token:
        raise falcon.HTTPServiceUnavailable(description=NO_OPERATOR_TOKEN)
    header = req.get_header("Authorization")
    if token_matches(token, header):
        return
    resp.set_header("WWW-Authenticate", 'Bearer realm="smpp-bridge operator"')
    given = (header or "").strip().lower().startswith("bearer ")
    raise Unauthorized(
        OPERATOR_TOKEN_INVALID if given else OPERATOR_TOKEN_REQUIRED, help=OPERATOR_TOKEN_HELP
    )


# ---------------------------------------------------------------------- OpenAPI

_NULLABLE_NUMBER = {"type": "number", "nullable": True}
_CHECK = {
    "type": "object",
    "properties": {"ok": {"type": "boolean"}, "error": {"type": "string", "nullable": True}},
}
_CONNECTION = {
    "type": "object",
    "properties": {
        "name": {"type": "string"},
        "configured": {"type": "boolean"},
        "smsc": {"type": "string", "nullable": True},
        "system_id": {"type": "string", "nullable": True},
        "bind_mode": {"type": "string", "nullable": True},
        "binds": {"type": "integer", "nullable": True},
        "max_binds": {"type": "integer", "nullable": True},
        "reported": {"type": "integer", "nullable": True},
        "bound": {"type": "integer", "nullable": True},
        "states": {"type": "array", "items": {"type": "string"}, "nullable": True},
        "ok": {"type": "boolean"},
    },
}
_BIND = {
    "type": "object",
    "properties": {
        "connection": {"type": "string"},
        "bind_id": {"type": "string"},
        "state": {
            "type": "string",
            "description": "bound, connecting, unbinding, down, bind_refused, no_lease, "
            "starting; a stale heartbeat reads down",
        },
        "since": _NULLABLE_NUMBER,
        "down_since": {
            **_NULLABLE_NUMBER,
            "description": "When the bind left bound (or first failed, if never bound); "
            "reconnect attempts do not move it; null while bound",
        },
        "stale": {"type": "boolean"},
        "reported_state": {"type": "string"},
        "heartbeat_age": _NULLABLE_NUMBER,
        "hostname": {"type": "string"},
        "pid": {"type": "integer"},
        "smsc": {"type": "string"},
        "system_id": {"type": "string"},
        "bind_mode": {"type": "string"},
        "window": {
            "type": "object",
            "properties": {"in_use": {"type": "integer"}, "size": {"type": "integer"}},
        },
        "queued": {"type": "integer"},
        "rates": {
            "type": "object",
            "description": "Per second, over the last 10 s or more.",
            "properties": {k: _NULLABLE_NUMBER for k in ("submits", "receipts", "mo")},
        },
        "last_error": {"type": "string", "nullable": True},
        "last_error_at": _NULLABLE_NUMBER,
        "enquire_link": {
            "type": "object",
            "properties": {"rtt_ms": _NULLABLE_NUMBER, "at": _NULLABLE_NUMBER},
        },
        "counters": {"type": "object", "additionalProperties": True},
    },
}
_COUNTS = {"type": "object", "additionalProperties": {"type": "integer"}}
STATUS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "Times are Unix seconds; a section Redis could not give is null.",
    "properties": {
        "version": {"type": "integer", "enum": [1]},
        "at": {"type": "number"},
        "ok": {"type": "boolean"},
        "problems": {"type": "array", "items": {"type": "string"}},
        "checks": {"type": "object", "properties": {"redis": _CHECK, "database": _CHECK}},
        "connections": {"type": "array", "items": _CONNECTION},
        "binds": {"type": "array", "items": _BIND, "nullable": True},
        "queue": {
            "type": "object",
            "nullable": True,
            "properties": {
                "length": {"type": "integer"},
                "pending": {"type": "integer"},
                "lag": {"type": "integer", "nullable": True},
                "oldest_age": {"type": "number"},
                "consumers": {"type": "array", "items": {"type": "object"}},
            },
        },
        "scheduled": {"type": "integer", "nullable": True},
        "messages": {
            "type": "object",
            "nullable": True,
            "properties": {"last_minute": _COUNTS, "last_hour": _COUNTS},
        },
        "webhooks": {**_COUNTS, "nullable": True},
        "inbound": {**_COUNTS, "nullable": True},
        "possible_duplicates": {"type": "integer", "nullable": True},
        "receipt_forms": {"type": "object", "nullable": True},
        "history": {
            "type": "object",
            "nullable": True,
            "description": "The last 15 minutes in whole 10-second buckets, oldest first "
            "(bucket i starts at start + i * bucket_seconds): messages submitted and settled "
            "by state (counts per bucket), and the queue length sampled when the document was "
            "read (null where nobody read it).",
            "properties": {
                "bucket_seconds": {"type": "integer"},
                "start": {"type": "integer"},
                "submitted": {"type": "array", "items": {"type": "integer"}},
                "settled": {
                    "type": "object",
                    "additionalProperties": {"type": "array", "items": {"type": "integer"}},
                },
                "queue_length": {
                    "type": "array",
                    "items": {"type": "integer", "nullable": True},
                },
            },
        },
    },
}
READINESS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "ready": {"type": "boolean"},
        "at": {"type": "number"},
        "problems": {"type": "array", "items": {"type": "string"}},
        "checks": {"type": "object", "properties": {"redis": _CHECK, "database": _CHECK}},
        "connections": {"type": "array", "items": _CONNECTION},
    },
}


def document(spec, headers) -> None:
    """Add the three operations, their schemas and the operator's security scheme."""
    spec.components.schema("StatusDocument", STATUS_SCHEMA)
    spec.components.schema("Readiness", READINESS_SCHEMA)
    spec.components.security_scheme(
        "OperatorBearer",
        {
            "type": "http",
            "scheme": "bearer",
            "description": "The operator token (BRIDGE_OPERATOR_TOKEN), not a customer API key.",
        },
    )
    error = "Error"

    def answer(code: int, text: str, schema: Any, v2: bool) -> dict[str, Any]:
        return {
            "description": text,
            "headers": headers(v2, code),
            "content": {"application/json": {"schema": schema}},
        }

    spec.path(
        path=STATUS_PATH,
        operations={
            "get": {
                "summary": "Status of the whole bridge (operators)",
                "description": "Every SMSC connection and bind, the queue, message counts, "
                "webhooks and inbound, in one document (docs/operations.md). Needs the "
                "operator token as `Authorization: Bearer`; a customer API key gets 401.",
                "operationId": "status",
                "security": OPERATOR_SECURITY,
                "responses": {
                    200: answer(200, "The status document.", "StatusDocument", True),
                    401: answer(
                        401,
                        "Missing or wrong operator token (a customer API key is not one).",
                        error,
                        True,
                    ),
                    503: answer(
                        503, "No operator token is configured; `error` says how.", error, True
                    ),
                },
            }
        },
    )
    spec.path(
        path="/healthz",
        operations={
            "get": {
                "summary": "Liveness",
                "description": "200 while the API process answers; reads nothing else.",
                "operationId": "healthz",
                "security": [{}],
                "responses": {
                    200: answer(
                        200,
                        "The process answers.",
                        {"type": "object", "properties": {"status": {"type": "string"}}},
                        False,
                    )
                },
            }
        },
    )
    spec.path(
        path="/readyz",
        operations={
            "get": {
                "summary": "Readiness",
                "description": "200 when the database and Redis answer and every configured "
                "connection has a bound bind; 503 with `problems` naming what is missing.",
                "operationId": "readyz",
                "security": [{}],
                "responses": {
                    200: answer(200, "Ready.", "Readiness", False),
                    503: answer(503, "Not ready; `problems` says why.", "Readiness", False),
                },
            }
        },
    )
