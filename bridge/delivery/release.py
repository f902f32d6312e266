"""The releaser: moves ``scheduled`` messages whose send_at has come onto the outbound stream.

It runs in every worker process; a Redis lock (``redis_keys.RELEASER_LOCK``) lets one at a time
release. Each pass (every ``poll`` seconds):

1. if the schedule set was never built on this Redis (``SCHEDULE_BUILT`` missing: a fresh or
   emptied Redis), rebuild it from the database, the truth (every ``scheduled`` row by send_at);
2. take the due ids from the set (score <= now) in batches of ``batch``; every
   ``scan_interval`` seconds also ask the database for due ``scheduled`` rows the set lacks (a
   ZADD lost to a Redis error at accept time);
3. per batch: one conditional ``UPDATE ... SET state = 'queued' WHERE state = 'scheduled'
   RETURNING`` (a message cancelled or released meanwhile is skipped: exactly one of a cancel
   and a release wins) with its ``accepted`` event, commit; XADD the released messages; ZREM.

A crash or a Redis failure between the commit and the XADD leaves released messages ``queued``
with no stream entry: the reconciler (bridge.delivery.reconcile) enqueues them again after its
grace, so nothing scheduled is lost or sent twice (the worker claims each message once). A
database that is down leaves them ``scheduled`` and in the set, for the next pass.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

from redis.exceptions import RedisError
from sqlalchemy import Row, select, text, update
from sqlalchemy.exc import SQLAlchemyError

from bridge.redis import keys as redis_keys
from bridge.redis import lock, outbox, schedule
from bridge.redis.pinned import PinnedConnections
from bridge.storage.db import Database
from bridge.storage.models import OUTBOUND_COLUMNS, message_events, messages
from bridge.storage.states import MessageState

log = logging.getLogger(__name__)

POLL_SECONDS = 0.1  # how often the releaser looks at the schedule set
SCAN_SECONDS = 5.0  # how often it also asks the database for due rows the set lacks
BATCH = 2000  # messages per release transaction
MAX_BATCHES = 50  # batches per pass (then the lock is given up and taken again)
_CHUNK = 1000  # ids per IN (...)
# literal, so SQLite and PostgreSQL both use the partial index ix_messages_scheduled_send_at
_SCHEDULED = text("messages.state = 'scheduled'")
RELEASED_DETAIL = "released: send_at reached"


def _chunks(items: list, size: int = _CHUNK) -> Iterable[list]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class Releaser:
    """Releases due scheduled messages; ``start()`` runs it as a daemon thread."""

    def __init__(
        self,
        db: Database,
        redis,
        *,
        clock: Callable[[], float] = time.time,
        poll: float = POLL_SECONDS,
        scan_interval: float = SCAN_SECONDS,
        batch: int = BATCH,
    ) -> None:
        self._db, self._redis, self._clock = db, redis, clock
        self._pinned = PinnedConnections(redis)  # the XADDs: ~30 us a command, not ~42
        self._poll, self._scan_interval, self._batch = poll, scan_interval, batch
        self._last_scan = -1e18
        self._thread = lock.PeriodicPass(
            "releaser", self.release_once, poll, (RedisError, SQLAlchemyError)
        )
        self.released = 0  # messages this releaser released (stats, tests)

    # --- one pass -------------------------------------------------------------------------
    def release_once(self) -> int:
        """One bounded pass under the lock; returns how many messages it released."""
        ttl_ms = int(max(30.0, self._poll * 100) * 1000)
        with lock.held(self._redis, redis_keys.RELEASER_LOCK, ttl_ms) as got:
            if not got:
                return 0
            total = 0
            if not schedule.is_built(self._redis):  # what is due now first, then the rest
                self._last_scan = self._clock()
                total += self.release(self._due_in_database(self._last_scan))
                self.rebuild()
            for _ in range(MAX_BATCHES):
                now = self._clock()
                ids = schedule.due(self._redis, now, self._batch)
                if not ids and now - self._last_scan >= self._scan_interval:
                    self._last_scan = now
                    ids = self._due_in_database(now)
                if not ids:
                    break
                total += self.release(ids)
                if len(ids) < self._batch:
                    break
            return total

    def rebuild(self) -> int:
        """Fill the schedule set from the database (every ``scheduled`` row); returns how many."""
        started = self._clock()
        with self._db.connect() as conn:
            rows = conn.execute(select(messages.c.id, messages.c.send_at).where(_SCHEDULED)).all()
        schedule.add(self._redis, [(r.id, r.send_at.timestamp()) for r in rows])
        schedule.mark_built(self._redis, started)
        log.info(
            "releaser: schedule rebuilt from the database (%d scheduled message(s))", len(rows)
        )
        return len(rows)

    def _due_in_database(self, now: float) -> list[str]:
        with self._db.connect() as conn:
            return list(
                conn.execute(
                    select(messages.c.id)
                    .where(_SCHEDULED, messages.c.send_at <= datetime.fromtimestamp(now, UTC))
                    .order_by(messages.c.send_at)
                    .limit(self._batch)
                ).scalars()
            )

    def release(self, ids: list[str]) -> int:
        """Release these ids (those still ``scheduled``); returns how many were released."""
        if not ids:
            return 0
        now = datetime.fromtimestamp(self._clock(), UTC)
        rows: list[Row[Any]] = []
        with self._db.begin() as conn:
            for chunk in _chunks(ids):
                rows += conn.execute(
                    update(messages)
                    .where(messages.c.id.in_(chunk), messages.c.state == MessageState.SCHEDULED)
                    .values(state=MessageState.QUEUED, queued_at=now, updated_at=now)
                    .returning(*OUTBOUND_COLUMNS)
                ).all()
            if rows:
                conn.execute(
                    message_events.insert(),
                    [
                        {
                            "message_id": r.id,
                            "state": MessageState.ACCEPTED,
                            "at": now,
                            "detail": RELEASED_DETAIL,
                        }
                        for r in rows
                    ],
                )
        if rows:
            self._enqueue(rows)
        schedule.remove(self._redis, ids)
        self.released += len(rows)
        return len(rows)

    def _enqueue(self, rows) -> None:
        try:
            outbox.enqueue(self._pinned, [outbox.OutboundMessage.from_row(r) for r in rows])
        except RedisError as exc:
            log.warning(
                "releaser: %d message(s) released but not enqueued (Redis: %s); the "
                "reconciler enqueues them after its grace",
                len(rows),
                exc,
            )

    # --- the thread -----------------------------------------------------------------------
    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._thread.stop(timeout)
