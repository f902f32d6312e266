"""SettlementWriter: the one thread that writes the engine's outcomes, in batches.

Session threads ``put()`` outcomes (Submitted, Failed, ReceiptIn, ...); the writer takes up to
``max_batch`` of them, waiting at most ``flush_interval`` after the first, and flushes them:

1. Redis: the smsc-id map of every Submitted (one MULTI per connection), which also returns the
   orphan receipts now matched; the correlation of every ReceiptIn (orphans are parked).
2. Database: ONE ``Settlement.apply`` transaction for all of it.
3. After the commit: ``on_settled(ids)`` with the message ids of the Submitted/Failed outcomes
   of the flush; the worker XACKs their stream entries then (a crash before that redelivers
   them, and the conditional updates make the redelivery a no-op). Likewise
   ``on_receipts_stored(entry_ids)`` with the receipt-log entries of the flush's ReceiptIn
   (bridge.delivery.receipt_log): a receipt is acknowledged to the SMSC once logged, and
   leaves the log only once applied.

Backpressure: the queue holds at most ``max_queue`` items; ``put`` blocks while it is full (or
returns False after ``timeout``). A session thread blocked there stops reading its socket, so
the SMSC sees a slow client rather than the bridge dropping outcomes.

Failures: a flush that hits Redis or the database being down (``TRANSIENT``) is retried with
capped backoff, outcomes kept in memory (the queue then fills and backpressure spreads), and
with them the receipts the flush's completed Redis steps already took (popped orphans). Any
other error (a constraint, a bug) would fail forever, so the writer applies that batch one
outcome at a time and logs, with the outcome, each one it cannot store: one bad outcome does
not hold the others back, and none disappears silently. The receipts of such a batch are
handed to ``on_receipts_failed`` (the worker dead-letters them for replay).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

from redis.exceptions import RedisError
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from bridge.delivery.settlement.core import Settlement
from bridge.delivery.settlement.outcomes import (
    Applied,
    Outcome,
    ReceiptEvent,
    ReceiptIn,
    Submitted,
)

log = logging.getLogger(__name__)

RETRY_FIRST_DELAY = 0.1  # seconds before the first retry of a failed flush
RETRY_MAX_DELAY = 5.0  # cap of the doubling delay between retries
# Errors that pass with time (a dependency down, a lock wait): the flush is retried as a whole.
# Anything else (an IntegrityError, a bug) would fail forever: the batch goes one by one.
TRANSIENT = (RedisError, OperationalError, InterfaceError, PoolTimeout)


@dataclass
class _Marker:
    """flush_now(): set once everything queued before it is committed."""

    done: threading.Event = field(default_factory=threading.Event)


_STOP = object()


@dataclass
class WriterStats:
    flushes: int = 0
    outcomes: int = 0
    retries: int = 0
    dropped: int = 0  # outcomes an unexpected error kept out of the database (logged)


class SettlementWriter:
    """A daemon thread owning the engine's database writes (see the module docstring)."""

    def __init__(
        self,
        settlement: Settlement,
        *,
        on_settled: Callable[[list[str]], None],
        on_receipts_stored: Callable[[list[str]], None] | None = None,
        on_receipts_failed: Callable[[list[ReceiptIn]], None] | None = None,
        flush_interval: float = 0.03,
        max_batch: int = 2000,
        max_queue: int = 50_000,
    ) -> None:
        self._settlement = settlement
        self._on_settled = on_settled
        self._on_receipts_stored = on_receipts_stored
        self._on_receipts_failed = on_receipts_failed
        self._interval = flush_interval
        self._max_batch = max_batch
        self._queue: queue.Queue = queue.Queue(max_queue)
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self.stats = WriterStats()

    # --- caller side ----------------------------------------------------------------------
    def start(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        self._stopping.clear()
        self._thread = threading.Thread(target=self._run, name="settlement-writer", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> bool:
        """Flush everything queued, then end the thread; False if that took over ``timeout``."""
        thread = self._thread
        if thread is None:
            return True
        self._stopping.set()
        self._queue.put(_STOP)
        thread.join(timeout)
        if thread.is_alive():
            log.error(
                "settlement writer did not finish within %.1fs; %d item(s) unflushed"
                " (their stream entries stay pending and will be redelivered)",
                timeout,
                self._queue.qsize(),
            )
            return False
        self._thread = None
        return True

    def put(self, outcome: Outcome | ReceiptIn, timeout: float | None = None) -> bool:
        """Queue an outcome (thread-safe). Blocks while the queue is full; False on timeout."""
        try:
            self._queue.put(outcome, timeout=timeout)
        except queue.Full:
            return False
        return True

    def flush_now(self, timeout: float = 10.0) -> bool:
        """Wait until everything put before this call is committed (False on timeout)."""
        marker = _Marker()
        self._queue.put(marker)
        return marker.done.wait(timeout)

    def pending(self) -> int:
        return self._queue.qsize()

    # --- writer thread --------------------------------------------------------------------
    def _run(self) -> None:
        while True:
            batch, markers, stop = self._collect()
            if batch:
                self._flush(batch)
            for marker in markers:
                marker.done.set()
            if stop:
                return

    def _collect(self) -> tuple[list, list[_Marker], bool]:
        """Up to max_batch items: waits for a first one, then at most flush_interval more."""
        batch: list = []
        markers: list[_Marker] = []
        item = self._queue.get()
        deadline = time.monotonic() + self._interval
        while True:
            if item is _STOP:
                return batch, markers, True
            if isinstance(item, _Marker):
                markers.append(item)
                return batch, markers, False
            batch.append(item)
            if len(batch) >= self._max_batch:
                return batch, markers, False
            try:
                item = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                return batch, markers, False

    def _flush(self, batch: list) -> None:
        dropped = self.stats.dropped
        self._apply(batch)
        logged = [i for i in batch if isinstance(i, ReceiptIn) and i.entry_id]
        if not logged:
            return
        if self.stats.dropped == dropped:
            self._notify(
                "on_receipts_stored", self._on_receipts_stored, [i.entry_id for i in logged]
            )
        else:  # which of them were applied is not known: all are kept (replay is harmless)
            self._notify("on_receipts_failed", self._on_receipts_failed, logged)

    def _apply(self, batch: list) -> None:
        delay = RETRY_FIRST_DELAY
        resolved: list[Outcome] | None = None
        taken: dict[tuple[str, str, str], list[ReceiptEvent]] = {}  # kept across retries
        while True:
            try:
                if resolved is None:
                    resolved = self._resolve(batch, taken)
                applied = self._settlement.apply(resolved)
                break
            except TRANSIENT as exc:
                self.stats.retries += 1
                log.error(
                    "settlement flush of %d outcome(s) failed: %s; retrying in %.1fs"
                    " (outcomes kept in memory)",
                    len(batch),
                    exc,
                    delay,
                )
                time.sleep(delay)
                delay = min(delay * 2, RETRY_MAX_DELAY)
            except Exception:  # a bug: store what can be stored, one by one, and say so
                log.exception("unexpected error settling a batch; applying it one by one")
                applied = (
                    self._unresolved_one_by_one(batch, taken)
                    if resolved is None
                    else self._one_by_one(resolved, raw=False)
                )
                break
        self.stats.flushes += 1
        self.stats.outcomes += len(batch)
        if applied is not None and applied.settled_ids:
            self._notify("on_settled", self._on_settled, applied.settled_ids)

    def _resolve(
        self, batch: list, taken: dict[tuple[str, str, str], list[ReceiptEvent]] | None = None
    ) -> list[Outcome]:
        """Redis phase: map the submits' smsc ids and correlate the receipts.

        ``taken`` keeps, per step (map or receipts, connection, form), the receipts a step that
        completed took out of Redis: a retry after a later step failed does not run it again
        (its orphans are popped, so a second run would find none and they would be lost)."""
        taken = {} if taken is None else taken
        outcomes: list[Outcome] = []
        maps: dict[tuple[str, str], list] = defaultdict(list)
        receipts: dict[tuple[str, str], list] = defaultdict(list)
        for item in batch:
            if isinstance(item, ReceiptIn):
                receipts[(item.connection, item.id_form)].append((item.receipt, item.at))
                continue
            if isinstance(item, Submitted):
                maps[(item.connection, item.id_form)] += [
                    (item.message_id, i, sid) for i, sid in enumerate(item.smsc_ids)
                ]
            outcomes.append(item)
        book = self._settlement.receipts
        for (connection, form), items in maps.items():
            if ("map", connection, form) not in taken:
                taken[("map", connection, form)] = book.map_submit_ids(connection, form, items)
        for (connection, form), items in receipts.items():
            if ("receipts", connection, form) not in taken:
                taken[("receipts", connection, form)] = book.correlate(connection, form, items)[0]
        events = [e for step in taken.values() for e in step]
        return outcomes + self._settlement.receipt_outcomes(events)

    def _unresolved_one_by_one(
        self, batch: list, taken: dict[tuple[str, str, str], list[ReceiptEvent]]
    ) -> Applied:
        """:meth:`_one_by_one` of a batch whose Redis phase failed: the receipts its completed
        steps took are applied as they are (with those steps' Submitted), the other items are
        resolved one at a time."""
        resolved: list[Outcome] = []
        rest = []
        for item in batch:
            if _step(item) not in taken:
                rest.append(item)
            elif isinstance(item, Submitted):
                resolved.append(item)
        events = [e for step in taken.values() for e in step]
        resolved += self._settlement.receipt_outcomes(events)
        settled = self._one_by_one(resolved, raw=False).settled_ids
        return Applied(settled_ids=settled + self._one_by_one(rest, raw=True).settled_ids)

    def _one_by_one(self, items: list, raw: bool) -> Applied:
        settled: list[str] = []
        for item in items:
            try:
                one = self._resolve([item]) if raw else [item]
                settled += self._settlement.apply(one).settled_ids
            except Exception:  # logged with the outcome: nothing is dropped silently
                self.stats.dropped += 1
                log.exception("could not store outcome %r; dropped", item)
        return Applied(settled_ids=settled)

    @staticmethod
    def _notify(name: str, callback: Callable[[list], None] | None, items: list) -> None:
        if callback is None:
            return
        try:
            callback(items)
        except Exception:  # the worker's callback; its failure must not stop settlement
            log.exception("%s callback failed for %d item(s)", name, len(items))


def _step(item: Outcome | ReceiptIn) -> tuple[str, str, str] | None:
    """The Redis step of :meth:`SettlementWriter._resolve` an item goes through, if any."""
    if isinstance(item, ReceiptIn):
        return ("receipts", item.connection, item.id_form)
    if isinstance(item, Submitted):
        return ("map", item.connection, item.id_form)
    return None
