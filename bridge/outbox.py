"""The outbound stream: accepted messages, written to Redis after their transaction commits.

Each stream entry carries everything the worker needs to submit the message without reading the
database (:class:`OutboundMessage`). Entries are added with one pipelined batch of XADDs (one
round trip per request, not per recipient) and no MAXLEN: trimming could drop unread entries.

Delivery is at-least-once: the accept path or the sweeper may crash between XADD and marking the
message ``queued``, and the sweeper then adds it again. The worker therefore moves a message to
``submitted`` only with a conditional UPDATE (``WHERE state IN ('accepted', 'queued')``) and drops
an entry whose message has already moved on.
"""
from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Iterable, Mapping

from bridge import redis_keys

ENTRY_VERSION = "1"
_PIPELINE_CHUNK = 2000  # XADDs per pipeline execute: bounds client memory for huge batches


@dataclass(frozen=True)
class OutboundMessage:
    """One message for the worker to submit."""

    message_id: str
    batch_id: str
    account_id: int
    destination: str  # E.164 with '+'
    sender_id: str
    text: str
    encoding: str  # "gsm" | "ucs2" (smpp.encoding names)
    parts: int
    price: Decimal
    expires_at: float  # epoch seconds; not submitted after this (expired, refunded)


def encode_entry(msg: OutboundMessage) -> dict[str, str]:
    """Stream fields for a message (all strings; Redis stores bytes)."""
    return {
        "v": ENTRY_VERSION,
        "message_id": msg.message_id,
        "batch_id": msg.batch_id,
        "account_id": str(msg.account_id),
        "destination": msg.destination,
        "sender_id": msg.sender_id,
        "text": msg.text,
        "encoding": msg.encoding,
        "parts": str(msg.parts),
        "price": str(msg.price),
        "expires_at": repr(float(msg.expires_at)),
    }


def _text(value: bytes | str) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else value


def decode_entry(fields: Mapping[bytes | str, bytes | str]) -> OutboundMessage:
    """The message in a stream entry as XREADGROUP returns it (bytes or decoded strings).

    Raises ValueError for an entry that is not a version-1 outbound message.
    """
    f = {_text(k): _text(v) for k, v in fields.items()}
    if f.get("v") != ENTRY_VERSION:
        raise ValueError(f"unknown outbound entry version {f.get('v')!r}")
    try:
        return OutboundMessage(
            message_id=f["message_id"], batch_id=f["batch_id"], account_id=int(f["account_id"]),
            destination=f["destination"], sender_id=f["sender_id"], text=f["text"],
            encoding=f["encoding"], parts=int(f["parts"]), price=Decimal(f["price"]),
            expires_at=float(f["expires_at"]))
    except KeyError as exc:
        raise ValueError(f"outbound entry lacks field {exc.args[0]!r}") from None


def enqueue(redis, entries: Iterable[OutboundMessage]) -> int:
    """XADD every message to the outbound stream, pipelined; returns how many were added.

    Raises redis.RedisError when Redis is unreachable (callers decide: the accept path logs and
    leaves the messages to the sweeper).
    """
    added = 0
    pipe = redis.pipeline(transaction=False)
    pending = 0
    for msg in entries:
        pipe.xadd(redis_keys.OUTBOUND_STREAM, encode_entry(msg))
        pending += 1
        if pending == _PIPELINE_CHUNK:
            pipe.execute()
            added += pending
            pending = 0
    if pending:
        pipe.execute()
        added += pending
    return added
