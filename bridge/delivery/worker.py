"""The worker process: read the outbound stream, submit through the session pool, settle, ack.

Threads: one reader (XREADGROUP / XAUTOCLAIM, claim, admit), one lane per connection, one
collector, the settlement writer, the pool's maintenance thread, one thread per bind, and the
periodic passes: reconciler, webhook outbox sweep, and the releaser of scheduled sends
(bridge.delivery.release).
A stream entry is acknowledged (XACK + XDEL) only in the writer's ``on_settled`` callback,
i.e. after its message's outcome is committed; anything not acknowledged when the process dies
is taken over by a live worker (XAUTOCLAIM) after ``claim_idle_seconds``. Delivery receipts
take the same road through the receipt log (bridge.delivery.receipt_log.ReceiptIntake): logged
in Redis before the SMSC is answered, removed once applied, taken over from a dead worker.

Graceful stop (SIGTERM, SIGINT): stop reading, let in-flight and retrying messages finish for
up to ``drain_timeout``, stop submitting, unbind, flush the writer, ack. Messages never
written to an SMSC are released (their claim undone) so their recovery is not counted as a
possible duplicate; the rest stay pending for recovery.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable

import redis as redis_lib
from sqlalchemy.exc import SQLAlchemyError

from bridge.config import Config, WorkerSettings
from bridge.delivery.dispatch import Dispatcher
from bridge.delivery.fleet import TokenBucket
from bridge.delivery.jobs import Job, Tracker
from bridge.delivery.pool import SessionPool
from bridge.delivery.reader import Entry, StreamReader
from bridge.delivery.receipt_log import ReceiptIntake, ReceiptLog
from bridge.delivery.reconcile import Reconciler
from bridge.delivery.release import Releaser
from bridge.delivery.settlement import (
    Claimed,
    ClaimResult,
    Settlement,
    SettlementWriter,
)
from bridge.inbound.relay import InboundRelay
from bridge.inbound.store import InboundStore, bounded_database
from bridge.process.lifecycle import freeze_heap
from bridge.redis.lock import PeriodicPass
from bridge.routing.router import Router
from bridge.storage.db import Database
from bridge.telemetry.metrics import count_receipt
from smpp.codec.receipt import Receipt
from smpp.session.mo import MoMessage

log = logging.getLogger("bridge.delivery")

_ERROR_BACKOFF_MAX = 2.0  # seconds: longest pause after a Redis/DB error in the reader
_EXPIRE_EVERY = 30.0  # seconds between sweeps for messages overdue past their validity
_STATS_EVERY = 30.0  # seconds between progress lines in the log
_CONSUMER_GONE = 3600.0  # seconds idle after which an empty consumer (a past process) is deleted


class Worker:
    """One worker process's engine. ``start()`` returns at once; ``stop()`` drains and ends."""

    def __init__(
        self,
        config: Config,
        *,
        router: Router | None = None,
        db: Database | None = None,
        redis: redis_lib.Redis | None = None,
        settings: WorkerSettings | None = None,
        consumer: str | None = None,
        clock: Callable[[], float] = time.time,
        inbound_db: Database | None = None,
    ) -> None:
        """``inbound_db`` is where MO are stored (default: a small pool on config's database
        whose waits are bounded: bridge.inbound.store.bounded_database)."""
        if redis is None:
            if not config.redis_url:
                raise ValueError("the worker needs Redis: set REDIS_URL")
            from bridge.redis.clients import make_redis

            redis = make_redis(config.redis_url)
        self.config = config
        self.settings = settings or config.worker
        self.router = router or Router.from_config(config)
        self.db = db or Database.from_config(config)
        self.redis = redis
        self.clock = clock
        self.settlement = Settlement(self.db, self.redis, clock=clock)
        self.writer = SettlementWriter(
            self.settlement,
            on_settled=self._on_settled,
            on_receipts_stored=lambda ids: self.receipts.applied(ids),
            on_receipts_failed=lambda items: self.receipts.failed(items),
            flush_interval=self.settings.flush_interval,
            max_batch=self.settings.flush_batch,
        )
        self.reader = StreamReader(self.redis, consumer)
        # receipts: in Redis before they are answered, out of it once applied
        self.receipts = ReceiptIntake(
            ReceiptLog(self.redis, self.reader.consumer, limit=self.settings.receipt_backlog_limit),
            self.writer.put,
            self.settings,
        )
        self.tracker = Tracker(self.settings.unrecorded_limit(self.router.connections))
        # MO: stored by the session thread before it answers (bridge.inbound.store), on its own
        # small pool whose every wait is bounded; inbound webhooks relayed off that thread
        self._given_inbound_db = inbound_db
        self.inbound_db = inbound_db or bounded_database(config)
        self.inbound_relay = InboundRelay(self.inbound_db, self.redis, clock=clock)
        self.inbound = InboundStore(
            config, self.inbound_db, clock=clock, notify=self.inbound_relay.publish
        )
        self.inbound_sweep = PeriodicPass(
            "inbound-outbox",
            lambda: self.inbound_relay.sweep(self.settings.webhook_sweep_grace_seconds),
            self.settings.webhook_sweep_interval_seconds,
            (redis_lib.RedisError, SQLAlchemyError),
        )
        self.pool = SessionPool(
            self.router.connections,
            self.redis,
            self.settings,
            self._on_receipt,
            on_mo=self._on_mo,
            on_receipts=self._on_receipts,
        )
        self.dispatcher = Dispatcher(
            self.router,
            self.pool,
            self.writer,
            self.tracker,
            self.settings,
            bucket=TokenBucket(self.redis),
            claim=self._claim_jobs,
            clock=clock,
        )
        self.reconciler = Reconciler(
            self.db,
            self.redis,
            interval=self.settings.reconcile_interval_seconds,
            grace=self.settings.reconcile_grace_seconds,
            clock=clock,
        )
        # scheduled sends: due ones onto the stream (one worker at a time, a Redis lock)
        self.releaser = Releaser(self.db, self.redis, clock=clock)
        # webhook outbox: delete relayed rows when idle, relay rows left behind (a crash)
        self.outbox_sweep = PeriodicPass(
            "webhook-outbox",
            lambda: self.settlement.relay.sweep(self.settings.webhook_sweep_grace_seconds),
            self.settings.webhook_sweep_interval_seconds,
            (redis_lib.RedisError, SQLAlchemyError),
        )
        self._stop_reading = threading.Event()
        self._reader_thread = threading.Thread(
            target=self._read_loop, name="worker-reader", daemon=True
        )
        self._pending_limit = self.settings.pending_limit(self.router.connections)
        self._unacked: list[str] = []
        self._unacked_lock = threading.Lock()
        self.possible_duplicates = 0  # recovered messages flagged by claim (this process)
        self.claims = self.claimed = 0  # claim statements, messages they claimed
        self._started = False

    @property
    def consumer(self) -> str:
        return self.reader.consumer

    # ------------------------------------------------------------------ life cycle

    def start(self) -> None:
        if self._started:
            raise RuntimeError("worker already started")
        self._started = True
        log.info(
            "worker %s starting: %d connection(s), %d bind slot(s)",
            self.consumer,
            len(self.router.connections),
            len(self.pool.slots),
        )
        self.writer.start()
        self.receipts.start()
        self.pool.start()
        self.dispatcher.start()
        self._reader_thread.start()
        self.reconciler.start()
        self.outbox_sweep.start()
        self.inbound_relay.start()
        self.inbound_sweep.start()
        self.releaser.start()

    def stop(self, drain_timeout: float | None = None) -> None:
        """Stop reading, drain (bounded), unbind, flush, ack. Safe to call once."""
        drain = self.settings.drain_timeout if drain_timeout is None else drain_timeout
        self._stop_reading.set()
        self.reconciler.stop()
        self.releaser.stop()
        self._reader_thread.join(self.settings.block_ms / 1000 + 10)
        drained = self.tracker.wait_empty(drain)
        never_sent = self.dispatcher.stop_submitting()
        self.pool.stop()
        self.dispatcher.stop()
        self.writer.stop()
        self.receipts.stop()
        self.outbox_sweep.stop()
        self._flush_outbox()
        self.inbound_sweep.stop()
        self.inbound_relay.stop()
        if self.inbound_db is not self._given_inbound_db:
            self.inbound_db.dispose()
        self._ack_pending()
        left = self.tracker.jobs()
        unwritten = [j.message_id for j in left if j.claimed and not j.written]
        if unwritten:
            self._release(unwritten)
        if left:
            log.warning(
                "worker %s stopped with %d message(s) unfinished (%d never written, "
                "%d part(s) dropped from lanes); another worker takes them over after "
                "%ss",
                self.consumer,
                len(left),
                len(unwritten),
                never_sent,
                self.settings.claim_idle_seconds,
            )
        log.info(
            "worker %s stopped (%s); %s",
            self.consumer,
            "drained" if drained else "drain timed out",
            self._stats_line(),
        )

    def run_forever(self, stop: threading.Event | None = None) -> None:
        """start(), wait for SIGTERM/SIGINT (or ``stop``), then stop()."""
        stop = stop or threading.Event()
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGINT):
                signal.signal(sig, lambda *_: stop.set())
        self.start()
        freeze_heap()  # start-up objects out of every later full collection's walk
        try:
            last = time.monotonic()
            while not stop.wait(1.0):
                if time.monotonic() - last >= _STATS_EVERY:
                    last = time.monotonic()
                    log.info("worker %s: %s", self.consumer, self._stats_line())
        finally:
            log.info(
                "worker %s: stopping (draining up to %ss)",
                self.consumer,
                self.settings.drain_timeout,
            )
            self.stop()

    def _stats_line(self) -> str:
        c = self.dispatcher.counters
        return (
            f"submitted {c['submitted']}, failed {c['failed']}, rejected {c['rejected']}, "
            f"expired {c['expired']}, retries {c['retries']}, held {len(self.tracker)}, "
            f"claimed {self.claimed} in {self.claims} batch(es), "
            f"possible duplicates re-sent after recovery {self.possible_duplicates}, "
            f"timed-out parts re-sent {c['timeouts_retried']}"
        )

    # ------------------------------------------------------------------ reading

    def _read_loop(self) -> None:
        s = self.settings
        backoff = 0.0
        last_claim = last_touch = last_expire = -1e9
        group_ready = False
        while not self._stop_reading.is_set():
            try:
                if not group_ready:
                    self.reader.ensure_group()
                    group_ready = True
                self._ack_pending()
                now = time.monotonic()
                if now - last_touch >= s.touch_interval:
                    last_touch = now
                    self.reader.touch(self.tracker.entry_ids())
                if now - last_expire >= _EXPIRE_EVERY:
                    last_expire = now
                    self._expire_overdue()
                    self.reader.prune_consumers(_CONSUMER_GONE)
                room = min(
                    self._pending_limit - self.dispatcher.backlog, s.max_held - len(self.tracker)
                )
                if room <= 0 or not self.pool.any_up():  # full, or no bind to send with
                    self._stop_reading.wait(0.02)
                    continue
                recovered = now - last_claim >= s.claim_interval_seconds
                if recovered:
                    entries = self.reader.take_over(s.claim_idle_seconds, min(room, s.batch_size))
                    if self.reader.scan_complete:
                        last_claim = now
                else:
                    entries = self._read_batch(min(room, s.batch_size))
                if entries:
                    self._intake(entries, recovered)
                backoff = 0.0
            except (redis_lib.RedisError, SQLAlchemyError) as exc:
                backoff = min(_ERROR_BACKOFF_MAX, backoff * 2 or 0.05)
                log.warning("worker reader: %s; retrying in %.2fs", exc, backoff)
                self._stop_reading.wait(backoff)

    def _read_batch(self, want: int) -> list[Entry]:
        """New entries, up to ``want``. Under a trickle (one-recipient sends) a read returns
        one or two entries; waiting ``read_linger_ms`` for more turns a claim transaction and
        a round of wake-ups per message into one per batch, for that much latency."""
        s = self.settings
        entries = self.reader.read(want, s.block_ms)
        if entries and len(entries) < want and s.read_linger_ms:
            self._stop_reading.wait(s.read_linger_ms / 1000)
            entries += self.reader.read(want - len(entries), None)
        return entries

    def _intake(self, entries: list[Entry], recovered: bool) -> None:
        """Hold the messages of a batch of entries; the lanes claim them right before sending
        (entries of messages held here already are attached to their job)."""
        jobs: dict[str, Job] = {}
        junk = []
        for e in entries:
            if e.message is None:
                log.error(
                    "stream entry %s is not a readable outbound message (%s); "
                    "acknowledging and deleting it",
                    e.entry_id,
                    e.error,
                )
                junk.append(e.entry_id)
                continue
            mid = e.message.message_id
            if mid in jobs:
                jobs[mid].entry_ids.append(e.entry_id)
                jobs[mid].recovered |= e.recovery
            elif not self.tracker.attach(mid, e.entry_id):  # held already: acked with it
                jobs[mid] = Job(e.message, [e.entry_id], recovered=recovered or e.recovery)
        if junk:
            self.reader.ack(junk)
        if jobs:
            self.dispatcher.admit(list(jobs.values()))

    def _claim_jobs(self, jobs: list[Job]) -> bool:
        """Write the claim of jobs about to be sent (one UPDATE per kind: fresh entries take
        only messages nobody claimed, recovered ones any). Marks ``job.claimed``; a refused
        job (its message is handled elsewhere) is dropped and its entries acked. False when
        the database stayed down until the worker stopped (nothing claimed)."""
        claimed: dict[str, Claimed] = {}
        complete = True
        for as_recovered in (True, False):
            group = [j.message for j in jobs if j.recovered == as_recovered]
            result = self._claim(group, as_recovered) if group else None
            if group and result is None:
                complete = False  # stopping with the database down: not claimed, not refused
                break
            if result is not None:
                claimed.update((c.message.message_id, c) for c in result.claimed)
                self.claims += 1
        refused = []
        for job in jobs:
            c = claimed.get(job.message_id)
            if c is not None:
                job.claimed = True
                job.possible_duplicate = job.possible_duplicate or c.possible_duplicate
            elif not job.claimed:
                self.tracker.unreserve(job)
                if complete:
                    refused.append(job.message_id)
        self.claimed += len(claimed)
        # settlement logs and counts these (Redis); this total is for the stats line
        self.possible_duplicates += sum(1 for c in claimed.values() if c.possible_duplicate)
        if refused:
            for job in jobs:
                if job.message_id in refused:
                    job.done = True
            entry_ids = self.tracker.release(refused)
            log.info(
                "%d stream entr%s for messages already handled: acknowledged",
                len(entry_ids),
                "y" if len(entry_ids) == 1 else "ies",
            )
            self._ack_later(entry_ids)
        return complete

    def _claim(self, messages, recovered: bool) -> ClaimResult | None:
        """settlement.claim, retried while the database is down; None once stopping."""
        delay = 0.05
        while True:
            try:
                return self.settlement.claim(messages, recovered=recovered)
            except SQLAlchemyError as exc:
                if self._stop_reading.is_set():
                    log.warning("claim failed while stopping (%s); left for recovery", exc)
                    return None
                log.warning("claim failed (%s); retrying in %.2fs", exc, delay)
                self._stop_reading.wait(delay)
                delay = min(_ERROR_BACKOFF_MAX, delay * 2)

    def _expire_overdue(self) -> None:
        grace = max(60.0, self.settings.claim_idle_seconds * 2)
        expired = self.settlement.expire_overdue(grace_seconds=grace)
        if expired:
            log.warning(
                "%d message(s) overdue past their validity expired and refunded", len(expired)
            )

    # ------------------------------------------------------------------ callbacks

    def _on_settled(self, message_ids) -> None:
        """Writer thread, after a commit: ack the entries of those messages."""
        entry_ids = self.tracker.release(message_ids)
        self.dispatcher.wake_lanes()  # unrecorded slots were freed
        self._ack_later(entry_ids)

    def _ack_later(self, entry_ids: list[str]) -> None:
        """XACK + XDEL now; on a Redis error the reader loop retries them."""
        if not entry_ids:
            return
        try:
            self.reader.ack(entry_ids)
        except redis_lib.RedisError as exc:
            log.warning("ack of %d entries failed (%s); retrying", len(entry_ids), exc)
            with self._unacked_lock:
                self._unacked.extend(entry_ids)

    def _ack_pending(self) -> None:
        with self._unacked_lock:
            ids, self._unacked = self._unacked, []
        if not ids:
            return
        try:
            self.reader.ack(ids)
        except redis_lib.RedisError:
            with self._unacked_lock:
                self._unacked.extend(ids)
            raise

    def _on_receipt(self, connection: str, receipt: Receipt) -> None:
        """One receipt (the pool calls :meth:`_on_receipts` with a read's receipts)."""
        self._on_receipts(connection, [receipt])

    def _on_receipts(self, connection: str, receipts: list[Receipt]) -> None:
        """Session thread: log the receipts of one read in Redis (one round trip), then hand
        them to the writer. A Redis error or a full log raises, so the session answers
        ESME_RX_T_APPN and the SMSC sends them again; once logged they are answered ESME_ROK
        whatever happens to this process."""
        form = self.router.connection(connection).message_id_form
        self.receipts.take(connection, form, receipts, self.clock())
        for receipt in receipts:
            count_receipt(connection, receipt.stat)  # once taken: a refused one comes again

    def _on_mo(self, connection: str, mo: MoMessage) -> None:
        """Session thread: store the MO before it is acknowledged. Any error propagates, so
        the session answers ESME_RX_T_APPN and the SMSC delivers it again."""
        stored = self.inbound.store(connection, mo)
        if stored.account_id is None and not stored.duplicate:
            self.inbound_relay.count_unrouted()

    def _flush_outbox(self) -> None:
        """Delete the outbox rows relayed since the last flush (else the sweep re-sends them)."""
        try:
            self.settlement.relay.flush()
        except SQLAlchemyError as exc:
            log.warning(
                "could not delete relayed webhook outbox rows (%s); the sweep re-sends "
                "them (same event ids)",
                exc,
            )

    def _release(self, message_ids: list[str]) -> None:
        try:
            self.settlement.release(message_ids)
        except (redis_lib.RedisError, SQLAlchemyError) as exc:
            log.warning(
                "could not release %d unsent message(s) (%s); their recovery will "
                "count them as possible duplicates",
                len(message_ids),
                exc,
            )
