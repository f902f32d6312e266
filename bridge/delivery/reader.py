"""The worker's side of the outbound stream: consumer group, reads, take-overs and acks.

Entries are read with XREADGROUP through the group ``redis_keys.OUTBOUND_GROUP``; an entry
stays pending (in the group's PEL) until its message's outcome is stored, then it is XACKed
and XDELed in one pipeline. Entries a dead consumer left pending are taken over with XAUTOCLAIM
once idle longer than ``claim_idle_seconds``; entries this worker still holds are "touched"
(XCLAIM to itself, JUSTID) every third of that, so a slow retry is never mistaken for a dead
worker's. Every call is one round trip; Redis errors propagate (the caller backs off).
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import redis as redis_lib
from redis.typing import StreamIdT

from bridge.redis import keys as redis_keys
from bridge.redis.outbox import OutboundMessage, decode_entry, is_recovery_entry

log = logging.getLogger(__name__)

_ACK_CHUNK = 2000  # ids per XACK/XDEL command


def consumer_name() -> str:
    """``host-pid-random4``: unique per process, readable in XINFO CONSUMERS."""
    return f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(2)}"


@dataclass(frozen=True)
class Entry:
    """One stream entry: its id, and the message it carries (None when unreadable: ``error``).
    ``recovery``: written by the reconciler for a message whose entry was lost (claim it as
    recovered, like a dead consumer's)."""

    entry_id: str
    message: OutboundMessage | None
    error: str | None = None
    recovery: bool = False


@dataclass(frozen=True)
class StreamInfo:
    """What `smpp-bridge status` shows about the stream."""

    length: int  # entries in the stream (pending ones included; acked ones are deleted)
    pending: int  # read by some worker, outcome not stored yet
    lag: int | None  # entries never read by the group (None: Redis too old to say)
    consumers: list[dict[str, Any]]  # name, pending, idle (ms)


class StreamReader:
    """Group reads and acks for one consumer. Thread-safe (redis-py pools connections)."""

    def __init__(
        self,
        redis: redis_lib.Redis,
        consumer: str | None = None,
        *,
        stream: str = redis_keys.OUTBOUND_STREAM,
        group: str = redis_keys.OUTBOUND_GROUP,
    ) -> None:
        self.redis = redis
        self.consumer = consumer or consumer_name()
        self.stream, self.group = stream, group
        self._cursor = "0-0"  # XAUTOCLAIM scan position, kept between calls

    def ensure_group(self) -> None:
        """Create the group (and the stream) when missing; reading starts at the first entry."""
        try:
            self.redis.xgroup_create(self.stream, self.group, id="0", mkstream=True)
            log.info("created consumer group %s on %s", self.group, self.stream)
        except redis_lib.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    def read(self, count: int, block_ms: int | None) -> list[Entry]:
        """Up to ``count`` new entries, waiting at most ``block_ms`` (None: not at all);
        recreates a lost group (a Redis restart without persistence) and returns none."""
        try:
            reply: Any = self.redis.xreadgroup(  # redis-py types replies Awaitable | Any
                self.group, self.consumer, {self.stream: ">"}, count=count, block=block_ms
            )
        except redis_lib.ResponseError as exc:
            if "NOGROUP" not in str(exc):
                raise
            log.warning(
                "consumer group %s vanished (Redis restarted empty?); recreating it", self.group
            )
            self.ensure_group()
            return []
        return [_entry(eid, fields) for _stream, rows in reply or () for eid, fields in rows]

    def take_over(self, min_idle_seconds: float, count: int) -> list[Entry]:
        """Entries idle longer than ``min_idle_seconds`` (any consumer's, a dead one's), now
        ours: up to ``count`` per call, continuing the scan where the last call stopped."""
        return [_entry(eid, fields) for eid, fields in self.take_over_raw(min_idle_seconds, count)]

    def take_over_raw(self, min_idle_seconds: float, count: int) -> list[tuple[str, Any]]:
        """:meth:`take_over` as (entry id, fields) pairs, for streams of other entries."""
        try:
            reply = self.redis.xautoclaim(
                self.stream,
                self.group,
                self.consumer,
                int(min_idle_seconds * 1000),
                self._cursor,
                count=count,
            )
        except redis_lib.ResponseError as exc:
            if "NOGROUP" not in str(exc):
                raise
            self.ensure_group()
            return []
        self._cursor = _text(reply[0])
        entries = []
        gone = []
        for row in reply[1]:
            if row is None or row[1] is None:  # Redis 6.2: deleted from the stream, still pending
                if row is not None:
                    gone.append(_text(row[0]))
                continue
            entries.append((_text(row[0]), row[1]))
        if gone:
            self.redis.xack(self.stream, self.group, *gone)
        return entries

    @property
    def scan_complete(self) -> bool:
        """True when the last take_over() call reached the end of the pending list."""
        return self._cursor == "0-0"

    def touch(self, entry_ids: Iterable[str]) -> int:
        """Reset the idle time of entries we hold (XCLAIM to ourselves, JUSTID)."""
        ids: list[StreamIdT] = list(entry_ids)
        pipe = self.redis.pipeline(transaction=False)
        for i in range(0, len(ids), _ACK_CHUNK):
            pipe.xclaim(
                self.stream, self.group, self.consumer, 0, ids[i : i + _ACK_CHUNK], justid=True
            )
        return sum(len(r) for r in pipe.execute()) if ids else 0

    def ack(self, entry_ids: Iterable[str]) -> None:
        """XACK and XDEL entries whose outcome is stored (one pipeline)."""
        ids = list(entry_ids)
        if not ids:
            return
        pipe = self.redis.pipeline(transaction=False)
        for i in range(0, len(ids), _ACK_CHUNK):
            chunk = ids[i : i + _ACK_CHUNK]
            pipe.xack(self.stream, self.group, *chunk)
            pipe.xdel(self.stream, *chunk)
        pipe.execute()

    def prune_consumers(self, min_idle_seconds: float) -> list[str]:
        """Forget consumers of earlier worker processes: idle that long and holding nothing
        (a consumer with pending entries is never deleted, or its entries would be lost)."""
        gone = []
        for c in self.redis.xinfo_consumers(self.stream, self.group):
            name = _text(c["name"])
            if (
                name != self.consumer
                and int(c["pending"]) == 0
                and int(c["idle"]) >= min_idle_seconds * 1000
            ):
                self.redis.xgroup_delconsumer(self.stream, self.group, name)
                gone.append(name)
        return gone

    def info(self) -> StreamInfo:
        return stream_info(self.redis, self.stream, self.group)


def stream_info(
    redis: redis_lib.Redis,
    stream: str = redis_keys.OUTBOUND_STREAM,
    group: str = redis_keys.OUTBOUND_GROUP,
) -> StreamInfo:
    """Length, pending count, lag and consumers of the outbound stream's group."""
    length = redis.xlen(stream)
    pending, lag, consumers = 0, None, []
    try:
        for g in redis.xinfo_groups(stream):
            if _text(g["name"]) == group:
                pending, lag = int(g["pending"]), g.get("lag")
        consumers = [
            {"name": _text(c["name"]), "pending": int(c["pending"]), "idle_ms": int(c["idle"])}
            for c in redis.xinfo_consumers(stream, group)
        ]
    except redis_lib.ResponseError as exc:  # no stream or no group yet
        log.debug("stream info: %s", exc)
    return StreamInfo(length, pending, None if lag is None else int(lag), consumers)


def _entry(entry_id: Any, fields: Any) -> Entry:
    eid = _text(entry_id)
    try:
        return Entry(eid, decode_entry(fields), recovery=is_recovery_entry(fields))
    except (ValueError, ArithmeticError) as exc:
        return Entry(eid, None, str(exc))


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
