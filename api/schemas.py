"""Marshmallow schemas: they validate requests and, through apispec, ARE the OpenAPI document.

Request schemas exclude unknown parameters (clients send extras) and turn the first problem into
``400 {"error": "<sentence naming the field>", "field": name}``. Response schemas describe what
the resources render; they are used for the document (and its conformance tests).
"""

from __future__ import annotations

import re
from typing import Any, ClassVar

from marshmallow import EXCLUDE, INCLUDE, Schema, ValidationError, fields, validate

from bridge.accept.callbacks import CALLBACK_EVENTS, CALLBACK_EVENTS_ERROR
from bridge.accept.chars import control_problem
from bridge.accept.send import CALLBACK_URL_MAX, REFERENCE_MAX
from bridge.errors import InvalidInput
from bridge.storage.states import MessageState

EXPIRY_DAYS_ERROR = "expiry_days must be between 1 and 365."  # the contract's exact sentence
_DIGITS = re.compile(r"\s*\d{1,9}\s*")


def text(
    name: str,
    *,
    required: bool = False,
    max_length: int | None = None,
    description: str = "",
    example: str | None = None,
    message_text: bool = False,
    also: tuple[Any, ...] = (),
    **kwargs: Any,
) -> fields.String:
    """A text parameter whose errors are sentences naming it. Control characters are refused
    (bridge.accept.chars); ``message_text`` allows TAB, LF and CR; ``also`` adds validators."""
    checks: list[Any] = [_no_controls(name, message_text), *also]
    if required:
        checks.append(validate.Length(min=1, error=f"{name} must not be empty."))
    if max_length:
        checks.append(
            validate.Length(
                max=max_length, error=f"{name} must be at most {max_length} characters."
            )
        )
    meta = {"description": description} | ({"example": example} if example is not None else {})
    return fields.String(
        required=required,
        validate=checks,
        metadata=meta,
        error_messages={
            "required": f"{name} is required.",
            "null": f"{name} must not be null.",
            "invalid": f"{name} must be text.",
            "invalid_utf8": f"{name} must be valid UTF-8.",
        },
        **kwargs,
    )


def _no_controls(name: str, message_text: bool):
    def check(value: str) -> None:
        problem = control_problem(name, value, message_text=message_text)
        if problem is not None:
            raise ValidationError(problem)

    return check


class Numbers(fields.Field):
    """Comma-separated text (the contract's form) or a JSON list / repeated parameter of texts."""

    default_error_messages: ClassVar[dict[str, str]] = {
        "invalid": "numbers must be comma-separated text or a list of texts.",
        "required": "numbers is required.",
        "null": "numbers must not be null.",
        "empty": "numbers must not be empty.",
    }

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        if isinstance(value, str):
            entries = value.split(",")
        elif isinstance(value, list) and all(isinstance(v, str) for v in value):
            entries = [part for v in value for part in v.split(",")]
        else:
            raise self.make_error("invalid")
        if not any(e.strip() for e in entries):
            raise self.make_error("empty")
        return value


