"""Dead-lettered webhook events (the ``sb:webhooks:dead`` stream): finding them and re-sending.

A re-send puts the event back on ``sb:webhooks`` with its id, body and attempt count, but no
``first_at``, so its retry period is counted afresh from the new stream entry; the current
secret signs it, as every attempt. The XADD and the XDEL of its dead letters are one Lua script
per event: a crash leaves each event either dead or queued, never both, never neither. An event
dead-lettered more than once (a duplicate of the producer's) is re-sent once and all its dead
letters go. Finding is a scan in pages keeping only entry ids, so 100,000 letters stay cheap.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from typing import Any

import redis as redis_lib

from bridge.redis import keys
from bridge.webhooks.events import (
    EventFormatError,
    WebhookEvent,
    decode_event,
    event_fields,
    text,
)

PAGE = 1_000  # dead letters read per XRANGE while finding

# Re-send one event: XDEL its dead letters from KEYS[1] and, if any was still there, XADD the
# event to KEYS[2]. ARGV[1] = n, ARGV[2 .. n+1] = the dead entry ids, the rest = the stream
# entry's fields and values. Returns the new stream entry id, or false when every dead letter
# was already gone (re-sent meanwhile by another command: sending it again would double it).
RESEND = """
local n = tonumber(ARGV[1])
local ids, fields = {}, {}
for i = 2, n + 1 do ids[#ids + 1] = ARGV[i] end
for i = n + 2, #ARGV do fields[#fields + 1] = ARGV[i] end
if redis.call('XDEL', KEYS[1], unpack(ids)) == 0 then return false end
return redis.call('XADD', KEYS[2], '*', unpack(fields))
"""


@dataclass(frozen=True)
class Found:
    """One event's dead letters (oldest first); the newest carries what is re-sent."""

    event_id: str
    entry_ids: tuple[str, ...]


@dataclass(frozen=True)
class Letter:
    """A found event read back: its newest dead letter's fields, and the event they make
    (None, with ``problem``, when they are not a webhook event: left where it is)."""

    found: Found
    fields: dict[str, str]
    event: WebhookEvent | None
    problem: str = ""


def find(redis: redis_lib.Redis, match: Callable[[dict[str, str]], bool]) -> list[Found]:
    """Every event whose dead letters' fields ``match``, in the order they first died."""
    by_event: dict[str, list[str]] = {}
    for entry_id, fields in _scan(redis):
        if match(fields):
            by_event.setdefault(fields.get("id", "") or entry_id, []).append(entry_id)
    return [Found(event_id, tuple(ids)) for event_id, ids in by_event.items()]


def by_ids(event_ids: Iterable[str]) -> Callable[[dict[str, str]], bool]:
    wanted = set(event_ids)
    return lambda fields: fields.get("id", "") in wanted


def by_account(account_id: int) -> Callable[[dict[str, str]], bool]:
    return lambda fields: fields.get("account_id", "") == str(account_id)


def everything(fields: dict[str, str]) -> bool:
    return True


def read(redis: redis_lib.Redis, found: Found) -> Letter | None:
    """The found event's newest dead letter, decoded; None when it is gone meanwhile."""
    newest = found.entry_ids[-1]
    rows: Any = redis.xrange(keys.webhooks_dead_key(), min=newest, max=newest)
    if not rows:
        return None
    raw = rows[0][1]
    fields = {text(k): text(v) for k, v in raw.items()}
    try:
        return Letter(found, fields, decode_event(raw))
    except EventFormatError as exc:
        return Letter(found, fields, None, f"not a webhook event ({exc})")


def resend_fields(event: WebhookEvent) -> dict[str, str]:
    """The stream fields of a re-sent event: same id, body and attempts; no first_at, so the
    retry period starts at the new entry."""
    return event_fields(replace(event, first_at=0))


def resend(redis: redis_lib.Redis, letter: Letter) -> str | None:
    """Re-send one event in one atomic step; the new stream entry id, or None when its dead
    letters were already gone (nothing sent)."""
    if letter.event is None:
        raise ValueError(f"dead letter {letter.found.entry_ids[-1]}: {letter.problem}")
    ids = letter.found.entry_ids
    flat = [item for pair in resend_fields(letter.event).items() for item in pair]
    new_id = redis.eval(
        RESEND, 2, keys.webhooks_dead_key(), keys.webhooks_stream_key(), len(ids), *ids, *flat
    )
    return text(new_id) if new_id else None


def _scan(redis: redis_lib.Redis) -> Iterator[tuple[str, dict[str, str]]]:
    """Every dead letter, oldest first, read PAGE at a time (only what is yielded is kept)."""
    start = "-"
    while True:
        rows: Any = redis.xrange(keys.webhooks_dead_key(), min=start, count=PAGE)
        for entry_id, fields in rows:
            yield text(entry_id), {text(k): text(v) for k, v in fields.items()}
        if len(rows) < PAGE:
            return
        start = "(" + text(rows[-1][0])  # exclusive range start: Redis 6.2 and newer
