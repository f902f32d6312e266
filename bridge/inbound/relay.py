"""The inbound webhook outbox: stored MO whose account has an ``inbound_url`` -> sb:webhooks.

At-least-once, never on the session thread: the MO row is committed with ``webhook_url`` set
(the outbox column); :meth:`InboundRelay.publish` queues it, this relay's thread XADDs it
(kind "inbound") and then clears the column. :meth:`sweep` (a periodic pass, one worker at a
time under a Redis lock) relays rows whose column is still set after a grace period: what a
crash between the commit and the XADD, or Redis being down, left behind. A crash after the
XADD and before the clear sends the event twice with the same id and body (``webhook-id``);
receivers deduplicate on it.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta

from redis.exceptions import RedisError
from sqlalchemy import select, update
from sqlalchemy.exc import SQLAlchemyError

from bridge.inbound.inbox import iso, render
from bridge.inbound.store import StoredMo
from bridge.redis import keys as redis_keys
from bridge.redis.lock import held
from bridge.storage.db import Database
from bridge.storage.models import inbound_messages
from bridge.webhooks.events import encode_event

log = logging.getLogger(__name__)

EVENT_TYPE = "inbound.received"
SWEEP_LIMIT = 500  # rows per sweep statement
SWEEP_LOCK_TTL_MS = 60_000
_BATCH = 200  # events per XADD pipeline and UPDATE


def event_id(inbound_id: str) -> str:
    return f"evt_in_{inbound_id}"


def event_body(row) -> str:
    """The exact JSON POSTed for one inbound message (fixed by its row: same on every relay)."""
    body = {
        "id": event_id(row["id"]),
        "type": EVENT_TYPE,
        "timestamp": iso(row["received_at"]),
        "data": render(row),
    }
    return json.dumps(body, ensure_ascii=False, separators=(",", ":"))


class InboundRelay:
    """XADDs inbound events off the session threads and clears their outbox column."""

    def __init__(self, db: Database, redis, *, clock: Callable[[], float] = time.time) -> None:
        self._db, self._redis, self._clock = db, redis, clock
        self._queue: deque[dict] = deque(maxlen=100_000)  # the sweep covers an overflow
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._unrouted = 0  # unrouted MO stored, not yet added to the status counter
        self._lock = threading.Lock()
        self.published = self.swept = 0

    def publish(self, stored: StoredMo) -> None:
        """Session thread, after the commit: queue the event (never blocks, never raises)."""
        self._queue.append(vars(stored))
        self._wake.set()

    def count_unrouted(self) -> None:
        """Session thread: one more unrouted MO for `smpp-bridge status` (sb:stats:unrouted_mo,
        INCRBY from this relay's thread; a Redis failure keeps the count for the next try)."""
        with self._lock:
            self._unrouted += 1
        self._wake.set()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="inbound-relay", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
        self._drain()  # what is left; the sweep relays anything this cannot

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(1.0)
            self._wake.clear()
            self._drain()

    def _drain(self) -> None:
        with self._lock:
            unrouted, self._unrouted = self._unrouted, 0
        if unrouted:
            try:
                self._redis.incrby(redis_keys.unrouted_mo_count_key(), unrouted)
            except RedisError as exc:
                log.warning("could not count %d unrouted MO (%s); retrying", unrouted, exc)
                with self._lock:
                    self._unrouted += unrouted
        while self._queue:
            batch = [self._queue.popleft() for _ in range(min(_BATCH, len(self._queue)))]
            try:
                self._relay(batch)
                self.published += len(batch)
            except (RedisError, SQLAlchemyError) as exc:
                log.warning(
                    "could not relay %d inbound webhook event(s) (%s); the sweep relays them",
                    len(batch),
                    exc,
                )
                return

    def _relay(self, rows: Iterable) -> None:
        rows = list(rows)
        pipe = self._redis.pipeline(transaction=False)
        stream = redis_keys.webhooks_stream_key()
        for r in rows:
            fields = encode_event(
                event_id(r["id"]), r["account_id"], r["webhook_url"], "inbound", event_body(r)
            )
            pipe.xadd(stream, fields)
        pipe.execute()
        with self._db.begin() as conn:
            conn.execute(
                update(inbound_messages)
                .where(inbound_messages.c.id.in_([r["id"] for r in rows]))
                .values(webhook_url=None)
            )

    def sweep(self, grace_seconds: float) -> int:
        """Relay the rows still pending ``grace_seconds`` after they were stored; how many."""
        with held(self._redis, redis_keys.INBOUND_OUTBOX_LOCK, SWEEP_LOCK_TTL_MS) as got:
            if not got:
                return 0
            c = inbound_messages.c
            cutoff = datetime.fromtimestamp(self._clock(), UTC) - timedelta(seconds=grace_seconds)
            total = 0
            while True:
                with self._db.connect() as conn:
                    rows = (
                        conn.execute(
                            select(inbound_messages)
                            .where(c.webhook_url.is_not(None), c.received_at < cutoff)
                            .order_by(c.received_at)
                            .limit(SWEEP_LIMIT)
                        )
                        .mappings()
                        .all()
                    )
                if rows:
                    self._relay(rows)
                    total += len(rows)
                if len(rows) < SWEEP_LIMIT:
                    break
        if total:
            log.warning("inbound outbox sweep relayed %d event(s) left behind", total)
        self.swept += total
        return total
