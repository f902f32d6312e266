"""Per-endpoint isolation: how many requests an endpoint (scheme://host:port) has in flight,
the few events waiting for a free slot, and its pause after repeated failures.

:class:`Endpoints` decides, for each event the sender takes, whether it runs now, waits here
(a short local backlog) or goes back to Redis to wait (the endpoint is paused, or its backlog is
full), so a slow or dead endpoint holds at most ``concurrency`` workers and a few events in
memory while every other endpoint's events flow. Pure bookkeeping under one lock: no I/O.
"""

from __future__ import annotations

import random
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

RUN, HOLD, WAIT, DEFER = "run", "hold", "wait", "defer"
# An endpoint whose requests in flight made no progress for this long is slow: its overflow
# goes back to Redis instead of making the reader wait (seconds).
SLOW_AFTER = 0.25


def full_jitter(attempt: int, base: float, cap: float, rng: Callable[[], float]) -> float:
    """Seconds before retry ``attempt`` (1 = the first retry): uniform in
    [0, min(cap, base * 2^(attempt-1))] ("full jitter")."""
    return rng() * min(cap, base * 2 ** min(max(attempt - 1, 0), 60))


@dataclass
class _State:
    active: int = 0  # requests in flight (or submitted to the pool)
    backlog: deque[Any] = field(default_factory=deque)
    failures: int = 0  # retryable failures in a row
    paused_until: float = 0.0  # seconds (clock); 0 = not paused
    progress: float = 0.0  # when a request last started from idle or ended (clock)


class Endpoints:
    def __init__(
        self,
        concurrency: int,
        pause_after: int,
        backoff_base: float,
        backoff_max: float,
        backlog: int | None = None,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self.concurrency = concurrency
        self.pause_after = pause_after
        self.backoff_base, self.backoff_max = backoff_base, backoff_max
        self.backlog = 4 * concurrency if backlog is None else backlog
        self._rng = rng
        self._states: dict[str, _State] = {}
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)  # a slot or backlog place came free

    def wait_for_room(self, endpoint: str, timeout: float) -> None:
        """Block until an endpoint's backlog is down to half (or a slot came free), or
        ``timeout``."""
        with self._lock:
            self._changed.wait(timeout)

    def admit(self, endpoint: str, item: Any, now: float) -> tuple[str, float]:
        """(RUN, 0): run it now; (HOLD, 0): kept in the backlog, handed out by ``done``;
        (WAIT, 0): a healthy endpoint's backlog is full, try again shortly (back-pressure);
        (DEFER, until): the endpoint is paused or slow and full: park the event in Redis."""
        with self._lock:
            state = self._states.setdefault(endpoint, _State())
            if state.paused_until > now:
                return DEFER, state.paused_until + self._rng() * self.backoff_base
            if state.active < self.concurrency:
                if not state.active:
                    state.progress = now
                state.active += 1
                return RUN, 0.0
            if len(state.backlog) < self.backlog:
                state.backlog.append(item)
                return HOLD, 0.0
            if now - state.progress < SLOW_AFTER:
                return WAIT, 0.0
            stuck = max(self.backoff_base, now - state.progress)  # wait about as long
            return DEFER, now + stuck * (0.5 + self._rng())

    def done(
        self, endpoint: str, ok: bool | None, now: float, pause_for: float | None = None
    ) -> tuple[Any | None, list[Any], float]:
        """One request of ``endpoint`` ended: ``ok`` True (it answered), False (a retryable
        failure), None (no verdict on the endpoint). ``pause_for`` (a 429's Retry-After) pauses
        it at once. Returns (the next held item to run in this slot or None, held items to
        defer because the endpoint is now paused, the pause end)."""
        with self._lock:
            state = self._states[endpoint]
            state.progress = now
            if ok:
                state.failures, state.paused_until = 0, 0.0
            elif ok is False:
                state.failures += 1
                over = state.failures - self.pause_after
                if over >= 0:
                    wait = full_jitter(over + 1, self.backoff_base, self.backoff_max, self._rng)
                    state.paused_until = max(state.paused_until, now + max(wait, 0.001))
            if pause_for is not None:
                state.paused_until = max(state.paused_until, now + pause_for)
            deferred: list[Any] = []
            if state.paused_until > now and state.backlog:
                deferred, state.backlog = list(state.backlog), deque()
            if state.backlog:
                if len(state.backlog) <= self.backlog // 2:  # wake a waiting reader once per
                    self._changed.notify_all()  # half a backlog, not once per request
                return state.backlog.popleft(), deferred, state.paused_until
            self._changed.notify_all()
            state.active -= 1
            if not state.active and not state.failures and not state.paused_until:
                del self._states[endpoint]  # forget idle healthy endpoints
            return None, deferred, state.paused_until

    def drain(self) -> list[Any]:
        """Every held item (the sender is stopping: they go back to Redis)."""
        with self._lock:
            held = [item for s in self._states.values() for item in s.backlog]
            for s in self._states.values():
                s.backlog.clear()
            return held

    def snapshot(self, now: float) -> dict[str, dict[str, Any]]:
        with self._lock:
            return {
                name: {
                    "active": s.active,
                    "held": len(s.backlog),
                    "failures": s.failures,
                    "paused_for": max(0.0, s.paused_until - now),
                }
                for name, s in self._states.items()
            }
