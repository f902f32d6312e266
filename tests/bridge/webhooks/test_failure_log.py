"""Failed webhook attempts show at WARNING (message id, event id, endpoint, reason), one line
per endpoint per interval with a count of the ones held back, so a dead receiver is visible at
INFO without flooding the log: FailureLog on a settable clock, then the real sender against a
receiver that answers 503 to everything."""

from __future__ import annotations

import logging

from bridge.redis import keys
from bridge.webhooks.failure_log import FailureLog
from tests.bridge.webhooks.conftest import publish
from tests.harness.clock import Clock
from tests.harness.procs import wait_until

LOGGER = "bridge.webhooks.sender"
A, B = "http://a.example:80", "http://b.example:80"


def _lines(caplog) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == LOGGER and r.levelno == logging.WARNING and "webhook to" in r.getMessage()
    ]


def test_one_line_per_endpoint_per_interval_with_the_count_held_back(caplog):
    caplog.set_level(logging.INFO, logger=LOGGER)
    clock = Clock()
    failures = FailureLog(clock, interval=60)
    failures.failed(A, "evt_1", "m1", "retry", "HTTP 503")
    for n in range(2, 6):
        failures.failed(A, f"evt_{n}", "m1", "retry", "HTTP 503")
    failures.failed(B, "evt_b", "m2", "failed", "HTTP 404")  # another endpoint: its own line
    failures.delivered(A)  # within the interval: the count waits for A's next line
    assert _lines(caplog) == [
        "webhook to http://a.example:80 failed (event evt_1, retry scheduled): HTTP 503",
        "webhook to http://b.example:80 failed (event evt_b, dead-lettered): HTTP 404",
    ]
    first = next(r for r in caplog.records if "evt_1" in r.getMessage())
    assert getattr(first, "message_id") == "m1"  # noqa: B009  (a field set by extra=)

    clock.advance(61)
    failures.failed(A, "evt_6", "m1", "dead", "retry period spent; last: HTTP 503")
    clock.advance(30)
    failures.failed(A, "evt_7", "m1", "retry", "timed out")  # held: within the interval
    failures.delivered(A)  # held back still: the interval is not over
    clock.advance(31)
    failures.delivered(A)  # the endpoint recovered: the count held back is logged
    failures.delivered(A)  # nothing held any more: no line
    assert _lines(caplog)[2:] == [
        "webhook to http://a.example:80 failed (event evt_6, dead-lettered): retry period "
        "spent; last: HTTP 503 (4 more failed attempt(s) to this endpoint not logged before "
        "this line)",
        "webhook to http://a.example:80 delivering again (1 more failed attempt(s) to this "
        "endpoint not logged before this line)",
    ]


def test_a_dead_receiver_shows_at_warning_once_not_per_attempt(
    caplog, receiver, account, start_sender, redis_client
):
    caplog.set_level(logging.INFO, logger=LOGGER)
    account_id, _ = account()
    receiver.default = 503
    start_sender(webhook_retry_seconds=1.0, webhook_endpoint_pause_after=1000)
    publish(redis_client, account_id, receiver.url(), n=5, message_id="mdown")
    wait_until(lambda: redis_client.xlen(keys.webhooks_dead_key()) == 5, timeout=20)
    assert len(receiver.requests) > 10  # many failed attempts ...
    (line,) = _lines(caplog)  # ... one line within the minute
    host = receiver.url().split("/")[2]
    assert line.startswith(f"webhook to http://{host} failed (event evt_")
    assert line.endswith("retry scheduled): HTTP 503")
    (record,) = [r for r in caplog.records if r.getMessage() == line]
    assert getattr(record, "message_id") == "mdown"  # noqa: B009
