"""Rates of a bind's counters over a trailing window (bridge.delivery.rates)."""

from __future__ import annotations

from bridge.delivery.rates import RateMeter


def test_rates_cover_the_trailing_window():
    meter = RateMeter(window=10)
    assert meter.update(0, {"submits": 0}) == {"submits": 0.0}  # one sample: no rate yet
    assert meter.update(5, {"submits": 50}) == {"submits": 10.0}
    assert meter.update(10, {"submits": 150}) == {"submits": 15.0}
    # at 20 the sample at 10 is the oldest kept: (350 - 150) / 10
    assert meter.update(20, {"submits": 350}) == {"submits": 20.0}


def test_a_counter_that_restarts_restarts_the_history():
    meter = RateMeter(window=10)
    meter.update(0, {"submits": 500})
    assert meter.update(1, {"submits": 3}) == {"submits": 0.0}  # a new session, never negative
    assert meter.update(2, {"submits": 13}) == {"submits": 10.0}
