"""The server loop's selector: epoll, but timed waits as exact as the kernel allows.

Why: Python's epoll takes whole milliseconds and rounds every timeout up, so an asyncio timer
due in 4.55 ms wakes the loop at 5 ms. The simulator holds responses with timers (the
``latency`` scenario), so "5 ms" came back at 5.0-6.0 ms depending on where in a millisecond
the loop went to sleep: 0.35 ms late on average at window 50, about 6 % of what a client can
reach at 5 ms. select(2) takes microseconds, and an epoll descriptor is readable exactly when
one of its descriptors has an event, so a timed wait is one select() on the epoll descriptor
followed by a non-blocking epoll poll; waits without a timeout, or with none left, go straight
to epoll. The loop's thread also asks Linux for 1 µs of timer slack instead of the default
50 µs (best effort: elsewhere it keeps the default).
"""

from __future__ import annotations

import asyncio
import ctypes
import logging
import select
import selectors
import sys

FD_SETSIZE = 1024  # select() cannot watch a descriptor numbered this high
PR_SET_TIMERSLACK = 29  # linux/prctl.h
TIMER_SLACK_NS = 1000

log = logging.getLogger(__name__)


if sys.platform == "linux":
    _Epoll = selectors.EpollSelector
else:  # pragma: no cover - no epoll: the platform's default, waits rounded as it rounds them
    _Epoll = selectors.DefaultSelector


class PreciseEpollSelector(_Epoll):
    """EpollSelector whose timed waits are not rounded up to whole milliseconds (falls back
    to plain epoll when the epoll descriptor is numbered too high for select())."""

    def __init__(self) -> None:
        super().__init__()
        self.precise = hasattr(selectors, "EpollSelector") and self.fileno() < FD_SETSIZE

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        if timeout is not None and timeout > 0 and self.precise:
            try:
                select.select([self.fileno()], [], [], timeout)
            except InterruptedError:
                return []  # a signal: asyncio's wake-up descriptor tells the loop which
            timeout = 0
        return super().select(timeout)


def new_event_loop() -> asyncio.AbstractEventLoop:
    """An asyncio loop whose timers fire within the kernel's timer slack of when they are
    due, not up to a millisecond late. Call it on the thread that will run the loop."""
    tighten_timer_slack()
    return asyncio.SelectorEventLoop(PreciseEpollSelector())


def tighten_timer_slack() -> bool:
    """Ask Linux to wake this thread within 1 µs of its timeouts (prctl PR_SET_TIMERSLACK);
    False, and nothing changed, where that is not available."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError) as exc:
        log.debug("no prctl, timer slack left as it is: %s", exc)
        return False
    result: int = prctl(PR_SET_TIMERSLACK, TIMER_SLACK_NS, 0, 0, 0)  # ctypes: an untyped call
    return result == 0
