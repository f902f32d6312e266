"""The outbound stream: accepted messages, written to Redis after their transaction commits.

Each stream entry carries everything the worker needs to submit the message without reading the
database (:class:`OutboundMessage`). Entries are added with one pipelined batch of XADDs (one
round trip per request, not per recipient) and no MAXLEN: trimming could drop unread entries.

Delivery is at-least-once: the accept path or the sweeper may crash between XADD and marking the
message ``queued``, and the sweeper then adds it again. The worker therefore moves a message to
``submitted`` only with a conditional UPDATE (``WHERE state IN ('accepted', 'queued')``) and drops
an entry whose message has already moved on.

An entry written by the reconciler (bridge.delivery.reconcile) for a ``queued`` message whose
entry Redis lost carries ``r=1`` (a *recovery entry*): the worker claims it like an entry taken
over from a dead consumer (any ``attempts``; flagged possible_duplicate when a worker had claimed
the message before), since a fresh entry only claims messages nobody claimed.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal

from bridge.redis import keys as redis_keys
from bridge.redis.pinned import PinnedConnections

ENTRY_VERSION = "1"
RECOVERY_FIELD = "r"  # present ("1") on the reconciler's entries: claim as recovered
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
    encoding: str  # "gsm" | "ucs2" (smpp.codec names)
    parts: int
    price: Decimal
    expires_at: float  # epoch seconds; not submitted after this (expired, refunded)

    @classmethod
    def from_row(cls, r) -> OutboundMessage:
        """From a database row of bridge.storage.models.OUTBOUND_COLUMNS (id, ..., expires_at
        as an aware datetime)."""
        return cls(
            r.id,
            r.batch_id,
            r.account_id,
            r.destination,
            r.sender_id,
            r.text,
            r.encoding,
            r.parts,
            r.price,
            r.expires_at.timestamp(),
        )


def encode_entry(msg: OutboundMessage, *, recovery: bool = False) -> dict[str, str]:
    """Stream fields for a message: a version and the message as one JSON object (and
    ``r=1`` for a recovery entry, see the module docstring).

    One field rather than one per attribute: redis-py packs every field of every XADD in
    Python, and for a 10,000-recipient request that packing, not Redis, was the cost.
    """
    fields = {
        "v": ENTRY_VERSION,
        "m": json.dumps(
            {
                "message_id": msg.message_id,
                "batch_id": msg.batch_id,
                "account_id": msg.account_id,
                "destination": msg.destination,
                "sender_id": msg.sender_id,
                "text": msg.text,
                "encoding": msg.encoding,
                "parts": msg.parts,
                "price": str(msg.price),
                "expires_at": float(msg.expires_at),
            },
            ensure_ascii=False,
            separators=(",", ":"),
        ),
    }
    if recovery:
        fields[RECOVERY_FIELD] = "1"
    return fields


# a stream entry's fields as redis-py returns them: bytes, or str with decode_responses=True
EntryFields = Mapping[bytes, bytes] | Mapping[str, str]


def _text(value: bytes | str) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else value


def is_recovery_entry(fields: EntryFields) -> bool:
    """True for an entry the reconciler wrote (claim it as recovered)."""
    return any(_text(k) == RECOVERY_FIELD for k in fields)


def entry_message_id(fields: EntryFields) -> str | None:
    """Just the message id of an entry (None when it is not a readable version-1 entry)."""
    try:
        return decode_entry(fields).message_id
    except (ValueError, ArithmeticError):
        return None


def decode_entry(fields: EntryFields) -> OutboundMessage:
    """The message in a stream entry as XREADGROUP returns it (bytes or decoded strings).

    Raises ValueError for an entry that is not a version-1 outbound message.
    """
    f = {_text(k): _text(v) for k, v in fields.items()}
    if f.get("v") != ENTRY_VERSION:
        raise ValueError(f"unknown outbound entry version {f.get('v')!r}")
    try:
        m = json.loads(f["m"])
        return OutboundMessage(
            message_id=m["message_id"],
            batch_id=m["batch_id"],
            account_id=int(m["account_id"]),
            destination=m["destination"],
            sender_id=m["sender_id"],
            text=m["text"],
            encoding=m["encoding"],
            parts=int(m["parts"]),
            price=Decimal(m["price"]),
            expires_at=float(m["expires_at"]),
        )
    except KeyError as exc:
        raise ValueError(f"outbound entry lacks field {exc.args[0]!r}") from None
    except (TypeError, json.JSONDecodeError) as exc:
        raise ValueError(f"outbound entry is not a message: {exc}") from None


def enqueue(redis, entries: Sequence[OutboundMessage], *, recovery: bool = False) -> int:
    """XADD every message to the outbound stream, pipelined; returns how many were added.
    ``recovery=True`` writes recovery entries (the reconciler's).

    ``redis`` is a redis.Redis or, on the accept path, a PinnedConnections (one write and one
    read per chunk on the calling thread's own connection, bridge.redis.pinned). Raises
    redis.RedisError when Redis is unreachable (callers decide: the accept path logs and leaves
    the messages to the sweeper).
    """
    added = 0
    for start in range(0, len(entries), _PIPELINE_CHUNK):
        chunk = entries[start : start + _PIPELINE_CHUNK]
        commands = [_xadd(msg, recovery) for msg in chunk]
        pipelined(redis, commands)
        added += len(commands)
    return added


def pipelined(redis, commands: Sequence[Sequence]) -> None:
    """Send raw commands in one round trip (no MULTI) on a redis.Redis or a
    PinnedConnections; raises redis.RedisError when Redis is unreachable."""
    if isinstance(redis, PinnedConnections):
        redis.execute_many(commands)
        return
    pipe = redis.pipeline(transaction=False)
    for command in commands:
        pipe.execute_command(*command)
    pipe.execute()


def _xadd(msg: OutboundMessage, recovery: bool = False) -> tuple[str, ...]:
    fields = encode_entry(msg, recovery=recovery)
    return ("XADD", redis_keys.OUTBOUND_STREAM, "*", *(x for kv in fields.items() for x in kv))


def scan_message_ids(redis, wanted: set[str], *, count: int = 1000) -> set[str]:
    """Which of ``wanted`` have an entry in the outbound stream: XRANGE from the oldest entry in
    chunks of ``count``, stopping as soon as all are found (entries are roughly in message
    order, so old messages are found early). Memory: one chunk plus ``wanted``. Pending
    entries are stream entries too (acks delete both); a pending id whose entry is gone carries
    no message and is not counted."""
    found: set[str] = set()
    start = "-"
    while len(found) < len(wanted):
        rows = redis.xrange(redis_keys.OUTBOUND_STREAM, start, "+", count=count)
        for _entry_id, fields in rows:
            mid = entry_message_id(fields)
            if mid in wanted:
                found.add(mid)
        if len(rows) < count:
            break
        start = "(" + _text(rows[-1][0])
    return found
