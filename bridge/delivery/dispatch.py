"""From claimed messages to outcomes: expiry, routing, parts, lanes, and what each answer means.

:meth:`Dispatcher.admit` takes the jobs the reader read: one whose validity has passed is
``expired``, one with no route ``failed`` (both claimed first, then refunded by settlement,
never sent); the rest are cut into parts and pushed to their connection's
:class:`~bridge.delivery.lanes.Lane`, which claims them right before sending.
The collector thread gathers every part's :class:`~smpp.session.submit.SubmitOutcome`:

- all parts ``ok`` -> ``Submitted`` with one SMSC id per part;
- a permanent status -> ``rejected`` (error_code = status name), after the other parts answer;
- retryable status, ``timeout`` or ``not_sent`` -> the part is resent after the retry rule's
  delay (backing off), up to its max_attempts, then ``failed``. A timed-out part may already be
  at the SMSC, so resending it flags the message possible_duplicate. A retry of a message with
  no accepted part goes to the first connection that is up then (failover).

Outcomes go to the settlement writer, which stores them in batches and then calls back the
worker to acknowledge the stream entries.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import queue
import random
import threading
import time
from collections.abc import Callable, Iterable
from typing import cast

from bridge.config import NOT_SENT, TIMEOUT, Connection, WorkerSettings
from bridge.delivery.fleet import TokenBucket
from bridge.delivery.jobs import Job, Tracker
from bridge.delivery.lanes import Lane, lanes_for
from bridge.delivery.pool import SessionPool
from bridge.delivery.settlement import Failed, Submitted
from bridge.routing.router import Router
from bridge.storage.states import MessageState
from bridge.telemetry.logs import message_context
from bridge.telemetry.metrics import count_submit
from smpp.codec import status as smpp_status
from smpp.session.submit import SubmitOutcome

log = logging.getLogger(__name__)

NO_ROUTE = "no route"
VALIDITY = "validity elapsed"
_DRAIN_MAX = 5000  # outcomes handled per collector turn


class Dispatcher:
    """Routes claimed jobs to lanes and turns part outcomes into settlement outcomes."""

    def __init__(
        self,
        router: Router,
        pool: SessionPool,
        writer,
        tracker: Tracker,
        settings: WorkerSettings,
        *,
        bucket: TokenBucket | None,
        claim: Callable[[list[Job]], bool],
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
    ) -> None:
        self.router, self.pool, self.writer, self.tracker = router, pool, writer, tracker
        self.settings = settings
        self.policy = settings.retry
        self.clock = clock
        self._rng = rng or random.Random()
        self.results: queue.SimpleQueue[SubmitOutcome] = queue.SimpleQueue()
        self._claim = claim
        self.lanes: dict[str, Lane] = lanes_for(
            router.connections,
            pool,
            bucket,
            self.results,
            settings.down_queue_timeout,
            tracker,
            claim,
            settings.claim_ahead,
            clock=clock,
        )
        self._retries: list[tuple[float, int, Job, list[int]]] = []
        self._seq = itertools.count()
        self._stopping = False
        self._stop_collector = threading.Event()
        self._thread = threading.Thread(target=self._collect, name="worker-collector", daemon=True)
        self.counters = {
            MessageState.SUBMITTED: 0,
            MessageState.FAILED: 0,
            MessageState.REJECTED: 0,
            MessageState.EXPIRED: 0,
            "retries": 0,
            "timeouts_retried": 0,
        }

    def start(self) -> None:
        for lane in self.lanes.values():
            lane.start()
        self._thread.start()

    def stop_submitting(self) -> int:
        """Graceful stop, step 1: lanes and retries stop; returns parts never sent."""
        self._stopping = True
        dropped = sum(len(ix) for lane in self.lanes.values() for _, ix in lane.stop())
        dropped += sum(len(ix) for *_, ix in self._retries)
        return dropped

    def stop(self, timeout: float = 5.0) -> None:
        """Step 2 (after the sessions stopped, so every future has resolved): end the collector
        once it has handled what is queued."""
        self._stopping = True
        self._stop_collector.set()
        self._thread.join(timeout)

    @property
    def in_flight(self) -> int:
        return sum(lane.outstanding for lane in self.lanes.values())

    @property
    def backlog(self) -> int:
        """Messages claimed and waiting to be written: in lanes, or waiting for a retry."""
        return sum(lane.waiting for lane in self.lanes.values()) + len(self._retries)

    # ------------------------------------------------------------------ admission

    def admit(self, jobs: Iterable[Job]) -> None:
        """Hold each job and send it on its way (its lane claims it before sending)."""
        now = self.clock()
        pushes: dict[str, list[tuple[Job, list[int]]]] = {}
        expired = []
        for job in jobs:
            self.tracker.add(job)
            if job.message.expires_at <= now:
                expired.append(job)
                continue
            conn = self._route(job)
            if conn is not None:
                pushes.setdefault(conn.name, []).append((job, list(range(len(job.parts)))))
        if expired:
            self._claim(expired)  # one statement for the lot; _fail skips the refused
        for job in expired:
            self._fail(job, MessageState.EXPIRED, VALIDITY)
        for name, items in pushes.items():
            self.lanes[name].push_many(items)

    def wake_lanes(self) -> None:
        """Unrecorded slots were freed (settlements committed): lanes may claim again."""
        for lane in self.lanes.values():
            lane.wake()

    def _route(self, job: Job) -> Connection | None:
        """The connection for a job (first that is up, else the route's primary), with its
        parts built; None when it was failed instead (no route, or unencodable)."""
        m = job.message
        candidates = self.router.connections_for(m.destination, self.pool.is_up)
        if not candidates:
            self._fail(job, MessageState.FAILED, NO_ROUTE)
            return None
        conn = candidates[0]
        if job.connection is not conn:
            try:
                job.build(conn)
            except ValueError as exc:
                log.error(
                    "message %s cannot be split for %s: %s",
                    m.message_id,
                    conn.name,
                    exc,
                    extra=message_context(m.message_id, m.batch_id),
                )
                self._fail(job, MessageState.REJECTED, "cannot encode")
                return None
            if len(job.parts) != m.parts:
                log.warning(
                    "message %s: priced as %d part(s) but %s sends %d",
                    m.message_id,
                    m.parts,
                    conn.name,
                    len(job.parts),
                    extra=message_context(m.message_id, m.batch_id),
                )
        return conn

    def _fail(self, job: Job, state: MessageState, code: str | None) -> None:
        """Settle a job as never sent (refunded). Claimed first, so a message another worker
        holds is never failed under it: a refused claim means it is handled elsewhere."""
        if not job.claimed:
            self._claim([job])
        if not job.claimed:
            return  # refused (dropped and acked by the claim) or stopping (left for recovery)
        m = job.message
        self._finish(
            job,
            Failed(
                m.message_id, state, code, self.clock(), possible_duplicate=job.possible_duplicate
            ),
        )

    def _finish(self, job: Job, outcome) -> None:
        job.done = True
        kind = MessageState.SUBMITTED if isinstance(outcome, Submitted) else outcome.state
        self.counters[kind] = self.counters.get(kind, 0) + 1
        self.writer.put(outcome)

    # ------------------------------------------------------------------ the collector thread

    def _collect(self) -> None:
        results = self.results
        while True:
            timeout = self._next_retry_in()
            try:
                first = results.get(timeout=timeout)
            except queue.Empty:
                first = None
            batch = [] if first is None else [first]
            while len(batch) < _DRAIN_MAX:
                try:
                    batch.append(results.get_nowait())
                except queue.Empty:
                    break
            touched: set[str] = set()
            for outcome in batch:
                self._on_outcome(outcome, touched)
            for name in touched:
                self.lanes[name].wake()
            self._run_due_retries()
            if self._stop_collector.is_set() and results.empty():
                return

    def _next_retry_in(self) -> float:
        if self._stop_collector.is_set():
            return 0.05
        if not self._retries:
            return 0.2
        return min(0.2, max(0.0, self._retries[0][0] - time.monotonic()))

    def _on_outcome(self, outcome: SubmitOutcome, touched: set[str]) -> None:
        job, index = cast(tuple[Job, int], outcome.tag)  # the tag Job.build gave the part
        assert job.connection is not None  # built for a connection before it was submitted
        lane = self.lanes[job.connection.name]
        lane.done += 1
        touched.add(lane.connection.name)
        job.written = job.written or outcome.written
        count_submit(lane.connection.name, _status_label(outcome))
        if outcome.kind == "ok":
            job.parts[index].smsc_id = outcome.message_id
            job.open -= 1
        elif outcome.kind == "permanent":
            job.failure = job.failure or (MessageState.REJECTED, smpp_status.name(outcome.status))
            job.open -= 1
        else:
            self._retry_or_fail(job, index, outcome)
        if job.open == 0 and not job.done:
            self._complete(job)

    def _retry_or_fail(self, job: Job, index: int, outcome: SubmitOutcome) -> None:
        if outcome.kind == "timeout":
            key, retryable = TIMEOUT, True
        elif outcome.kind == "not_sent":
            key, retryable = NOT_SENT, True
        else:
            key, retryable = smpp_status.name(outcome.status), True
        rule = self.policy.rule_for(key, retryable)
        part = job.parts[index]
        now = self.clock()
        if (
            rule is None
            or part.tries >= rule.max_attempts
            or job.failure is not None
            or self._stopping
            or now >= job.message.expires_at
        ):
            if not self._stopping:
                job.failure = job.failure or self._give_up_state(job, key, now)
            job.open -= 1
            return
        if outcome.kind == "timeout":
            job.possible_duplicate = True
            self.counters["timeouts_retried"] += 1
        delay = self.policy.delay(rule, part.tries) * self._rng.uniform(0.9, 1.1)
        heapq.heappush(self._retries, (time.monotonic() + delay, next(self._seq), job, [index]))
        self.counters["retries"] += 1

    def _give_up_state(self, job: Job, key: str, now: float) -> tuple[MessageState, str]:
        if now >= job.message.expires_at and not job.any_accepted:
            return (MessageState.EXPIRED, VALIDITY)
        return (MessageState.FAILED, key)

    def _complete(self, job: Job) -> None:
        """Every part has its final answer: hand the message's outcome to settlement."""
        if self._stopping and job.failure is None and not all(p.smsc_id for p in job.parts):
            return  # abandoned at shutdown: stays pending, another worker recovers it
        now = self.clock()
        m = job.message
        if job.failure is not None:
            self._fail(job, *job.failure)
            return
        conn = job.connection
        assert conn is not None  # its parts were built for it
        # every part answered ok (no failure, none open), so every part has its SMSC id
        smsc_ids = cast(list[str], [p.smsc_id for p in job.parts])
        self._finish(
            job,
            Submitted(
                m.message_id,
                smsc_ids,
                conn.name,
                now,
                id_form=conn.message_id_form,
                possible_duplicate=job.possible_duplicate,
            ),
        )

    def _run_due_retries(self) -> None:
        if self._stopping:
            return
        now = time.monotonic()
        pushes: dict[str, list[tuple[Job, list[int]]]] = {}
        while self._retries and self._retries[0][0] <= now:
            _, _, job, indexes = heapq.heappop(self._retries)
            if job.done:
                continue
            conn = job.connection
            assert conn is not None  # a retry was submitted before, so it was built
            alone = job.open == len(indexes)  # nothing else of it in flight or waiting
            if alone and not job.any_accepted and not self.pool.is_up(conn.name):
                tries = max(p.tries for p in job.parts)
                conn = self._route(job)  # failover: the first connection up now
                if conn is None:
                    continue
                for p in job.parts:
                    p.tries = max(p.tries, tries)
                indexes = list(range(len(job.parts)))
            pushes.setdefault(conn.name, []).append((job, indexes))
        for name, items in pushes.items():
            claimed = [item for item in items if item[0].claimed]
            if claimed:  # ahead of new work: the unrecorded bound never holds them back
                self.lanes[name].push_many(claimed, front=True)
            if len(claimed) < len(items):
                self.lanes[name].push_many([item for item in items if not item[0].claimed])


def _status_label(outcome: SubmitOutcome) -> str:
    """The command_status label of a part's answer: the status name, or timeout / not_sent
    when the SMSC gave none."""
    if outcome.kind in ("timeout", "not_sent"):
        return outcome.kind
    return smpp_status.name(outcome.status)
