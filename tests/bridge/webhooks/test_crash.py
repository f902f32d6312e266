"""A real `smpp-bridge webhooks` process SIGKILLed mid-batch loses no event: another sender
claims what it held, every event arrives, duplicates only ever carry the same webhook-id; and
the names of gone senders are forgotten once they hold nothing."""

from __future__ import annotations

import collections
import os
import signal
import sys

import pytest
from standardwebhooks import Webhook

from bridge.redis import keys
from bridge.webhooks.secret_cache import SecretCache
from bridge.webhooks.sender import Sender
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


def test_gone_senders_names_are_forgotten_once_they_hold_nothing(
    receiver, account, start_sender, redis_client, wh_config, wh_db
):
    """Every restart reads under a new consumer name; a name that holds no entry and has not
    read for forget_after is removed from the group, one that still holds entries is kept."""
    account_id, _ = account()
    first = start_sender()
    publish(redis_client, account_id, receiver.url(), n=1, prefix="one")
    wait_until(lambda: not redis_client.xlen(keys.webhooks_stream_key()), message="delivered")
    first.stop()
    publish(redis_client, account_id, receiver.url(), n=1, prefix="held")
    redis_client.xreadgroup(  # a sender that died holding an entry
        keys.WEBHOOKS_GROUP, "holder", {keys.webhooks_stream_key(): ">"}, count=1
    )
    wait_until(
        lambda: min(c["idle"] for c in _consumers(redis_client).values()) >= 400,
        message="both idle 0.4 s",
    )
    later = wh_config.replace(webhook_claim_idle_seconds=600.0)  # nothing claimed meanwhile
    second = Sender(later, redis_client, SecretCache(wh_db), forget_after=0.3)
    second.start()
    try:
        wait_until(lambda: first.consumer not in _consumers(redis_client), message="forgotten")
        assert _consumers(redis_client)["holder"]["pending"] == 1  # kept: it holds an entry
    finally:
        second.stop()


def _consumers(redis) -> dict[str, dict]:
    return {
        c["name"].decode(): c
        for c in redis.xinfo_consumers(keys.webhooks_stream_key(), keys.WEBHOOKS_GROUP)
    }


class _WriterDies(Sender):
    def _write_loop(self) -> None:
        raise RuntimeError("the writer's own failure")  # as an unexpected bug would end it


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_a_sender_whose_writer_died_stops_instead_of_acknowledging_nothing(
    wh_config, redis_client, wh_db
):
    """Outcomes are acknowledged by the writer thread alone: a process whose writer is gone
    would hold every event forever, so it must exit (the supervisor restarts it)."""

    sender = _WriterDies(wh_config, redis_client, SecretCache(wh_db))
    failure = _run_until_it_stops(sender, "run() went on without its writer")
    assert "webhooks-writer died" in str(failure)


class _SettleFails(Sender):
    def _settle(self, endpoint, item, outcome) -> None:
        raise RuntimeError("storing the outcome failed")  # as an unexpected bug would


def test_a_sender_whose_webhook_thread_failed_after_its_post_stops_and_another_delivers(
    receiver, account, wh_config, redis_client, wh_db
):
    """An error after the POST (storing its outcome) would leave the event held by a live
    process that keeps it fresh, never retried, and the endpoint's slot taken: the sender stops
    instead (the supervisor restarts it), and the event is taken over and delivered."""

    account_id, _secret = account()
    (event_id,) = publish(redis_client, account_id, receiver.url(), n=1)
    broken = _SettleFails(wh_config, redis_client, SecretCache(wh_db), consumer="broken")
    failure = _run_until_it_stops(broken, "run() went on with a failed webhook thread")
    assert "storing the outcome failed" in str(failure)
    assert receiver.accepted_ids() == [event_id]  # it was POSTed, its outcome not stored
    fixed = Sender(wh_config, redis_client, SecretCache(wh_db), consumer="fixed")
    fixed.start()
    try:
        wait_until(
            lambda: (
                redis_client.xpending(keys.webhooks_stream_key(), keys.WEBHOOKS_GROUP)["pending"]
                == 0
                and redis_client.xlen(keys.webhooks_stream_key()) == 0
            ),
            timeout=30,
            message="taken over and acknowledged",
        )
    finally:
        fixed.stop()
    assert receiver.accepted_ids() == [event_id, event_id]  # at least once, same webhook-id


def _run_until_it_stops(sender: Sender, went_on: str) -> RuntimeError:
    """``sender.run()`` in a thread, which must end on its own within 20 s with the
    RuntimeError returned (else ``went_on``); stopped in any case."""
    import threading

    stop = threading.Event()
    failure: list[RuntimeError] = []

    def run() -> None:
        try:
            sender.run(stop)
        except RuntimeError as exc:
            failure.append(exc)

    runner = threading.Thread(target=run, daemon=True)
    runner.start()
    try:
        runner.join(20)
        assert not runner.is_alive(), went_on
        assert failure, "run() ended without an error"
        return failure[0]
    finally:
        stop.set()
        runner.join(20)
