"""A real `smpp-bridge webhooks` process SIGKILLed mid-batch loses no event: another sender
claims what it held, every event arrives, duplicates only ever carry the same webhook-id."""

from __future__ import annotations

import collections
import os
import signal
import sys

from standardwebhooks import Webhook

from bridge.redis import keys
from tests.bridge.webhooks.conftest import publish
from tests.harness.procs import running, wait_until

N = 300


def _sender_env(wh_config) -> dict[str, str]:
    return {
        **os.environ,
        "DATABASE_URL": wh_config.database_url,
        "REDIS_URL": wh_config.redis_url,
        "BRIDGE_WEBHOOK_ALLOW_NETWORKS": "127.0.0.0/8",
        "BRIDGE_WEBHOOK_CLAIM_IDLE": "1",
        "BRIDGE_WEBHOOK_BACKOFF_BASE": "0.05",
        "PYTHONUNBUFFERED": "1",
    }


def test_a_sigkilled_sender_loses_nothing(receiver, account, wh_config, redis_client, tmp_path):
    account_id, secret = account()
    receiver.delay = 0.01  # slow enough that the kill lands mid-batch
    ids = publish(redis_client, account_id, receiver.url(), n=N)
    argv = [sys.executable, "-m", "bridge.cli", "webhooks", "--consumer", "first"]
    env = _sender_env(wh_config)
    with running(argv, ready=lambda: True, env=env, log_path=str(tmp_path / "first.log")) as p:
        wait_until(lambda: len(receiver.accepted()) >= 60, timeout=30, message="60 delivered")
        os.killpg(p.pid, signal.SIGKILL)
        p.wait(10)
    delivered_before = len(receiver.accepted())
    pending = redis_client.xpending(keys.webhooks_stream_key(), keys.WEBHOOKS_GROUP)
    assert pending["pending"] > 0  # it died holding events
    argv[-1] = "second"
    with running(argv, ready=lambda: True, env=env, log_path=str(tmp_path / "second.log")):
        wait_until(
            lambda: set(receiver.accepted_ids()) == set(ids), timeout=60, message="all events"
        )
        wait_until(
            lambda: (
                redis_client.xpending(keys.webhooks_stream_key(), keys.WEBHOOKS_GROUP)["pending"]
                == 0
            ),
            message="nothing pending",
        )
    counts = collections.Counter(receiver.accepted_ids())
    duplicates = sum(c - 1 for c in counts.values())
    print(f"\nkilled after {delivered_before} of {N}; {duplicates} duplicate deliveries")
    assert set(counts) == set(ids)
    assert duplicates <= pending["pending"]  # only events the dead sender held
    hook = Webhook(secret)
    for request in receiver.accepted():
        hook.verify(request.body, request.headers)
    assert redis_client.xlen(keys.webhooks_stream_key()) == 0
    assert redis_client.xlen(keys.webhooks_dead_key()) == 0
