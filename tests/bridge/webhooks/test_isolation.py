"""One hanging endpoint never delays another account's webhooks."""

from __future__ import annotations

import time

from tests.bridge.webhooks.conftest import publish
from tests.harness.procs import wait_until
from tests.harness.webhook_receiver import HANG, receiver


def test_a_hanging_receiver_does_not_delay_another_accounts_webhooks(
    account, start_sender, redis_client
):
    slow_id, _ = account("slow")
    fast_id, _ = account("fast")
    with receiver(default=HANG) as slow, receiver() as fast:
        start_sender(webhook_timeout_seconds=30.0, webhook_endpoint_concurrency=4)
        publish(redis_client, slow_id, slow.url(), n=200, prefix="slow")
        wait_until(lambda: len(slow.requests) == 4, message="the slow endpoint's 4 slots busy")
        started = time.monotonic()
        publish(redis_client, fast_id, fast.url(), n=50, prefix="fast")
        wait_until(lambda: len(fast.accepted()) == 50, timeout=5, message="fast events")
        took = time.monotonic() - started
        print(f"\n50 events to a healthy endpoint behind 200 to a hung one: {took:.3f} s")
        assert took < 1.0  # the reader waits at most ~0.25 s before parking the hung one's events
        assert len(slow.requests) == 4  # never more than its concurrency cap in flight
        slow.release()
        wait_until(lambda: len(slow.accepted()) == 200, timeout=30, message="slow events")
