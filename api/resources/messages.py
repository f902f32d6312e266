"""``GET /api/v2/sms/{message_id}``: one message of the key's account, its state and history.

Another account's id and an unknown id both answer ``404 {"error": "Message not found."}``
(an id never tells who owns it). Times are ISO 8601 UTC with milliseconds; money is a string.
The answer schema and the OpenAPI operation live here too (``document(spec)``), so the
api/openapi.py document only calls them.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import falcon
from marshmallow import Schema, fields
from redis.exceptions import RedisError

from bridge.delivery.settlement.view import MessageView, message_view
from bridge.storage.ledger import money_str
from bridge.storage.states import MessageState
from bridge.webhooks.attempts import read_attempts

ATTEMPT_FIELDS = ("event_id", "attempt", "at", "status", "error", "next_retry_at", "outcome")

PATH = "/api/v2/sms/{message_id}"
OPERATION_ID = "message_status"
SUMMARY = "Message state"
DESCRIPTION = """\
The state of one message sent with this key's account, its SMSC ids and its history.

`state` is one of `scheduled` (charged, stored, held until its `send_at`), `accepted`
(charged, stored), `queued` (on its way to an SMSC connection), `submitted` (the SMSC took
every part), and the final states `delivered`, `undelivered`, `expired`, `rejected`, `failed`,
`cancelled`. Messages that never reach the SMSC (`rejected` by it at submit, `failed` after
retries or for lack of a route, `expired` in the queue, `cancelled` by DELETE) are refunded;
final states reported by a delivery receipt are not (the SMSC accepted the message).
`possible_duplicate` is true when the message may have reached the SMSC twice (it was resent
after a worker crash or a timeout). `events` lists each transition with its time and detail.
`webhook_attempts` lists the delivery attempts of its webhooks to `callback_url`, oldest first
(kept 7 days, the newest 50): when, the HTTP status or the error, the next retry, the outcome;
null when the attempt records cannot be read right now (Redis down).
Another account's message id, or an unknown one, answers 404 `{"error": "Message not found."}`."""


def iso(moment: datetime | None) -> str | None:
    """``2030-03-17T17:48:00.000Z``, or None."""
    if moment is None:
        return None
    if moment.tzinfo is not UTC:  # the database's times already are (UTCDateTime)
        moment = moment.astimezone(UTC)
    return moment.isoformat(timespec="milliseconds")[:-6] + "Z"  # "+00:00" -> "Z"


def render(view: MessageView) -> dict[str, Any]:
    """The answer: every field of the message and its history."""
    return render_summary(view) | {
        "events": [{"state": e.state, "at": iso(e.at), "detail": e.detail} for e in view.events]
    }


def render_summary(view: MessageView) -> dict[str, Any]:
    """The message without its history (what GET /api/v2/sms lists)."""
    return _summary(view, money_str(view.cost))


def render_summaries(views: list[MessageView]) -> list[dict[str, Any]]:
    """``render_summary`` of each, with each distinct price written once (a page's repeat)."""
    costs: dict[tuple[Decimal, bool], str] = {}
    out = []
    for view in views:
        key = (view.cost, view.cost.is_signed())  # the sign too: -0 == 0, "-0.00" != "0.00"
        cost = costs.get(key)
        if cost is None:
            cost = costs[key] = money_str(view.cost)
        out.append(_summary(view, cost))
    return out


def _summary(view: MessageView, cost: str) -> dict[str, Any]:
    return {
        "message_id": view.message_id,
        "batch_id": view.batch_id,
        "number": view.number,
        "sender_id": view.sender_id,
        "state": view.state,
        "parts": view.parts,
        "cost": cost,
        "currency": view.currency,
        "reference": view.reference,
        "smsc_message_ids": view.smsc_message_ids,
        "error_code": view.error_code,
        "possible_duplicate": view.possible_duplicate,
        "created_at": iso(view.created_at),
        "queued_at": iso(view.queued_at),
        "submitted_at": iso(view.submitted_at),
        "done_at": iso(view.done_at),
        "send_at": iso(view.send_at),
        "expires_at": iso(view.expires_at),
    }


