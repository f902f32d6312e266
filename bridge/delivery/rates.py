"""Per-second rates of a bind's running counters, for its status heartbeat.

The worker computes them from its own counters (the difference over a trailing window), so
every reader of the heartbeat (the API, the CLI, the status page) shows the same numbers
without keeping history of its own.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping

RATE_WINDOW = 10.0  # seconds of history a rate covers (at least, once that much exists)


class RateMeter:
    """Rates of a few counters that only grow; a counter going down (a new session) restarts
    the history instead of reporting a negative rate."""

    def __init__(self, window: float = RATE_WINDOW) -> None:
        self.window = window
        self._samples: deque[tuple[float, dict[str, int]]] = deque()

    def update(self, now: float, values: Mapping[str, int]) -> dict[str, float]:
        """Record ``values`` at ``now`` (seconds, any monotonic clock); the rates per second
        since the oldest sample kept (0.0 until there are two samples)."""
        values = dict(values)
        if self._samples and any(values[k] < self._samples[-1][1].get(k, 0) for k in values):
            self._samples.clear()
        self._samples.append((now, values))
        while len(self._samples) > 2 and self._samples[1][0] <= now - self.window:
            self._samples.popleft()
        start, first = self._samples[0]
        elapsed = now - start
        return {
            k: round((v - first.get(k, 0)) / elapsed, 2) if elapsed > 0 else 0.0
            for k, v in values.items()
        }

    def reset(self) -> None:
        self._samples.clear()
