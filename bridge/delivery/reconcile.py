"""The reconciler: every ``queued`` message is on the outbound stream, or is put back on it.

Redis runs ``appendfsync everysec``: a power loss can drop the last second of XADDs, among them
entries of messages the database already calls ``queued``. Nothing would read those again (the
sweeper re-enqueues only ``accepted``), so they would wait for their validity and be refunded
unsent. One worker at a time (a Redis lock, ``redis_keys.RECONCILER_LOCK``) therefore checks,
every ``reconcile_interval_seconds``, the ``queued`` messages untouched for
``reconcile_grace_seconds``: each must have a stream entry (read or not; a pending entry is a
stream entry until it is acked), or be scheduled (no ``send_at`` yet: :func:`no_schedule`).
The rest get a *recovery entry* (bridge.redis.outbox): the worker that reads it claims the
message whatever its ``attempts``, and flags it possible_duplicate when a worker had claimed
it before (it may have reached the SMSC); a message never claimed is not flagged.

The same search serves ``smpp-bridge audit`` (:func:`find_lost`, read-only), for ``accepted``
messages too. Memory is bounded: candidates in chunks of ``chunk`` rows (oldest first), the
stream read ``SCAN_COUNT`` entries at a time and only until every candidate is found.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Callable, Collection, Iterator
from datetime import UTC, datetime, timedelta

from redis.exceptions import RedisError
from sqlalchemy import and_, or_, select
from sqlalchemy.exc import SQLAlchemyError

from bridge.redis import keys as redis_keys
from bridge.redis import lock, outbox
from bridge.storage.db import Database
from bridge.storage.models import OUTBOUND_COLUMNS, messages
from bridge.storage.states import MessageState

log = logging.getLogger(__name__)

CHUNK = 5000  # candidate messages checked against the stream at once
MAX_CHUNKS = 10  # per reconciler pass: 50,000 queued messages older than the grace at most


def no_schedule(message_ids: Collection[str]) -> set[str]:
    """Which of these messages are scheduled for later (none: there is no ``send_at`` yet).
    The hook a scheduler fills in: a scheduled message needs no stream entry."""
    return set()


def find_lost(
    conn,
    redis,
    cutoff: datetime,
    *,
    states: Collection[str] = (MessageState.QUEUED,),
    chunk: int = CHUNK,
    max_chunks: int | None = None,
    scheduled: Callable[[Collection[str]], set[str]] = no_schedule,
) -> Iterator[list]:
    """Chunks of rows (OUTBOUND_COLUMNS + state, created_at) in ``states``, created and last
    changed before ``cutoff``, that have no entry in the outbound stream and are not scheduled.
    Raises RedisError / SQLAlchemyError (the caller decides)."""
    after = None  # keyset cursor (created_at, id): chunks never overlap
    for n in itertools.count():
        if max_chunks is not None and n >= max_chunks:
            return
        query = (
            select(*OUTBOUND_COLUMNS, messages.c.state, messages.c.created_at)
            .where(
                messages.c.state.in_(list(states)),
                messages.c.created_at < cutoff,
                messages.c.updated_at < cutoff,
            )
            .order_by(messages.c.created_at, messages.c.id)
            .limit(chunk)
        )
        if after is not None:
            query = query.where(
                or_(
                    messages.c.created_at > after[0],
                    and_(messages.c.created_at == after[0], messages.c.id > after[1]),
                )
            )
        rows = conn.execute(query).all()
        if not rows:
            return
        wanted = {r.id for r in rows}
        present = outbox.scan_message_ids(redis, wanted) | scheduled(wanted)
        lost = [r for r in rows if r.id not in present]
        if lost:
            yield lost
        if len(rows) < chunk:
            return
        after = (rows[-1].created_at, rows[-1].id)


class Reconciler:
    """Re-enqueues ``queued`` messages whose stream entry is gone (see the module docstring)."""

    def __init__(
        self,
        db: Database,
        redis,
        *,
        interval: float,
        grace: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._db, self._redis, self._clock = db, redis, clock
        self.interval, self.grace = interval, grace
        self.requeued = 0  # messages re-enqueued by this process, in all
        self._thread = lock.PeriodicPass(
            "worker-reconciler", self.run_once, interval, (RedisError, SQLAlchemyError)
        )

    def run_once(self) -> int:
        """One pass under the lock; returns how many messages were re-enqueued (0 when another
        worker holds the lock)."""
        ttl_ms = int(max(self.interval * 3, 60) * 1000)
        with lock.held(self._redis, redis_keys.RECONCILER_LOCK, ttl_ms) as got:
            if not got:
                return 0
            return self._pass()

    def _pass(self) -> int:
        cutoff = datetime.fromtimestamp(self._clock(), UTC) - timedelta(seconds=self.grace)
        total = 0
        with self._db.connect() as conn:
            lost_chunks = list(find_lost(conn, self._redis, cutoff, max_chunks=MAX_CHUNKS))
        for lost in lost_chunks:
            # still queued now? (one settled since the scan has had its entry deleted)
            with self._db.connect() as conn:
                still = set(
                    conn.execute(
                        select(messages.c.id).where(
                            messages.c.id.in_([r.id for r in lost]),
                            messages.c.state == MessageState.QUEUED,
                        )
                    ).scalars()
                )
            again = [outbox.OutboundMessage.from_row(r) for r in lost if r.id in still]
            if not again:
                continue
            outbox.enqueue(self._redis, again, recovery=True)
            total += len(again)
            log.warning(
                "reconciler: %d queued message(s) had no stream entry (lost by Redis?), e.g. %s;"
                " re-enqueued (flagged possible_duplicate if a worker had claimed them)",
                len(again),
                again[0].message_id,
            )
        self.requeued += total
        return total

    # --- the background thread ------------------------------------------------------------
    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._thread.stop(timeout)
