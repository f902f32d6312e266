"""One heap of deferred calls on the server loop (delayed responses, receipts, periodic MO):
thousands of pending receipts cost a heap entry each, not a thread or a loop handle each.

Nothing runs before it is due by the loop's clock (a "5 ms" response is never answered at
4.5 ms); calls due by the time the loop wakes run together, in due order, and their output is
written once (``after_run``). How late the loop wakes is the selector's business: see
smpp.simulator.selector."""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import Callable
from typing import Any


class Timers:
    """call_later() on a private heap, drained by a single loop.call_at handle; ``after_run``
    is called once per drain (the simulator flushes its write buffers there)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, after_run: Callable[[], None]) -> None:
        self.loop = loop
        self.after_run = after_run
        self._heap: list[tuple[float, int, Callable[..., Any], tuple[Any, ...]]] = []
        self._order = itertools.count()
        self._handle: asyncio.TimerHandle | None = None
        self._handle_when = float("inf")

    def __len__(self) -> int:
        return len(self._heap)

    def call_later(self, delay: float, fn: Callable[..., Any], *args: Any) -> None:
        self.call_at(self.loop.time() + delay, fn, *args)

    def call_at(self, when: float, fn: Callable[..., Any], *args: Any) -> None:
        """Run ``fn(*args)`` once the loop's clock reads ``when`` or later."""
        heapq.heappush(self._heap, (when, next(self._order), fn, args))
        if when < self._handle_when:
            self._arm(when)

    def clear(self) -> None:
        self._heap.clear()
        if self._handle is not None:
            self._handle.cancel()
        self._handle, self._handle_when = None, float("inf")

    def _arm(self, when: float) -> None:
        if self._handle is not None:
            self._handle.cancel()
        self._handle, self._handle_when = self.loop.call_at(when, self._run), when

    def _run(self) -> None:
        self._handle, self._handle_when = None, float("inf")
        heap, now = self._heap, self.loop.time()
        try:
            while heap and heap[0][0] <= now:
                _, _, fn, args = heapq.heappop(heap)
                fn(*args)
        finally:
            if heap:
                self._arm(heap[0][0])
            self.after_run()