class MessageStatus:
    """GET: the message; DELETE: cancel it (bridge.delivery.settlement.cancel)."""

    auth = "api_key"

    def __init__(self, service, canceller=None) -> None:
        self._service = service
        self._canceller = canceller

    def on_get(self, req: falcon.Request, resp: falcon.Response, message_id: str) -> None:
        view = message_view(self._service.db, req.context.key.account_id, message_id)
        resp.media = render(view) | {"webhook_attempts": self._attempts(view.message_id)}

    def _attempts(self, message_id: str) -> list[dict[str, Any]] | None:
        """The message's webhook attempts (read only after its owner was checked), or None."""
        redis = self._service.redis
        if redis is None:
            return None
        try:
            records = read_attempts(redis, message_id)
        except RedisError:
            return None
        return [{name: r.get(name) for name in ATTEMPT_FIELDS} for r in records]

    def on_delete(self, req: falcon.Request, resp: falcon.Response, message_id: str) -> None:
        done = self._canceller.cancel_message(req.context.key.account_id, message_id)
        resp.media = render(done.view) | {"refunded": money_str(done.refunded)}


# --- the answer schema and the OpenAPI operation ------------------------------------------
def _time(description: str, required: bool = False) -> fields.String:
    return fields.String(
        required=True,
        allow_none=not required,
        metadata={
            "format": "date-time",
            "description": description + " ISO 8601, UTC.",
            "example": "2030-03-17T17:48:00.000Z",
        },
    )


class EventAnswer(Schema):
    state = fields.String(required=True, metadata={"example": MessageState.SUBMITTED.value})
    at = _time("When the message entered this state.", required=True)
    detail = fields.String(
        required=True,
        allow_none=True,
        metadata={"description": "SMSC ids, error code or receipt status, when there is one."},
    )


class MessageSummaryAnswer(Schema):
    """A message without its history (an entry of GET /api/v2/sms)."""

    message_id = fields.String(required=True)
    batch_id = fields.String(required=True, metadata={"description": "The send request's id."})
    number = fields.String(required=True, metadata={"description": "E.164, e.g. +254701234567."})
    sender_id = fields.String(required=True)
    state = fields.String(
        required=True,
        metadata={"enum": [state.value for state in MessageState]},
    )
    parts = fields.Integer(required=True)
    cost = fields.String(
        required=True,
        metadata={
            "description": "Price of this message. Exact decimal as text, two or more decimals.",
            "pattern": r"^-?\d+\.\d{2,}$",
            "example": "0.80",
        },
    )
    currency = fields.String(required=True, metadata={"example": "KES"})
    reference = fields.String(required=True, allow_none=True)
    smsc_message_ids = fields.List(
        fields.String(),
        required=True,
        metadata={"description": "The SMSC's id of each part (more when it was submitted twice)."},
    )
    error_code = fields.String(
        required=True,
        allow_none=True,
        metadata={"description": "SMPP status name, receipt err code or reason, when failed."},
    )
    possible_duplicate = fields.Boolean(required=True)
    created_at = _time("Accepted.", required=True)
    queued_at = _time("Queued.")
    submitted_at = _time("Accepted by the SMSC.")
    done_at = _time("Final state reached (the receipt's done date when there is one).")
    send_at = _time("A scheduled send's time (null: sent at once).")
    expires_at = _time(
        "The end of its validity: not submitted by then, it is expired and refunded; the SMSC "
        "gets it as the validity period.",
        required=True,
    )


