"""Marshmallow schemas: they validate requests and, through apispec, ARE the OpenAPI document.

Request schemas exclude unknown parameters (clients send extras) and turn the first problem into
``400 {"error": "<sentence naming the field>", "field": name}``. Response schemas describe what
the resources render; they are used for the document (and its conformance tests).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

from marshmallow import EXCLUDE, INCLUDE, Schema, ValidationError, fields, pre_load, validate
from marshmallow.types import ErrorMessages

from bridge.accept.callbacks import CALLBACK_EVENTS, CALLBACK_EVENTS_ERROR
from bridge.accept.chars import control_problem
from bridge.accept.numbers import to_e164
from bridge.accept.send import CALLBACK_URL_MAX, REFERENCE_MAX, SEND_AT_MAX_DAYS
from bridge.config.inbound import short_code
from bridge.errors import InvalidInput
from bridge.storage.paging import DEFAULT_LIMIT, MAX_LIMIT
from bridge.storage.states import MessageState

EXPIRY_DAYS_ERROR = "expiry_days must be between 1 and 365."  # the contract's exact sentence
_DIGITS = re.compile(r"\s*\d{1,9}\s*")
_ID = re.compile(r"^[0-9A-Za-z]{1,26}$")  # anchored: the document shows it as the pattern
_ID_ERROR = "{name} must be an id from a send answer (up to 26 letters and digits)."
# date, "T" or a space, time, optional fraction, then Z or an offset (fromisoformat checks values)
_MOMENT = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}:?\d{2})")


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

    default_error_messages: ErrorMessages = {
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


class Limit(fields.Integer):
    """How many messages a page holds: 1..1000 as a JSON integer or decimal digits."""

    def __init__(self, **kwargs: Any) -> None:
        self.error = f"limit must be a whole number from 1 to {MAX_LIMIT}."
        super().__init__(
            strict=True,
            load_default=DEFAULT_LIMIT,
            validate=validate.Range(1, MAX_LIMIT),
            error_messages={"invalid": self.error, "null": self.error},
            metadata={"description": "Messages per page (default 100).", "example": 100},
            **kwargs,
        )

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> int:
        if isinstance(value, str) and _DIGITS.fullmatch(value):
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_LIMIT:
            raise ValidationError(self.error)
        return value


class Minutes(fields.Integer):
    """A whole number of minutes as a JSON integer or decimal digits; the range is the
    config's and checked by the send path (bridge.accept.send.check_validity)."""

    def __init__(self, name: str, error: str, description: str) -> None:
        self.error = error
        super().__init__(
            strict=True,
            error_messages={"invalid": error, "null": error},
            metadata={"description": description, "example": 60, "minimum": 1},
        )

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> int:
        if isinstance(value, str) and _DIGITS.fullmatch(value):
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValidationError(self.error)
        return value


class Moment(fields.String):
    """An ISO 8601 date and time with its UTC offset (``2030-03-17T17:48:00Z``, ``...+03:00``)."""

    def __init__(self, name: str, description: str) -> None:
        self.param = name
        self.error = (
            f"{name} must be an ISO 8601 date and time with its offset, e.g. "
            "2030-03-17T17:48:00Z or 2030-03-17T20:48:00+03:00."
        )
        super().__init__(
            error_messages={"invalid": self.error, "null": self.error},
            metadata={
                "format": "date-time",
                "description": description,
                "example": "2030-03-17T17:48:00Z",
            },
        )

    # A String to apispec (it types fields by class, so the document says "string"), loaded as
    # an aware datetime: the override's return type differs from String's on purpose.
    def _deserialize(  # type: ignore[override]
        self, value: Any, attr: str | None, data: Any, **kwargs: Any
    ) -> datetime:
        if not isinstance(value, str) or not _MOMENT.fullmatch(value.strip()):
            raise ValidationError(self.error)
        try:
            moment = datetime.fromisoformat(value.strip())
        except ValueError:
            raise ValidationError(self.error) from None
        if moment.tzinfo is None or moment.utcoffset() is None:
            raise ValidationError(self.error)
        try:
            return moment.astimezone(UTC)
        except OverflowError:  # 0001-01-01T00:00:00+01:00 has no UTC form
            raise ValidationError(self._out_of_range(moment)) from None

    def _out_of_range(self, moment: datetime) -> str:
        """A valid time whose UTC form is outside what a datetime holds (years 1 to 9999)."""
        offset = moment.utcoffset()
        early = offset is not None and offset > timedelta(0)
        edge = "before 0001-01-01T00:00:00Z" if early else "after 9999-12-31T23:59:59Z"
        return (
            f"{self.param} is out of range: {moment.isoformat()} is {edge} in UTC; give a time "
            "between those."
        )


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


EMPTY_ERROR = "{name} is empty; give it a value or leave {name} out."


class ListParams(_Params):
    """The parameters of a list endpoint: a filter given empty (``?reference=``) is refused
    with 400 naming it, never read as "match the empty value" nor silently ignored."""

    @pre_load
    def _refuse_empty(self, data: Any, **kwargs: Any) -> Any:
        if isinstance(data, dict):
            for name in self.fields:
                if name != "api_key" and data.get(name) == "":
                    raise ValidationError(EMPTY_ERROR.format(name=name), field_name=name)
        return data


