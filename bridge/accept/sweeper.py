"""The outbox sweeper: re-enqueue messages left ``accepted`` (Redis was down at accept time, or
the process died between commit and XADD), and purge expired Idempotency-Key answers.

It runs as a thread in every API process (BridgeService.start); a Redis lock (SET NX PX, see
``redis_keys.SWEEPER_LOCK``) lets one process at a time sweep. Work per pass is bounded
(``batch_size`` x ``max_batches`` messages). A message older than the grace period and still
``accepted`` is XADDed, then marked ``queued`` (one with a send_at counts its age from it;
``scheduled`` ones are the releaser's, bridge.delivery.release, never touched here); a crash between the two re-adds it next pass,
which the worker tolerates (see bridge.redis.outbox).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from redis.exceptions import RedisError
from sqlalchemy import delete, or_, select, update
from sqlalchemy.exc import SQLAlchemyError

from bridge.config import Config
from bridge.redis import keys as redis_keys
from bridge.redis import lock, outbox
from bridge.storage.db import Database
from bridge.storage.models import OUTBOUND_COLUMNS, idempotency_keys, messages
from bridge.storage.states import MessageState

log = logging.getLogger(__name__)

_PURGE_CHUNK = 1000


class Sweeper:
    """Finds stale ``accepted`` messages and puts them on the outbound stream again."""

    def __init__(
        self,
        config: Config,
        db: Database,
        redis,
        *,
        clock: Callable[[], float] = time.time,
        batch_size: int = 1000,
        max_batches: int = 20,
    ) -> None:
        self._config, self._db, self._redis, self._clock = config, db, redis, clock
        self._batch_size, self._max_batches = batch_size, max_batches
        self._thread = lock.PeriodicPass(
            "bridge-sweeper", self.sweep_once, config.sweeper_interval_seconds, (SQLAlchemyError,)
        )

    # --- one pass -------------------------------------------------------------------------
    def sweep_once(self) -> int:
        """One bounded pass; returns how many messages were re-enqueued (0 without the lock)."""
        if self._redis is None:
            return 0
        lock_ms = int(max(self._config.sweeper_interval_seconds * 3, 30) * 1000)
        try:
            with lock.held(self._redis, redis_keys.SWEEPER_LOCK, lock_ms) as got:
                if not got:
                    return 0
                count = self._requeue()
                self._purge_idempotency_keys()
                return count
        except RedisError as exc:
            log.warning("sweeper: Redis unavailable (%s); will retry next pass", exc)
            return 0

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self._clock(), UTC)

    def _requeue(self) -> int:
        total = 0
        for _ in range(self._max_batches):
            now = self._now()
            cutoff = now - timedelta(seconds=self._config.sweeper_grace_seconds)
            with self._db.connect() as conn:
                rows = conn.execute(
                    select(*OUTBOUND_COLUMNS)
                    .where(
                        messages.c.state == MessageState.ACCEPTED,
                        messages.c.created_at < cutoff,
                        or_(messages.c.send_at.is_(None), messages.c.send_at < cutoff),
                    )
                    .order_by(messages.c.created_at)
                    .limit(self._batch_size)
                ).all()
            if not rows:
                break
            try:
                outbox.enqueue(self._redis, [outbox.OutboundMessage.from_row(r) for r in rows])
            except RedisError as exc:
                log.warning("sweeper: Redis unavailable while re-enqueueing (%s)", exc)
                break
            with self._db.begin() as conn:
                conn.execute(
                    update(messages)
                    .where(
                        messages.c.id.in_([r.id for r in rows]),
                        messages.c.state == MessageState.ACCEPTED,
                    )
                    .values(state=MessageState.QUEUED, queued_at=now, updated_at=now)
                )
            total += len(rows)
            log.info("sweeper: re-enqueued %d accepted message(s)", len(rows))
            if len(rows) < self._batch_size:
                break
        return total

    def _purge_idempotency_keys(self) -> int:
        cutoff = self._now() - timedelta(seconds=self._config.idempotency_ttl_seconds)
        old = (
            select(idempotency_keys.c.id)
            .where(idempotency_keys.c.created_at < cutoff)
            .limit(_PURGE_CHUNK)
            .scalar_subquery()
        )
        with self._db.begin() as conn:
            return conn.execute(
                delete(idempotency_keys).where(idempotency_keys.c.id.in_(old))
            ).rowcount

    # --- the background thread ------------------------------------------------------------
    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._thread.stop(timeout)