class WebhookAttemptAnswer(Schema):
    event_id = fields.String(required=True, metadata={"example": "evt_01J..._delivered"})
    attempt = fields.Integer(required=True, metadata={"description": "1 for the first."})
    at = _time("When the attempt ended.", required=True)
    status = fields.Integer(
        required=True, allow_none=True, metadata={"description": "The HTTP status, or null."}
    )
    error = fields.String(
        required=True,
        allow_none=True,
        metadata={"description": "What went wrong when there was no HTTP answer."},
    )
    next_retry_at = _time("When it is tried again (outcome retrying).")
    outcome = fields.String(
        required=True, metadata={"enum": ["delivered", "retrying", "failed", "dead"]}
    )


class MessageStatusAnswer(MessageSummaryAnswer):
    events = fields.List(fields.Nested(EventAnswer), required=True)
    webhook_attempts = fields.List(
        fields.Nested(WebhookAttemptAnswer),
        required=True,
        allow_none=True,
        metadata={"description": "Webhook deliveries to callback_url; null if unreadable now."},
    )


class CancelAnswer(MessageStatusAnswer):
    refunded = fields.String(
        required=True,
        metadata={
            "description": "The refund of this message (made by the first cancel; a repeated "
            "cancel refunds nothing more). Exact decimal as text, two or more decimals.",
            "pattern": r"^-?\d+\.\d{2,}$",
            "example": "0.80",
        },
    )


CANCEL_SUMMARY = "Cancel a message"
CANCEL_DESCRIPTION = """\
Cancel a message that has not been submitted to the SMSC yet (`scheduled`, or `accepted` /
`queued` before a worker took it): it becomes `cancelled` and its price is refunded, once.
The answer is the message (as GET answers it) with `refunded`. Cancelling a message that is
already `cancelled` answers the same again and refunds nothing more.

A message already `submitted`, in a final state, or being submitted right now answers 409
`{"error": "...", "state": "<its state>"}`: it may reach the handset, and it stays charged.
Another account's message id, or an unknown one, answers 404 `{"error": "Message not found."}`."""


def document(spec, headers, error_text: dict[int, str], security: list) -> None:
    """Add the schema and the operation to an apispec ``spec`` (called by api/openapi.py).

    ``headers(v2, status)`` gives an answer's header references, as for the other operations.
    """
    spec.components.schema("MessageStatus", schema=MessageStatusAnswer)
    errors = {
        404: "Unknown message id, or one of another account.",
        **{code: error_text[code] for code in (401, 429, 503)},
    }
    responses = answers(headers, "The message.", MessageStatusAnswer, errors)
    spec.components.schema("CancelledMessage", schema=CancelAnswer)
    cancel_errors = {409: "Submitted, final, or being submitted: not cancelled.", **errors}
    spec.path(
        path=PATH,
        operations={
            "get": {
                "summary": SUMMARY,
                "description": DESCRIPTION,
                "operationId": OPERATION_ID,
                "security": security,
                "responses": responses,
                "parameters": [path_id("message_id", "A message_id from the send answer.")],
            },
            "delete": {
                "summary": CANCEL_SUMMARY,
                "description": CANCEL_DESCRIPTION,
                "operationId": "cancel_message",
                "security": security,
                "responses": answers(headers, "Cancelled.", CancelAnswer, cancel_errors),
                "parameters": [path_id("message_id", "A message_id from the send answer.")],
            },
        },
    )


def path_id(name: str, description: str) -> dict[str, Any]:
    """The OpenAPI path parameter of an id (message_id, batch_id): up to 26 characters."""
    return {
        "in": "path",
        "name": name,
        "required": True,
        "schema": {"type": "string", "maxLength": 26},
        "description": description,
    }


def answers(headers, ok_text: str, ok_schema: Any, errors: dict[int, str]) -> dict[Any, Any]:
    """The responses of a GET under /api/v2: 200 with ``ok_schema``, each error code with the
    Error body; every one with its headers (``headers(v2, status)``)."""
    responses: dict[Any, Any] = {
        200: {
            "description": ok_text,
            "headers": headers(True, 200),
            "content": {"application/json": {"schema": ok_schema}},
        }
    }
    for code, text in sorted(errors.items()):
        responses[code] = {
            "description": text,
            "headers": headers(True, code),
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
        }
    return responses