class ExpiryDays(fields.Integer):
    """A whole number of days, 1..365, as a JSON integer or decimal digits; nothing else."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(
            strict=True,
            load_default=90,
            validate=validate.Range(1, 365),
            error_messages={"invalid": EXPIRY_DAYS_ERROR, "null": EXPIRY_DAYS_ERROR},
            metadata={"description": "Days until the key expires (default 90).", "example": 90},
            **kwargs,
        )

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> int:
        if isinstance(value, str) and _DIGITS.fullmatch(value):
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValidationError(EXPIRY_DAYS_ERROR)
        if not 1 <= value <= 365:
            raise ValidationError(EXPIRY_DAYS_ERROR)
        return value


def numbers_property(converter, field: fields.Field, **kwargs: Any) -> dict:
    """apispec attribute function: document ``Numbers`` as text or a list of texts."""
    if not isinstance(field, Numbers):
        return {}
    return {
        "oneOf": [
            {"type": "string", "minLength": 1, "example": "0701234567, 0712345678"},
            {"type": "array", "minItems": 1, "items": {"type": "string"}},
        ]
    }


# ---------------------------------------------------------------- requests
class _Params(Schema):
    class Meta:
        unknown = EXCLUDE


class SendParams(_Params):
    """Parameters of ``/api/v2/sms/send``."""

    numbers = Numbers(
        required=True,
        metadata={
            "description": "Recipients, comma separated (blanks around entries ignored), or a list. "
            "Local numbers are read in the default region (KE)."
        },
    )
    message_body = text(
        "message_body",
        required=True,
        message_text=True,
        description="The text to send (control characters other than TAB, LF and CR refused).",
        example="Hello, this is a test message.",
    )
    sender_id = text(
        "sender_id",
        max_length=16,
        description=(
            "Sender shown on the phone; one of the account's allowed sender ids. "
            "Default: the account's sender id."
        ),
    )
    callback_url = text(
        "callback_url",
        max_length=CALLBACK_URL_MAX,
        description=(
            "http(s) URL; each message's state changes are POSTed here as signed webhooks "
            "(Standard Webhooks; see docs/webhooks.md). It must reach a public address: "
            "loopback, private, link-local and other internal targets (or names resolving to "
            "them) are refused with 400 unless the operator allows the network. Default: the "
            "account's callback URL."
        ),
        example="https://example.com/dlr",
    )
    callback_events = text(
        "callback_events",
        also=(validate.OneOf(CALLBACK_EVENTS, error=CALLBACK_EVENTS_ERROR),),
        description=(
            "Which events callback_url gets: `final` (the final state: delivered, "
            "undelivered, expired, rejected or failed) or `all` (also `submitted`, when the "
            "SMSC takes the message). Default: the account's choice, else `final`."
        ),
        example="final",
    )
    reference = text(
        "reference",
        max_length=REFERENCE_MAX,
        description="Your own id for this request, echoed back.",
    )
    api_key = text("api_key", description="The API key, if not sent as the X-API-Key header.")


class LegacySendParams(_Params):
    """Parameters of ``POST /v1/sms/send`` (credentials in every request)."""

    numbers = SendParams._declared_fields["numbers"]
    message_body = SendParams._declared_fields["message_body"]
    sender_id = SendParams._declared_fields["sender_id"]
    # Required in practice: checked (401 "Unauthorized.") before the schema runs; HTTP Basic
    # may carry them instead, so the schema itself does not insist.
    username = text("username", description="Account username (or HTTP Basic).", example="user123")
    password = text("password", description="Account password (or HTTP Basic).", example="pass123")


class _AccountCredentials(_Params):
    username = text("username", description="Account username (or use HTTP Basic).")
    password = text("password", description="Account password (or use HTTP Basic).")


class GenerateKeyParams(_AccountCredentials):
    """Parameters of ``POST /api/generate-key``."""

    expiry_days = ExpiryDays()


class RevokeKeyParams(_AccountCredentials):
    """Parameters of ``POST /api/revoke-key``."""

    key_id = text("key_id", description="The key to revoke, by its key_id.")
    api_key = text(
        "api_key",
        description="The key to revoke (or prove with), if not sent as the X-API-Key header.",
    )


class RegenerateKeyParams(RevokeKeyParams):
    """Parameters of ``POST /api/regenerate-key``."""

    expiry_days = ExpiryDays()


def load(schema: Schema, params: dict[str, Any]) -> dict[str, Any]:
    """Validate ``params``; the first problem becomes ``InvalidInput`` naming the field."""
    try:
        return schema.load(params)
    except ValidationError as exc:
        raise _first_problem(schema, exc.normalized_messages()) from None


def _first_problem(schema: Schema, messages: dict[str, Any]) -> InvalidInput:
    order = [name for name in schema.fields if name in messages] or sorted(messages)
    name = order[0]
    problem = messages[name]
    while isinstance(problem, (list, dict)):
        problem = problem[0] if isinstance(problem, list) else next(iter(problem.values()))
    return InvalidInput(str(problem), field=name)


# ---------------------------------------------------------------- responses
class _Answer(Schema):
    class Meta:
        unknown = INCLUDE


def money(description: str) -> fields.String:
    return fields.String(
        required=True,
        metadata={
            "description": description + " Exact decimal as text, two or more decimals.",
            "pattern": r"^-?\d+\.\d{2,}$",
            "example": "0.80",
        },
    )


class ErrorAnswer(_Answer):
    """Every error: one sentence, sometimes with more fields."""

    error = fields.String(required=True, metadata={"description": "What went wrong, one sentence."})
    help = fields.String(metadata={"description": "What to do about it."})
    field = fields.String(metadata={"description": "The parameter at fault."})
    invalid_numbers = fields.List(
        fields.String(),
        metadata={"description": "The numbers that are not valid mobile numbers, as sent."},
    )
    retry_after = fields.Integer(metadata={"description": "Seconds to wait (429)."})


class MessageAnswer(_Answer):
    number = fields.String(required=True, metadata={"description": "E.164, e.g. +254701234567."})
    message_id = fields.String(required=True)
    status = fields.String(required=True, metadata={"example": MessageState.ACCEPTED.value})
    parts = fields.Integer(required=True, metadata={"description": "SMS parts of this message."})
    cost = money("Price of this message.")


class SendAnswer(_Answer):
    status = fields.String(required=True, metadata={"example": MessageState.ACCEPTED.value})
    batch_id = fields.String(required=True)
    count = fields.Integer(required=True, metadata={"description": "Distinct recipients."})
    parts = fields.Integer(required=True, metadata={"description": "SMS parts in all."})
    cost = money("Charged for the whole request.")
    currency = fields.String(required=True, metadata={"example": "KES"})
    balance = money("Balance after the charge.")
    reference = fields.String(allow_none=True, metadata={"description": "Your reference, echoed."})
    messages = fields.List(fields.Nested(MessageAnswer), required=True)


class BalanceAnswer(_Answer):
    username = fields.String(required=True)
    balance = money("Current balance.")
    currency = fields.String(required=True, metadata={"example": "KES"})


class KeyAnswer(_Answer):
    api_key = fields.String(
        required=True,
        metadata={"description": "The full key; shown only in this answer, only a hash is stored."},
    )
    key_id = fields.String(required=True, metadata={"description": "Public id of the key."})
    expires_at = fields.String(
        required=True, metadata={"format": "date-time", "description": "Expiry, UTC, ISO 8601."}
    )


class RevokeAnswer(_Answer):
    revoked = fields.Integer(required=True, metadata={"description": "Keys revoked now."})
