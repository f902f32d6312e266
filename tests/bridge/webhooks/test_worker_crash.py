"""A real `smpp-bridge worker` SIGKILLed after committing state changes and before their
webhook events reached the stream loses none of them: the next worker's outbox sweep relays
every one (SQLite and PostgreSQL, the simulated SMSC over real sockets).

The window is made certain rather than hoped for: the sb:webhooks key is a plain string while
the first worker runs, so every XADD fails after its commit, exactly as if the process had died
between the two."""

from __future__ import annotations

import json
import os
import signal

import pytest
from sqlalchemy import func, select, update

from bridge.redis import keys
from bridge.storage.models import messages, webhook_outbox
from bridge.webhooks.events import decode_event
from tests.bridge.delivery.conftest import bridge, sim, spawn_worker  # noqa: F401 (fixtures)
from tests.harness.procs import wait_until
from tests.harness.simulator import make_simulator  # noqa: F401 (fixture)

pytestmark = pytest.mark.slow
N = 200
URL = "https://hooks.example.com/sms"
SWEEP = {"webhook_sweep_interval_seconds": 0.5, "webhook_sweep_grace_seconds": 1.0}


def _outbox(db) -> int:
    with db.connect() as conn:
        return conn.execute(select(func.count()).select_from(webhook_outbox)).scalar_one()


def _events(redis) -> list:
    if redis.type(keys.webhooks_stream_key()) != b"stream":
        return []
    return [decode_event(f) for _, f in redis.xrange(keys.webhooks_stream_key())]


def test_a_worker_killed_between_commit_and_enqueue_loses_no_event(
    bridge,  # noqa: F811
    spawn_worker,  # noqa: F811
):
    ids = bridge.send(N)
    with bridge.db.begin() as conn:  # as a send with callback_url would have stored them
        conn.execute(
            update(messages)
            .where(messages.c.id.in_(ids))
            .values(callback_url=URL, callback_events="final")
        )
    bridge.redis.set(keys.webhooks_stream_key(), "not a stream: every XADD fails")
    first = spawn_worker(worker=SWEEP)
    bridge.wait_final(N, timeout=60, states={"delivered"})
    wait_until(lambda: _outbox(bridge.db) == N, timeout=30, message=f"{N} outbox rows")
    os.killpg(first.pid, signal.SIGKILL)
    first.wait(10)
    assert _events(bridge.redis) == []  # committed, never enqueued
    bridge.redis.delete(keys.webhooks_stream_key())
    spawn_worker(worker=SWEEP)
    wait_until(lambda: _outbox(bridge.db) == 0, timeout=30, message="the sweep to relay all")
    events = _events(bridge.redis)
    assert sorted(e.message_id for e in events) == sorted(ids)  # every one, exactly once here
    assert {e.id for e in events} == {f"evt_{mid}_delivered" for mid in ids}
    assert all(json.loads(e.body)["data"]["state"] == "delivered" for e in events)
    assert all(e.url == URL and e.account_id == bridge.account_id for e in events)
