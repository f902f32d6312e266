"""The webhooks in the OpenAPI document: ``callbacks`` of the operations whose requests lead to
them, with the event bodies, the Standard Webhooks headers and what each answer means.

The event types and states come from the code that builds the bodies
(:mod:`bridge.delivery.settlement.notify`), the answers' meanings from the sender's
:func:`bridge.webhooks.sender.classify`; tests/api/test_webhook_schema.py builds real bodies of
every type and checks them against these schemas field for field.
"""

from __future__ import annotations

from typing import Any

from marshmallow import INCLUDE, Schema, fields, validate

from api.resources.inbound import InboundAnswer
from api.schemas import money
from bridge.delivery.settlement.notify import REPORTED
from bridge.inbound.relay import EVENT_TYPE as INBOUND_EVENT_TYPE
from bridge.storage.states import MessageState

# message.submitted, then the final states in MessageState order
MESSAGE_STATES = [s.value for s in MessageState if s is MessageState.SUBMITTED or s in REPORTED]
MESSAGE_EVENT_TYPES = [f"message.{s}" for s in MESSAGE_STATES]

SIGNATURE_HEADERS = [
    {
        "in": "header",
        "name": "webhook-id",
        "required": True,
        "schema": {"type": "string"},
        "description": "The event's id (the body's `id`): the same on every retry and every "
        "duplicate; drop repeats by it.",
    },
    {
        "in": "header",
        "name": "webhook-timestamp",
        "required": True,
        "schema": {"type": "string", "pattern": r"^\d+$"},
        "description": "This attempt's time, whole seconds since the epoch (each attempt is "
        "signed anew).",
    },
    {
        "in": "header",
        "name": "webhook-signature",
        "required": True,
        "schema": {"type": "string", "pattern": r"^v1,[A-Za-z0-9+/=]+( v1,[A-Za-z0-9+/=]+)*$"},
        "description": "`v1,<base64 HMAC-SHA256 of id.timestamp.body>` with the account's "
        "`whsec_` secret (Standard Webhooks); two space-separated entries while a rotated "
        "secret overlaps. Verify it on the raw body, e.g. with the `standardwebhooks` package.",
    },
]
# What the sender does with each answer (bridge.webhooks.sender.classify).
_RETRIED = (
    "Retried with exponential backoff and full jitter, waiting at least what a `Retry-After` "
    "(seconds or an HTTP date) asks, until `webhook_retry_seconds` (24 h by default) after the "
    "first enqueue; then dead-lettered."
)
RESPONSES: dict[str, dict[str, str]] = {
    "2XX": {"description": "Delivered: this event is not sent again (but as a duplicate)."},
    "408": {"description": _RETRIED},
    "429": {"description": _RETRIED + " The endpoint's other events wait for it too."},
    "5XX": {"description": _RETRIED},
    "default": {
        "description": "Any other answer (3xx: redirects are not followed; other 4xx) is "
        "final: the event is dead-lettered at once, not retried. No answer (connection refused "
        "or reset, DNS failure, timeout) is retried as a 5xx is."
    },
}


class _Event(Schema):
    class Meta:
        unknown = INCLUDE  # a receiver must accept fields added later


def _moment(description: str, nullable: bool = False) -> fields.String:
    return fields.String(
        required=True,
        allow_none=nullable,
        metadata={"format": "date-time", "description": description},
    )


