"""The webhook event as it travels on the ``sb:webhooks`` stream, and its codec.

The producer (state changes, inbound messages) XADDs ``encode_event(...)``; the sender reads
entries with :func:`decode_event`. ``body`` is the exact JSON text that is POSTed and signed, so
a retry sends the same bytes. ``attempt`` and ``first_at`` are the sender's own bookkeeping:
absent on a fresh event, carried when a due retry is put back on the stream.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

KINDS = ("message", "inbound")
_REQUIRED = ("id", "account_id", "url", "kind", "body")


class EventFormatError(ValueError):
    """A stream entry that is not a webhook event; the sender dead-letters it, never drops it."""


@dataclass(frozen=True)
class WebhookEvent:
    id: str  # stable event id, sent as webhook-id: the same for every attempt and duplicate
    account_id: int
    url: str  # the callback URL, checked against the SSRF rules at every attempt
    kind: str  # "message" (a state change) or "inbound" (an MO message)
    body: str  # the exact JSON text to POST
    message_id: str = ""  # whose attempt list records the attempts; "" = none kept
    attempt: int = 0  # attempts made so far (0 on a fresh event)
    first_at: int = 0  # ms since the epoch of the first enqueue; 0 = the stream entry's time


def encode_event(
    id: str,
    account_id: int,
    url: str,
    kind: str,
    body: str,
    message_id: str = "",
    *,
    attempt: int = 0,
    first_at: int = 0,
) -> dict[str, str]:
    """The stream entry fields of one event (XADD them as they are)."""
    if kind not in KINDS:
        raise EventFormatError(f"webhook kind must be one of {', '.join(KINDS)}, got {kind!r}")
    if not id or not url:
        raise EventFormatError("a webhook event needs an id and a url")
    fields = {
        "id": id,
        "account_id": str(int(account_id)),
        "url": url,
        "kind": kind,
        "body": body,
        "message_id": message_id or "",
    }
    if attempt:
        fields["attempt"] = str(int(attempt))
    if first_at:
        fields["first_at"] = str(int(first_at))
    return fields


def event_fields(event: WebhookEvent) -> dict[str, str]:
    """The stream fields of an event, bookkeeping included (a retry put back on the stream)."""
    return encode_event(
        event.id,
        event.account_id,
        event.url,
        event.kind,
        event.body,
        event.message_id,
        attempt=event.attempt,
        first_at=event.first_at,
    )


def decode_event(fields: Mapping[str | bytes, str | bytes]) -> WebhookEvent:
    """The event of one stream entry (bytes or str fields); EventFormatError if it is not one."""
    f = {text(k): text(v) for k, v in fields.items()}
    missing = [name for name in _REQUIRED if not f.get(name)]
    if missing:
        raise EventFormatError(f"webhook entry lacks {', '.join(missing)}")
    if f["kind"] not in KINDS:
        raise EventFormatError(f"webhook entry has unknown kind {f['kind']!r}")
    try:
        return WebhookEvent(
            id=f["id"],
            account_id=int(f["account_id"]),
            url=f["url"],
            kind=f["kind"],
            body=f["body"],
            message_id=f.get("message_id", ""),
            attempt=int(f.get("attempt") or 0),
            first_at=int(f.get("first_at") or 0),
        )
    except ValueError as exc:
        raise EventFormatError(f"webhook entry has a bad number: {exc}") from None


def text(value: Any) -> str:
    """A Redis reply (bytes, or str from a decoding client) as text; bytes that are not UTF-8
    survive as surrogates, as the event's fields were written."""
    return value.decode("utf-8", "surrogateescape") if isinstance(value, bytes) else str(value)
