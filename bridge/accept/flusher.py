"""Background writes that must not cost the request path a second transaction.

Two kinds of note are queued in memory and written every ``interval`` seconds in one
transaction:
- a batch was XADDed -> ``UPDATE messages SET state='queued' ... WHERE batch_id IN (...) AND
  state='accepted'`` (conditional: it never moves a message the worker already advanced);
- an API key was used -> ``api_keys.last_used_at`` (callers note a key at most once a minute).

Losing a note is harmless: an unmarked batch stays ``accepted`` and the sweeper re-enqueues it
(the worker drops the duplicate); a lost ``last_used_at`` is a minute stale. The queue is
bounded; when it is full the note is written synchronously instead of being dropped.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime

from sqlalchemy import bindparam, update
from sqlalchemy.exc import SQLAlchemyError

from bridge.storage.db import Database
from bridge.storage.models import api_keys, messages
from bridge.storage.states import MessageState

log = logging.getLogger(__name__)

_QUEUED, _KEY_USED = "queued", "key_used"
_IN_CHUNK = 500


class Flusher:
    """A daemon thread draining a bounded queue of notes into batched UPDATEs."""

    def __init__(
        self,
        db: Database,
        *,
        interval: float = 0.15,
        maxsize: int = 10_000,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._db = db
        self._interval = interval
        self._clock = clock
        self._queue: queue.Queue[tuple[str, str, float]] = queue.Queue(maxsize)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._flushing = threading.Lock()  # one drain-and-write at a time: flush() is a barrier

    def start(self) -> None:
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                return
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="bridge-flusher", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the thread after a last flush (bounded by ``timeout``)."""
        with self._lock:
            thread, self._thread = self._thread, None
        if thread is not None:
            self._stop.set()
            thread.join(timeout)
            if thread.is_alive():  # its write hangs; flush() would wait for it unbounded
                log.warning("flusher still writing after %ss; the sweeper covers the rest", timeout)
                return
        self.flush()  # anything noted after the thread's last pass

    def mark_queued(self, batch_id: str) -> None:
        self._note((_QUEUED, batch_id, self._clock()))

    def key_used(self, key_id: str) -> None:
        self._note((_KEY_USED, key_id, self._clock()))

    def _note(self, item: tuple[str, str, float]) -> None:
        try:
            self._queue.put_nowait(item)
        except queue.Full:
            log.warning("flusher queue full; writing synchronously")
            self._write([item])

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self.flush()

    def flush(self) -> int:
        """Write every pending note now; returns how many notes this call wrote. It first waits
        for a write the background thread has under way, so on return every note made before
        the call is written (or its write has failed)."""
        with self._flushing:
            items: list[tuple[str, str, float]] = []
            while True:
                try:
                    items.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            if items:
                self._write(items)
            return len(items)

    def _write(self, items: list[tuple[str, str, float]]) -> None:
        batches = {ident: at for kind, ident, at in items if kind == _QUEUED}
        keys = {ident: at for kind, ident, at in items if kind == _KEY_USED}
        try:
            with self._db.begin() as conn:
                mark_batches_queued(conn, batches)
                if keys:
                    conn.execute(
                        update(api_keys)
                        .where(api_keys.c.key_id == bindparam("kid"))
                        .values(last_used_at=bindparam("at")),
                        [{"kid": k, "at": _utc(at)} for k, at in keys.items()],
                    )
        except SQLAlchemyError as exc:  # the sweeper covers unmarked batches; say so
            log.warning(
                "could not mark %d batch(es) queued / %d key(s) used: %s;"
                " the sweeper will re-enqueue the batches",
                len(batches),
                len(keys),
                exc,
            )


def mark_batches_queued(conn, batches: dict[str, float]) -> None:
    """Mark the ``accepted`` messages of these batches ``queued`` (time per batch: epoch s)."""
    if not batches:
        return
    # one UPDATE per distinct timestamp-chunk would be exact; the flush time is close enough
    at = _utc(max(batches.values()))
    ids = list(batches)
    for start in range(0, len(ids), _IN_CHUNK):
        conn.execute(
            update(messages)
            .where(
                messages.c.batch_id.in_(ids[start : start + _IN_CHUNK]),
                messages.c.state == MessageState.ACCEPTED,
            )
            .values(state=MessageState.QUEUED, queued_at=at, updated_at=at)
        )


def _utc(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)