class MessageEventData(_Event):
    """The message an event reports, as of that state."""

    message_id = fields.String(required=True)
    batch_id = fields.String(required=True, metadata={"description": "Its send request's id."})
    reference = fields.String(
        required=True, allow_none=True, metadata={"description": "The send's `reference`."}
    )
    number = fields.String(required=True, metadata={"description": "E.164."})
    state = fields.String(required=True, validate=validate.OneOf(MESSAGE_STATES))
    error_code = fields.String(
        required=True,
        allow_none=True,
        metadata={
            "description": "SMPP status name, the receipt's err: code, or `validity elapsed` / "
            "`no route` / the last retry's status; null when delivered or cancelled and in "
            "`submitted`."
        },
    )
    error_reason = fields.String(
        required=True,
        allow_none=True,
        metadata={
            "description": "The status's meaning or what the receipt said; null when "
            "delivered and in `submitted`."
        },
    )
    parts = fields.Integer(required=True)
    cost = money(
        "What the message was charged; rejected, failed, expired-in-queue and cancelled "
        "messages are refunded."
    )
    currency = fields.String(required=True)
    possible_duplicate = fields.Boolean(required=True)
    smsc_message_ids = fields.List(fields.String(), required=True)
    accepted_at = _moment("When the send was accepted.")
    submitted_at = _moment("When the SMSC took it; null if it never did.", nullable=True)
    done_at = _moment("When it reached this final state; null in `submitted`.", nullable=True)


class MessageEvent(_Event):
    """The body POSTed to `callback_url` (one JSON line, `content-type: application/json`)."""

    id = fields.String(
        required=True,
        metadata={"description": "`evt_<message_id>_<state>`, also `webhook-id`."},
    )
    type = fields.String(required=True, validate=validate.OneOf(MESSAGE_EVENT_TYPES))
    timestamp = _moment("When the bridge saw the change.")
    data = fields.Nested(MessageEventData, required=True)


MESSAGE_EVENT_TEXT = """\
Each state change of each message of this send that `callback_events` asks for: the final
state (`message.delivered`, `undelivered`, `expired`, `rejected`, `failed`, `cancelled`) and,
with `callback_events=all`, `message.submitted`. Sent from the worker side, at least once (a
duplicate has the same `webhook-id` and body), not ordered across retries, signed per Standard
Webhooks. A send without `callback_url` (and every `/v1/sms/send`) uses the account's default
callback URL and events, if it has them (`smpp-bridge account set-callback`)."""


def callback(url: str, summary: str, description: str, schema: Any) -> dict[str, Any]:
    """One Callback Object: ``url`` (a runtime expression) gets a signed POST of ``schema``."""
    return {
        url: {
            "post": {
                "summary": summary,
                "description": description,
                "parameters": SIGNATURE_HEADERS,
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": schema}},
                },
                "responses": RESPONSES,
            }
        }
    }


def message_callbacks(url: str) -> dict[str, Any]:
    """The ``callbacks`` of a send operation whose ``callback_url`` is at ``url``."""
    return {
        "messageEvent": callback(
            url, "A message's state change (delivery webhook)", MESSAGE_EVENT_TEXT, MessageEvent
        )
    }


class InboundEvent(_Event):
    """The body POSTed to the account's inbound URL."""

    id = fields.String(
        required=True, metadata={"description": "`evt_in_<inbound id>`, also `webhook-id`."}
    )
    type = fields.String(required=True, validate=validate.OneOf([INBOUND_EVENT_TYPE]))
    timestamp = _moment("When the bridge stored the message.")
    data = fields.Nested(InboundAnswer, required=True)


INBOUND_EVENT_TEXT = """\
Each inbound message routed to this account, once stored, when the account has an inbound URL:
an operator setting (`smpp-bridge account set-inbound-url NAME URL`, under the same SSRF rules
as `callback_url`), not a request field, hence no runtime expression here. `data` is the
message as `GET /api/v2/inbox/{inbound_id}` answers it. At least once (a duplicate has the same
`webhook-id` and body), signed per Standard Webhooks with the account's secret, retried and
dead-lettered like the delivery webhooks."""


def inbound_callbacks() -> dict[str, Any]:
    """The ``callbacks`` of the inbox listing: the inbound webhook."""
    return {
        "inboundReceived": callback(
            "inbound_url", "An inbound message (inbound webhook)", INBOUND_EVENT_TEXT, InboundEvent
        )
    }
