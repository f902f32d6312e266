"""One lane per SMSC connection: the thread that turns held parts into session submits.

A lane keeps at most ``pool.capacity(connection)`` submits outstanding (twice the bound
windows), so the fleet-wide TPS tokens it takes are spent at once rather than seconds later,
and a connection that slows down holds work here instead of in session queues. Tokens come from
the account's Redis bucket in batches (``TokenBucket.take_up_to``) and are banked, so a message
of several parts goes out whole even when the burst is smaller than its part count.

A message is claimed (the write-ahead ``attempts`` mark, one UPDATE per batch) here, right
before its parts are handed to the sessions, and only while the worker's count of unrecorded
messages (claimed, outcome not committed) is under ``max_unrecorded``: so a crash can send again
at most that many, and flags hardly more than were really written. Retries of claimed messages
go to the front of the lane and are never held back by that bound.

A message whose validity (``expires_at``) ran out while it waited here is not handed to a
session: its parts resolve "not_sent" and the collector, seeing the validity passed, settles it
as the retry path does (``expired`` and refunded, or ``failed`` once a part was accepted).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable

import redis as redis_lib

from bridge.config import Connection
from bridge.delivery.fleet import TokenBucket
from bridge.delivery.jobs import Job, Tracker
from bridge.delivery.pool import SessionPool
from smpp.session.submit import SubmitOutcome

log = logging.getLogger(__name__)

_IDLE_WAIT = 0.2  # seconds a lane sleeps when it has nothing to do (woken early by push)
_MAX_BUCKET_WAIT = 0.5  # seconds: longest sleep on a token-bucket hint
_MAX_BATCH = 1000  # parts taken from the lane in one go


class Lane:
    """Parts waiting for one connection, and the thread that submits them."""

    def __init__(
        self,
        connection: Connection,
        pool: SessionPool,
        bucket: TokenBucket | None,
        results: queue.SimpleQueue[SubmitOutcome],
        down_timeout: float,
        tracker: Tracker,
        claim: Callable[[list[Job]], bool],
        claim_ahead: int = 0,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.connection = connection
        self._clock = clock  # epoch seconds, the dispatcher's: validity ends by it
        self._claim_ahead = claim_ahead  # 0: automatic (_ahead)
        self._tracker = tracker
        self._claim = claim  # claims jobs (marks job.claimed); False: not now (stopping)
        self._down_timeout = down_timeout
        self._pool = pool
        self._bucket = bucket if connection.tps else None
        self._results = results
        self._items: deque[tuple[Job, list[int]]] = deque()
        self._cond = threading.Condition()
        self._stopping = False
        self._bank = 0  # tokens taken from the fleet bucket, not yet spent
        self.sent = 0  # parts handed to sessions (lane thread only)
        self.done = 0  # of those, resolved (collector thread only)
        self._thread = threading.Thread(
            target=self._run, daemon=True, name=f"worker-lane-{connection.name}"
        )
        self._claimer = threading.Thread(
            target=self._claim_loop, daemon=True, name=f"worker-claim-{connection.name}"
        )

    @property
    def outstanding(self) -> int:
        return self.sent - self.done

    @property
    def waiting(self) -> int:
        return len(self._items)

    def start(self) -> None:
        self._thread.start()
        self._claimer.start()

    def stop(self, timeout: float = 5.0) -> list[tuple[Job, list[int]]]:
        """Stop submitting; returns what was still waiting (never written)."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        self._thread.join(timeout)
        self._claimer.join(timeout)
        left = list(self._items)
        self._items.clear()
        return left

    def push(self, job: Job, indexes: list[int]) -> None:
        with self._cond:
            self._items.append((job, indexes))
            self._cond.notify_all()

    def push_many(self, items: list[tuple[Job, list[int]]], *, front: bool = False) -> None:
        """Queue parts; ``front`` for retries of claimed messages (ahead of new work, so the
        unrecorded bound never holds them back behind unclaimed messages)."""
        with self._cond:
            if front:
                self._items.extendleft(reversed(items))
            else:
                self._items.extend(items)
            self._cond.notify_all()

    def wake(self) -> None:
        """Room may have opened (the collector resolved some submits, or settlements freed
        unrecorded slots)."""
        with self._cond:
            self._cond.notify_all()

    # ------------------------------------------------------------------ the thread

    def _run(self) -> None:
        name, pool = self.connection.name, self._pool
        down_since: float | None = None
        while True:
            with self._cond:
                while not self._stopping and (
                    not self._items
                    or self.outstanding >= pool.capacity(name)
                    or not pool.is_up(name)
                    or not self._items[0][0].claimed  # the claimer is on it
                ):
                    if self._items and not pool.is_up(name):
                        down_since = down_since or time.monotonic()
                        if time.monotonic() - down_since >= self._down_timeout:
                            break
                    self._cond.wait(_IDLE_WAIT)
                if self._stopping:
                    return
                if not pool.is_up(name):
                    self._give_up_waiting()
                    down_since = None
                    continue
                down_since = None
                room = pool.capacity(name) - self.outstanding
            for job, indexes in self._take(min(room, _MAX_BATCH)):
                self._submit(job, indexes)
            with self._cond:
                self._cond.notify_all()  # the claimer may top up

    # ------------------------------------------------------------------ the claimer thread

    def _claim_loop(self) -> None:
        """Keep the claimed front of the lane topped up to ``_ahead()`` messages, claiming the
        next unclaimed ones in one statement while the lane thread sends (so the database's
        latency is not the binds' idle time)."""
        while True:
            fresh: list[Job] = []
            with self._cond:
                while not self._stopping and not (fresh := self._reserve_ahead()):
                    self._cond.wait(_IDLE_WAIT)
                if self._stopping:
                    for job in fresh:
                        self._tracker.unreserve(job)
                    return
            if not self._claim(fresh):
                # the worker is stopping with the database down: no claim will succeed any
                # more, so claim no more (asking again would spin, a database attempt and a
                # warning each time, until the lane stops); unclaimed jobs give their slots
                # back and stay in the lane, returned unsent by stop()
                for job in fresh:
                    if not job.claimed:
                        self._tracker.unreserve(job)
                return
            with self._cond:
                if not all(job.claimed for job in fresh):  # refused ones leave the lane
                    self._items = deque(i for i in self._items if i[0].claimed or not i[0].done)
                self._cond.notify_all()

    def _ahead(self) -> int:
        """Claimed messages to keep ready ([worker] claim_ahead; automatic: four times the
        lane's capacity, eight windows), enough to cover a claim that waits for the database's
        write lock at full speed. Each of them is flagged if the worker dies unsent."""
        return self._claim_ahead or 4 * self._pool.capacity(self.connection.name)

    def _reserve_ahead(self) -> list[Job]:
        """Under the lock: the next unclaimed jobs to claim, each holding an unrecorded slot
        (none while the claimed front is long enough or the slots are taken)."""
        claimed = 0
        fresh: list[Job] = []
        want = self._ahead()
        for job, _ in self._items:
            if job.claimed:
                claimed += 1
                if claimed >= want:
                    return []
                continue
            if claimed + len(fresh) >= want or not self._tracker.reserve(job):
                break
            fresh.append(job)
        return fresh

    def _give_up_waiting(self) -> None:
        """The connection stayed down: what waits here resolves "not_sent" (never written), so
        the collector retries it, on another connection when one is up (failover)."""
        items, self._items = list(self._items), deque()
        error = f"no bind of {self.connection.name!r} up for {self._down_timeout}s; not sent"
        for job, indexes in items:
            for i in indexes:
                self.sent += 1
                job.parts[i].tries += 1
                self._results.put(
                    SubmitOutcome("not_sent", 0, None, False, job.parts[i].request.tag, error)
                )

    def _take(self, room: int) -> list[tuple[Job, list[int]]]:
        """Items worth up to ``room`` parts that the fleet bucket lets go now (the first item
        always goes when its tokens are there, even if it alone exceeds ``room``)."""
        if self._bucket is not None and not self._fill_bank(room):
            return []
        limit = room if self._bucket is None else min(room, self._bank)
        taken: list[tuple[Job, list[int]]] = []
        used = 0
        with self._cond:
            while self._items:
                job, indexes = self._items[0]
                n = len(indexes)
                if used + n > limit and (taken or (self._bucket is not None and n > self._bank)):
                    break
                if not job.claimed:
                    break  # the next ones are claimed first (_claim_ahead)
                taken.append(self._items.popleft())
                used += n
        if self._bucket is not None:
            self._bank -= used
        return taken

    def _fill_bank(self, room: int) -> bool:
        """Top up the banked tokens; False (after a bounded sleep) when none are to be had."""
        with self._cond:
            need = len(self._items[0][1]) if self._items else 1
        if self._bank >= need:
            return True
        c, bucket = self.connection, self._bucket
        if bucket is None or c.tps is None:  # no TPS cap (there is a bucket only with one)
            return True
        try:
            granted, wait = bucket.take_up_to(c.account, c.tps, c.burst, max(1, room))
        except redis_lib.RedisError as exc:
            log.warning("%s: TPS bucket unavailable (%s); retrying", c.name, exc)
            granted, wait = 0, _MAX_BUCKET_WAIT
        self._bank += granted
        if self._bank >= need:
            return True
        with self._cond:
            if not self._stopping:
                self._cond.wait(min(max(wait, 0.001), _MAX_BUCKET_WAIT))
        return False

    def _submit(self, job: Job, indexes: list[int]) -> None:
        if self._clock() >= job.message.expires_at:
            self._expire(job, indexes)
            return
        session = self._pool.pick(self.connection.name)
        done = self._done
        for i in indexes:
            part = job.parts[i]
            part.tries += 1
            self.sent += 1
            if session is None:  # the bind fell a moment ago: retried like any unsent submit
                self._results.put(
                    SubmitOutcome(
                        "not_sent",
                        0,
                        None,
                        False,
                        part.request.tag,
                        f"no bind of {self.connection.name!r} up; not sent",
                    )
                )
                continue
            session.submit(part.request).add_done_callback(done)

    def _expire(self, job: Job, indexes: list[int]) -> None:
        """Its validity ended while it waited: resolve its parts "not_sent" (not a try) for the
        collector to settle, which owns the job's outcome; its TPS tokens go back to the bank."""
        error = f"validity ended while waiting for {self.connection.name!r}; not sent"
        for i in indexes:
            self.sent += 1
            self._results.put(
                SubmitOutcome("not_sent", 0, None, False, job.parts[i].request.tag, error)
            )
        if self._bucket is not None:
            self._bank += len(indexes)

    def _done(self, future) -> None:
        self._results.put(future.result())


def lanes_for(
    connections,
    pool: SessionPool,
    bucket: TokenBucket | None,
    results: queue.SimpleQueue[SubmitOutcome],
    down_timeout: float,
    tracker: Tracker,
    claim: Callable[[list[Job]], bool],
    claim_ahead: int = 0,
    *,
    clock: Callable[[], float] = time.time,
) -> dict[str, Lane]:
    return {
        c.name: Lane(
            c, pool, bucket, results, down_timeout, tracker, claim, claim_ahead, clock=clock
        )
        for c in connections
    }
