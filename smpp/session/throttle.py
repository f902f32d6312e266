"""Pacing for one bind: a submits-per-second cap, the back-off after ESME_RTHROTTLED, and the
reconnect back-off. Pure arithmetic over an injected clock's readings, so tests drive it exactly.
"""

from __future__ import annotations

import random


class RateLimiter:
    """Spaces submits at most ``rate`` per second, allowing a burst of ``burst`` back to back.

    A virtual-schedule (GCRA) form of a token bucket: ``_next`` is the earliest time the next
    submit may go. Taking a slot pushes it 1/rate later; an idle limiter never lets more than
    ``burst`` slots bank up. Over any window of T seconds at most ``rate * T + burst`` submits
    go, so a small burst keeps a 10 s average within a fraction of a percent of ``rate``.
    ``rate=None`` means uncapped.
    """

    def __init__(self, rate: float | None, burst: int | None = None) -> None:
        if rate is not None and rate <= 0:
            raise ValueError(f"tps must be a positive number or None (uncapped), not {rate!r}")
        self.rate = rate
        self._interval = 1.0 / rate if rate else 0.0
        # A burst of ~50 ms worth of submits (at least one): a loop that wakes up to 50 ms late
        # (a loaded machine, a slow callback) catches up instead of losing rate.
        self.burst = burst if burst is not None else max(1, int((rate or 0) / 20))
        self._next: float | None = None
        self._paused_until = 0.0

    def delay(self, now: float) -> float:
        """Seconds until a submit may go (0.0 when one may go now)."""
        wait = max(0.0, self._paused_until - now)
        if self.rate is None or self._next is None:
            return wait
        ahead = self._next - (self.burst - 1) * self._interval - now
        return max(wait, ahead if ahead > 1e-9 else 0.0)  # ignore float dust

    def take(self, now: float) -> bool:
        """Claim a slot for a submit at ``now``; False when the caller must wait ``delay(now)``."""
        if self.delay(now) > 0.0:
            return False
        if self.rate is not None:
            start = self._next if self._next is not None and self._next > now else now
            self._next = start + self._interval
        return True

    def pause(self, until: float) -> None:
        """Send nothing before ``until`` (the SMSC said ESME_RTHROTTLED)."""
        self._paused_until = max(self._paused_until, until)


class Backoff:
    """Exponential back-off with full jitter: attempt n waits uniform(0, min(max, min*2**n)),
    never less than ``minimum``. ``reset()`` after a success starts again from ``minimum``."""

    def __init__(self, minimum: float, maximum: float, rng: random.Random | None = None) -> None:
        if not 0 < minimum <= maximum:
            raise ValueError(f"back-off needs 0 < min <= max, got min={minimum!r} max={maximum!r}")
        self.minimum = minimum
        self.maximum = maximum
        self._rng = rng or random.Random()
        self.attempts = 0

    def next_delay(self) -> float:
        """The wait before the next attempt; each call counts as one more failure."""
        ceiling = min(self.maximum, self.minimum * (2 ** min(self.attempts, 32)))
        self.attempts += 1
        return max(self.minimum, self._rng.uniform(0.0, ceiling))

    def reset(self) -> None:
        self.attempts = 0
