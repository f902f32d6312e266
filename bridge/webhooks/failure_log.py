"""Failed webhook attempts at WARNING, at most one line per endpoint per interval.

Every attempt is logged at DEBUG (bridge.webhooks.sender), so at INFO a dead receiver would
not show at all; one WARNING a failure would flood the log with a busy account's retries. So
the first failure of an endpoint is logged at once (message id, event id, endpoint, what comes
next, the reason), later ones within ``interval`` are only counted, and the endpoint's next
line (a failure, or a delivery, after the interval) says how many were not logged.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from bridge.telemetry.logs import message_context

log = logging.getLogger("bridge.webhooks.sender")

FAILURE_LOG_INTERVAL = 60.0  # seconds: one WARNING line per endpoint at most this often
_MAX_ENDPOINTS = 10_000  # endpoints remembered; past it the quiet ones are forgotten

# what an attempt's result means for its event, as the line says it
NEXT = {"retry": "retry scheduled", "failed": "dead-lettered", "dead": "dead-lettered"}


class FailureLog:
    """Counts failed attempts per endpoint and logs them, rate-limited (thread-safe)."""

    def __init__(self, clock: Callable[[], float], interval: float = FAILURE_LOG_INTERVAL) -> None:
        self._clock, self._interval = clock, interval
        self._lock = threading.Lock()
        self._quiet_until: dict[str, float] = {}  # endpoint -> no line before this time
        self._held: dict[str, int] = {}  # endpoint -> failures not logged since its last line

    def failed(
        self, endpoint: str, event_id: str, message_id: str, result: str, reason: str
    ) -> None:
        """An attempt of ``event_id`` to ``endpoint`` failed; ``result`` is retry, failed
        (a final refusal) or dead (the retry period spent)."""
        now = self._clock()
        with self._lock:
            if now < self._quiet_until.get(endpoint, 0.0):
                self._held[endpoint] = self._held.get(endpoint, 0) + 1
                return
            held = self._held.pop(endpoint, 0)
            self._forget_quiet(now)
            self._quiet_until[endpoint] = now + self._interval
        log.warning(
            "webhook to %s failed (event %s, %s): %s%s",
            endpoint,
            event_id,
            NEXT.get(result, result),
            reason,
            self._also(held),
            extra=message_context(message_id),
        )

    def delivered(self, endpoint: str) -> None:
        """An attempt to ``endpoint`` succeeded: failures held back are logged now if the
        endpoint's interval is over (else by its next line)."""
        if endpoint not in self._held:  # the common case: no lock taken
            return
        now = self._clock()
        with self._lock:
            if now < self._quiet_until.get(endpoint, 0.0) or endpoint not in self._held:
                return
            held = self._held.pop(endpoint)
            self._quiet_until[endpoint] = now + self._interval
        log.warning("webhook to %s delivering again%s", endpoint, self._also(held))

    def _also(self, held: int) -> str:
        if not held:
            return ""
        return f" ({held} more failed attempt(s) to this endpoint not logged before this line)"

    def _forget_quiet(self, now: float) -> None:
        if len(self._quiet_until) < _MAX_ENDPOINTS:
            return
        for endpoint, until in list(self._quiet_until.items()):
            if until <= now and endpoint not in self._held:
                del self._quiet_until[endpoint]
