"""The pure pacing parts of the session: the submits-per-second cap, the reconnect back-off and
the window's deadline bookkeeping, driven with exact, injected times."""

from __future__ import annotations

import random
from concurrent.futures import Future

import pytest

from smpp.session.submit import SubmitRequest
from smpp.session.throttle import Backoff, RateLimiter
from smpp.session.window import Pending, Window


def _run_limiter(rate: float, seconds: float, step: random.Random, demand: float) -> list[float]:
    """Times at which a caller that always has work (polling at random 0..2/demand s gaps, as
    a busy select loop would) gets a slot."""
    limiter, now, taken = RateLimiter(rate), 0.0, []
    while now < seconds:
        while limiter.take(now):
            taken.append(now)
        wait = limiter.delay(now)
        now += max(wait, step.random() * 2 / demand)
    return taken


@pytest.mark.parametrize("rate", [50, 333, 1000, 4000])
def test_rate_cap_holds_within_3_percent_over_10_seconds(rate):
    taken = _run_limiter(rate, 10.0, random.Random(rate), demand=rate * 3)
    assert abs(len(taken) - rate * 10) <= rate * 10 * 0.03
    # ...and in every 1 s slice too, not just on average (bursts stay small).
    for second in range(10):
        in_slice = sum(second <= t < second + 1 for t in taken)
        assert in_slice <= rate + RateLimiter(rate).burst


def test_rate_cap_with_a_slow_poller_never_exceeds_rate_plus_burst():
    # A loop that wakes only every 40 ms (a loaded machine) catches up in bursts of at most
    # `burst` (50 ms worth), so it neither loses rate nor exceeds it.
    limiter = RateLimiter(1000)
    now, taken = 0.0, 0
    while now < 10.0:
        while limiter.take(now):
            taken += 1
        now += 0.040
    assert taken <= 1000 * 10 + limiter.burst
    assert taken >= 1000 * 10 * 0.97 - limiter.burst


def test_idle_limiter_banks_at_most_one_burst():
    limiter = RateLimiter(100, burst=3)
    assert limiter.take(0.0)
    now = 100.0  # long idle
    assert [limiter.take(now) for _ in range(5)] == [True, True, True, False, False]
    assert limiter.delay(now) == pytest.approx(0.01)


def test_uncapped_limiter_always_takes_but_honours_a_pause():
    limiter = RateLimiter(None)
    assert all(limiter.take(0.0) for _ in range(1000))
    limiter.pause(until=5.0)
    assert not limiter.take(4.9)
    assert limiter.delay(4.0) == pytest.approx(1.0)
    assert limiter.take(5.0)


def test_pause_after_throttled_holds_a_capped_limiter_too():
    limiter = RateLimiter(10)
    limiter.pause(until=2.0)
    assert limiter.delay(0.0) == pytest.approx(2.0)
    assert limiter.take(2.0)


def test_rate_must_be_positive():
    with pytest.raises(ValueError, match="positive"):
        RateLimiter(0)


def test_backoff_grows_exponentially_with_jitter_and_resets():
    backoff = Backoff(0.5, 8.0, random.Random(7))
    delays = [backoff.next_delay() for _ in range(12)]
    ceilings = [min(8.0, 0.5 * 2**n) for n in range(12)]
    assert all(0.5 <= d <= c for d, c in zip(delays, ceilings, strict=True))
    assert len(set(delays)) > 6  # jitter: not one fixed sequence
    assert max(delays[6:]) > 2.0  # it does grow
    backoff.reset()
    assert backoff.next_delay() == 0.5  # attempt 0: ceiling is the minimum


def test_backoff_rejects_nonsense():
    with pytest.raises(ValueError):
        Backoff(2.0, 1.0)


def _pending(deadline: float) -> Pending:
    return Pending(Future(), SubmitRequest("a", "b", b""), deadline, 0)


def test_window_counts_room_and_expires_in_deadline_order():
    window = Window(3)
    for seq, deadline in ((7, 1.0), (8, 2.0), (9, 3.0)):
        window.add(seq, _pending(deadline))
    assert window.free == 0
    popped = window.pop(8)
    assert popped is not None and popped.deadline == 2.0
    assert window.pop(8) is None  # answered twice / after expiry: unknown
    assert window.next_deadline() == 1.0
    assert [p.deadline for p in window.expired(2.5)] == [1.0]
    assert window.free == 2 and len(window) == 1
    assert [p.deadline for p in window.drain()] == [3.0]
    assert window.next_deadline() is None


def test_an_answered_entry_frees_its_slot_but_is_still_handed_over():
    """A batch of responses frees its slots before it is acted on (the session refills first);
    until pop() takes them, answered entries never expire and a drain still returns them."""
    window = Window(2)
    window.add(7, _pending(1.0))
    window.add(8, _pending(2.0))
    assert window.answered(7) and not window.answered(7) and not window.answered(99)
    assert (window.free, len(window), window.next_deadline()) == (1, 2, 2.0)
    assert [p.deadline for p in window.expired(5.0)] == [2.0]  # the answered one stays
    popped = window.pop(7)
    assert popped is not None and popped.deadline == 1.0 and window.pop(7) is None
    window.add(9, _pending(3.0))
    assert window.answered(9)
    assert [p.deadline for p in window.drain()] == [3.0] and len(window) == 0


def test_window_size_must_be_positive():
    with pytest.raises(ValueError):
        Window(0)
