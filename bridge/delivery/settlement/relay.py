"""The webhook outbox relay: committed ``webhook_outbox`` rows -> the ``sb:webhooks`` stream.

At-least-once, never from the request path:

1. Settlement inserts an outbox row in the same transaction as the state change it reports.
2. After the commit, :meth:`Relay.publish` XADDs the batch's events (one pipeline) and keeps
   their ids as *relayed*; the next settlement transaction deletes those rows as part of its
   own work (no extra commit on the hot path), or :meth:`Relay.flush` does when idle.
3. :meth:`Relay.sweep` (a periodic pass, one worker at a time under a Redis lock) XADDs the
   rows older than a grace period and deletes them: what a crash between the commit and the
   XADD (or Redis being down then) left behind.

A crash after the XADD and before the delete sends the event twice, with the same event id
and body: receivers deduplicate on ``webhook-id``. Nothing is lost: a row goes only after its
XADD succeeded.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from datetime import timedelta

from redis.exceptions import RedisError
from sqlalchemy import Connection, delete, select

from bridge.delivery.settlement.notify import OutboxEvent
from bridge.delivery.settlement.rules import utc
from bridge.redis import keys as redis_keys
from bridge.redis.lock import held
from bridge.storage.db import Database
from bridge.storage.models import webhook_outbox
from bridge.webhooks.events import encode_event

log = logging.getLogger(__name__)

_CHUNK = 2000  # ids per DELETE ... IN (...)
SWEEP_LIMIT = 2000  # rows per sweep statement; a sweep pass repeats while it finds full pages
SWEEP_LOCK_TTL_MS = 60_000


class Relay:
    """XADDs outbox events and remembers which rows may now be deleted (thread-safe)."""

    def __init__(self, db: Database, redis, *, clock: Callable[[], float] = time.time) -> None:
        self._db, self._redis, self._clock = db, redis, clock
        self._relayed: list[str] = []
        self._lock = threading.Lock()
        self.published = self.swept = 0  # events XADDed after a commit / by the sweep

    # --- after a commit ---------------------------------------------------------------------
    def publish(self, events: Sequence[OutboxEvent]) -> bool:
        """XADD the events; their rows are deleted later. False (logged) when Redis failed:
        the rows stay and the sweep relays them."""
        if not events:
            return True
        try:
            self._xadd(events)
        except RedisError as exc:
            log.warning(
                "could not enqueue %d webhook event(s) (%s); the outbox sweep relays them",
                len(events),
                exc,
            )
            return False
        self.published += len(events)
        with self._lock:
            self._relayed.extend(e.event_id for e in events)
        return True

    def _xadd(self, events: Iterable[OutboxEvent]) -> None:
        pipe = self._redis.pipeline(transaction=False)
        stream = redis_keys.webhooks_stream_key()
        for e in events:
            pipe.xadd(
                stream,
                encode_event(e.event_id, e.account_id, e.url, "message", e.body, e.message_id),
            )
        pipe.execute()

    # --- deleting relayed rows --------------------------------------------------------------
    def take_relayed(self) -> list[str]:
        """The ids XADDed and not yet deleted; the caller deletes them or :meth:`give_back`."""
        with self._lock:
            ids, self._relayed = self._relayed, []
        return ids

    def give_back(self, ids: list[str]) -> None:
        if ids:
            with self._lock:
                self._relayed[:0] = ids

    @staticmethod
    def delete(conn: Connection, ids: list[str]) -> None:
        """Delete these outbox rows inside the caller's transaction."""
        for start in range(0, len(ids), _CHUNK):
            chunk = ids[start : start + _CHUNK]
            conn.execute(delete(webhook_outbox).where(webhook_outbox.c.event_id.in_(chunk)))

    def flush(self) -> int:
        """Delete the relayed rows in a transaction of their own (idle time); how many."""
        ids = self.take_relayed()
        if not ids:
            return 0
        try:
            with self._db.begin() as conn:
                self.delete(conn, ids)
        except Exception:
            self.give_back(ids)
            raise
        return len(ids)

    # --- the sweep ----------------------------------------------------------------------------
    def sweep(self, grace_seconds: float) -> int:
        """Relay and delete the rows older than ``grace_seconds`` (under the sweep lock, so
        one worker at a time); how many were relayed."""
        self.flush()
        with held(self._redis, redis_keys.WEBHOOKS_OUTBOX_LOCK, SWEEP_LOCK_TTL_MS) as got:
            if not got:
                return 0
            total = 0
            while True:
                n = self._sweep_page(grace_seconds)
                total += n
                if n < SWEEP_LIMIT:
                    break
        if total:
            log.warning(
                "webhook outbox sweep relayed %d event(s) left behind (a crash or Redis outage "
                "after their commit); receivers may see some twice, with the same webhook-id",
                total,
            )
        self.swept += total
        return total

    def _sweep_page(self, grace_seconds: float) -> int:
        cutoff = utc(self._clock()) - timedelta(seconds=grace_seconds)
        with self._db.connect() as conn:
            rows = conn.execute(
                select(webhook_outbox)
                .where(webhook_outbox.c.created_at < cutoff)
                .order_by(webhook_outbox.c.created_at)
                .limit(SWEEP_LIMIT)
            ).all()
        if not rows:
            return 0
        events = [
            OutboxEvent(r.event_id, r.message_id, r.account_id, r.url, r.body, r.created_at)
            for r in rows
        ]
        self._xadd(events)  # a RedisError ends the pass; the rows stay for the next one
        with self._db.begin() as conn:
            self.delete(conn, [e.event_id for e in events])
        return len(events)