def number_filter(raw: str, region: str, field: str = "number") -> str:
    """A handset number parameter (any form a send accepts) as E.164; 400 naming ``field``."""
    e164 = to_e164(raw.strip(), region) if raw else None
    if e164 is None:
        raise InvalidInput(
            f"{field} is not a valid mobile number; write it as in a send, e.g. 0701234567 or "
            "+254701234567.",
            field=field,
        )
    return e164


def short_code_filter(raw: str, field: str = "to") -> str:
    """A short code or long number parameter (the ``[[inbound]]`` rule: 3-15 digits, a leading
    + allowed) as the digits stored; 400 naming ``field``."""
    digits = short_code(raw.strip())
    if digits is None:
        raise InvalidInput(
            f"{field} is not a short code or number: write 3 to 15 digits (a leading + "
            "allowed), e.g. 22141 or +254709123456.",
            field=field,
        )
    return digits


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
            "undelivered, expired, rejected, failed or cancelled) or `all` (also `submitted`, "
            "when the SMSC takes the message). Default: the account's choice, else `final`."
        ),
        example="final",
    )
    reference = text(
        "reference",
        max_length=REFERENCE_MAX,
        description="Your own id for this request, echoed back.",
    )
    send_at = Moment(
        "send_at",
        f"Send later: an ISO 8601 date and time with its offset, in the future and at most "
        f"{SEND_AT_MAX_DAYS} days ahead. The request is charged now; its messages stay "
        "`scheduled` (cancellable with DELETE) until then and are released within about a "
        "second of it. Default: send at once.",
    )
    validity = Minutes(
        "validity",
        "validity must be a whole number of minutes.",
        "Minutes the bridge and the SMSC may try to deliver each message, counted from "
        "send_at (or now): not submitted by then, it is `expired` and refunded; the SMSC gets "
        "the same end as the submit_sm validity_period. From 1 to the operator's maximum "
        "(BRIDGE_MAX_VALIDITY_MINUTES, 1440 by default). Default: BRIDGE_VALIDITY_SECONDS.",
    )
    api_key = text("api_key", description="The API key, if not sent as the X-API-Key header.")


class ListMessagesParams(ListParams):
    """Parameters of ``GET /api/v2/sms``: filters (all given ones must hold), page size, cursor."""

    batch_id = text(
        "batch_id",
        also=(validate.Regexp(_ID, error=_ID_ERROR.format(name="batch_id")),),
        description="Only the messages of this send request (its `batch_id`).",
    )
    reference = text(
        "reference",
        max_length=REFERENCE_MAX,
        description="Only the messages sent with this `reference` (exact match).",
    )
    state = fields.String(
        validate=validate.OneOf(
            [state.value for state in MessageState],
            error="state must be one of " + ", ".join(MessageState) + ".",
        ),
        error_messages={"invalid": "state must be text.", "null": "state must not be null."},
        metadata={"description": "Only the messages in this state."},
    )
    number = text(
        "number",
        max_length=64,
        description="Only the messages to this number, in any form the send accepts "
        "(`0701234567`, `+254701234567`).",
        example="+254701234567",
    )
    since = Moment("since", "Only messages accepted at or after this time.")
    until = Moment("until", "Only messages accepted before this time.")
    limit = Limit()
    cursor = text(
        "cursor",
        max_length=120,
        description="The `next_cursor` of the previous page, unchanged; leave it out for the "
        "newest messages.",
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
    state = fields.String(
        metadata={"description": "The message's state, when it cannot be cancelled (409)."}
    )


class MessageAnswer(_Answer):
    number = fields.String(required=True, metadata={"description": "E.164, e.g. +254701234567."})
    message_id = fields.String(required=True)
    status = fields.String(
        required=True,
        metadata={
            "description": "`accepted`, or `scheduled` for a send with send_at.",
            "example": MessageState.ACCEPTED.value,
        },
    )
    parts = fields.Integer(required=True, metadata={"description": "SMS parts of this message."})
    cost = money("Price of this message.")
    status_url = fields.String(
        required=True,
        metadata={
            "description": "Where this message's state is: GET it with the API key. A path "
            "relative to the address the API is reached at.",
            "example": "/api/v2/sms/01HV5Y0Z8X7W6V5T4S3R2Q1P0N",
        },
    )


class RefusedAnswer(_Answer):
    number = fields.String(required=True, metadata={"example": "+254701234567"})
    reason = fields.String(required=True, metadata={"example": "opted out"})


class SendAnswer(_Answer):
    status = fields.String(required=True, metadata={"example": MessageState.ACCEPTED.value})
    batch_id = fields.String(required=True)
    count = fields.Integer(required=True, metadata={"description": "Distinct recipients."})
    parts = fields.Integer(required=True, metadata={"description": "SMS parts in all."})
    cost = money("Charged for the whole request.")
    currency = fields.String(required=True, metadata={"example": "KES"})
    balance = money("Balance after the charge.")
    reference = fields.String(allow_none=True, metadata={"description": "Your reference, echoed."})
    send_at = fields.String(
        metadata={
            "format": "date-time",
            "description": "A scheduled send's time, UTC (only when send_at was given; its "
            "messages are then `scheduled`).",
        }
    )
    messages = fields.List(fields.Nested(MessageAnswer), required=True)
    refused = fields.List(
        fields.Nested(RefusedAnswer),
        metadata={
            "description": "Numbers left out, not sent and not charged: each opted out of this "
            "account's messages (an inbound STOP, or POST /api/v2/optouts). Absent when none "
            "was; when every number is refused the answer is a 400 with this list."
        },
    )


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
