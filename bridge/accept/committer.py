"""Group commit: concurrent callers in one process share one write transaction.

A request thread that has done all its pure work hands a :class:`Pending` to
:meth:`GroupCommitter.submit`. Leader/follower, with no dedicated thread and no artificial
delay: if no group is being committed, the caller becomes the leader and runs ``run_group`` on
whatever is queued right now (its own item first, up to ``max_items`` items or ``max_weight``
weight); otherwise it waits. When ``run_group`` returns, the oldest waiting caller is promoted
to lead the next group and the followers are woken with their outcomes.

``before_take`` (optional) runs in the leader before it takes the queue: the accept path waits
for the database's write lock there, so whoever queues while another process writes joins this
group instead of waiting for the next one (mean group 1.0-2.8 -> 2.1-2.8 sends at 8 connections
on two API processes, bench/accept.py).

One group at a time, transaction AND enqueue: promoting the next leader as soon as the
transaction committed (so it overlapped the previous group's XADD) was measured worse - smaller
groups (1.3-2.1 vs 2.5-4.5 sends with 4-8 threads) and ~25% more CPU per send - because the
next leader started with whoever had queued in those few microseconds.

Every item a leader takes gets its outcome (a value or an exception) before its caller is
woken; a bug in ``run_group`` becomes each item's exception, never a hang.
"""

from __future__ import annotations

import _thread
import collections
import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)

_UNSET = object()
QUEUE_WAIT_SECONDS = 60.0  # a queued item no leader took by then is withdrawn (DependencyDown)


class GroupTimeout(Exception):
    """No leader took the item within QUEUE_WAIT_SECONDS; nothing of it was written."""


class Pending:
    """One caller's item: ``payload`` in, then ``result`` or ``error`` out."""

    __slots__ = ("_done", "_lead", "_taken", "error", "payload", "result", "weight")

    def __init__(self, payload: Any, weight: int = 1) -> None:
        self.payload = payload
        self.weight = weight
        self.result: Any = _UNSET
        self.error: BaseException | None = None
        self._done = _thread.allocate_lock()  # held until the item is resolved or promoted
        self._done.acquire()
        self._lead = False
        self._taken = False


@dataclass
class GroupStats:
    """Counters for tests and benchmarks (read without a lock: approximate while running)."""

    groups: int = 0
    items: int = 0
    largest: int = 0


class GroupCommitter:
    """Leader/follower batching of :class:`Pending` items into ``run_group(items)`` calls,
    which must set each item's ``result`` or ``error``."""

    def __init__(
        self,
        run_group: Callable[[Sequence[Pending]], None],
        *,
        max_items: int = 64,
        max_weight: int = 2000,
        queue_wait: float = QUEUE_WAIT_SECONDS,
        before_take: Callable[[], object] | None = None,  # what it returns is ignored
    ) -> None:
        self._run_group = run_group
        self._before_take = before_take
        self._max_items, self._max_weight = max_items, max_weight
        self._queue_wait = queue_wait
        self._lock = threading.Lock()
        self._queue: collections.deque[Pending] = collections.deque()
        self._leading = False  # invariant: queue not empty => a leader is running or promoted
        self.stats = GroupStats()

    def waiting(self) -> int:
        """Items queued and not yet taken by a leader."""
        with self._lock:
            return len(self._queue)

    @contextlib.contextmanager
    def hold(self, timeout: float = 30.0) -> Iterator[None]:
        """Queue every submission until the block ends, then commit them as one group (up to
        the caps): a deterministic group for tests, or a pause for maintenance. The block waits
        for a running group to finish first. Keep it short: callers wait meanwhile."""
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                if not self._leading:
                    self._leading = True
                    break
            if time.monotonic() > deadline:
                raise TimeoutError(f"a group commit was still running after {timeout} s")
            time.sleep(0.001)
        try:
            yield
        finally:
            self._promote()

    def submit(self, item: Pending) -> Any:
        """Queue ``item``, lead or wait, and return its result (or raise its error)."""
        with self._lock:
            self._queue.append(item)
            lead = not self._leading
            self._leading = True
        if not lead:
            self._wait(item)
        if lead or item._lead:
            self._lead()
        if item.error is not None:
            raise item.error
        if item.result is _UNSET:
            raise RuntimeError("the group commit gave this request no answer (a bug)")
        return item.result

    def _wait(self, item: Pending) -> None:
        """Until resolved or promoted; withdraw the item if no leader took it in time."""
        if item._done.acquire(timeout=self._queue_wait):
            return
        with self._lock:
            if item._lead:  # promoted just now: lead (the release is on its way)
                return
            if not item._taken:
                self._queue.remove(item)
                item.error = GroupTimeout(
                    f"no group commit took this request within {self._queue_wait:.0f} s"
                )
                return
        item._done.acquire()  # taken: the leader resolves it (its run_group is bounded)

    def _take(self) -> list[Pending]:
        with self._lock:
            group = [self._queue.popleft()]
            weight = group[0].weight
            while (
                self._queue
                and len(group) < self._max_items
                and weight + self._queue[0].weight <= self._max_weight
            ):
                nxt = self._queue.popleft()
                weight += nxt.weight
                group.append(nxt)
            for it in group:
                it._taken = True
        return group

    def _lead(self) -> None:
        """Run one group (whose head is the caller's own item), then resolve every item."""
        gate_error = None
        if self._before_take is not None:
            try:  # e.g. wait for the write lock: whoever queues meanwhile joins this group
                self._before_take()
            except Exception as exc:  # noqa: BLE001 - becomes each item's error below
                gate_error = exc
        group = self._take()
        try:
            if gate_error is not None:
                raise gate_error
            self._run_group(group)
        except BaseException as exc:  # becomes each item's error; re-raised unless an Exception
            log.exception("group commit of %d request(s) failed unexpectedly", len(group))
            for it in group:
                if it.error is None and it.result is _UNSET:
                    it.error = exc
            if not isinstance(exc, Exception):
                raise
        finally:
            self._promote()
            self._count(len(group))
            for it in group[1:]:  # group[0] is the caller's own item
                it._done.release()

    def _promote(self) -> None:
        """Make the oldest waiting caller the next leader, or step down if none."""
        with self._lock:
            if not self._queue:
                self._leading = False
                return
            nxt = self._queue[0]
            nxt._lead = True
        nxt._done.release()

    def _count(self, n: int) -> None:
        stats = self.stats
        stats.groups += 1
        stats.items += n
        stats.largest = max(stats.largest, n)
