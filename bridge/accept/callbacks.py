"""The callback URL and event choice of a send, checked before anything is charged.

A callback URL must be http(s) and reach a public address (the sender's SSRF rules,
:func:`bridge.webhooks.ssrf.check_target`): loopback, private, link-local (the cloud metadata
address 169.254.169.254 included), multicast, reserved and names resolving to any of them are
refused with a 400 naming the problem, unless the operator's ``webhook_allow_networks`` lists
the network. A name that does not resolve at send time (DNS down, a record not published yet)
is accepted: the sender resolves and checks it again at every delivery attempt, and retries.

A name's verdict is kept for ``ttl`` seconds, so a client sending many requests with the same
callback host costs one DNS lookup a minute, not one per request.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from urllib.parse import urlsplit

from bridge.errors import InvalidInput
from bridge.webhooks.ssrf import (
    Resolver,
    TargetError,
    TargetUnresolvable,
    check_target,
    parse_networks,
)

EVENTS_FINAL, EVENTS_ALL = "final", "all"
CALLBACK_EVENTS = (EVENTS_FINAL, EVENTS_ALL)
CALLBACK_EVENTS_ERROR = "callback_events must be final or all."
VERDICT_TTL = 60.0  # seconds a host's verdict is reused
_CACHE_MAX = 4096


def callback_events(value: str | None, default: str | None) -> str:
    """The events a send's callback gets: ``value``, else the account's ``default``, else
    "final"; InvalidInput for anything but final/all."""
    chosen = value if value not in (None, "") else (default or EVENTS_FINAL)
    if chosen not in CALLBACK_EVENTS:
        raise InvalidInput(CALLBACK_EVENTS_ERROR, field="callback_events")
    return chosen


class CallbackChecker:
    """``checker(url)``: None if webhooks may be POSTed to ``url``, else InvalidInput naming
    callback_url and the reason. Thread-safe."""

    def __init__(
        self,
        allow: Iterable[str] = (),
        *,
        resolver: Resolver | None = None,
        ttl: float = VERDICT_TTL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._allow = parse_networks(list(allow))
        self._resolver, self._ttl, self._clock = resolver, ttl, clock
        self._verdicts: dict[tuple[str, str], tuple[float, str | None]] = {}
        self._lock = threading.Lock()

    def __call__(self, url: str) -> None:
        problem = self.problem(url)
        if problem is not None:
            raise InvalidInput(problem, field="callback_url")

    def problem(self, url: str) -> str | None:
        """What is wrong with ``url`` as a callback target, or None."""
        try:
            parts = urlsplit(url)
            key = (parts.scheme.lower(), parts.netloc.lower())  # the verdict ignores the path
        except ValueError:
            key = ("", url)
        now = self._clock()
        with self._lock:
            cached = self._verdicts.get(key)
        if cached is not None and cached[0] > now:
            return cached[1]
        try:
            check_target(url, self._allow, self._resolver)
            verdict = None
        except TargetUnresolvable:  # DNS down or a new name: the sender checks at every attempt
            verdict = None
        except TargetError as exc:
            verdict = str(exc)
        with self._lock:
            if len(self._verdicts) >= _CACHE_MAX:
                self._verdicts.clear()
            self._verdicts[key] = (now + self._ttl, verdict)
        return verdict
