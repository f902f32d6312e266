"""A Redis that accepts connections but never answers (a SIGSTOPped redis-server, as a hung or
swapping server) under the app as app_from_environment wires it (open_service, limiter_client):
a send still answers 200 within a bounded time, and what it accepted is enqueued by the sweeper
once Redis answers again (the transactional outbox, docs/operations.md). A restarted Redis (a
blip: the kept connections are dropped) still gets the send's XADD, by the client's retry."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from decimal import Decimal
from types import SimpleNamespace

import pytest
from falcon import testing
from sqlalchemy import select

from api.app import create_app, limiter_client
from bridge.redis import keys as redis_keys
from bridge.redis import outbox
from bridge.service import open_service
from bridge.storage.models import messages

SEND = "/api/v2/sms/send"


@pytest.fixture
def wired(bridge_config, db) -> Iterator[SimpleNamespace]:  # db: migrated
    """The app over open_service and limiter_client (no sweeper thread: tests sweep), with an
    account's key headers and a send already made, so connections are kept."""
    config = bridge_config.replace(sweeper_grace_seconds=0)
    service = open_service(config, run_sweeper=False)
    limiter = limiter_client(config)
    service.start()
    try:
        account = service.create_account("hung", "s3cret-pass", balance=Decimal("10.00"))
        headers = {"X-API-Key": service.generate_key(account.id, expiry_days=1).api_key}
        client = testing.TestClient(create_app(config, service, limiter))
        wired = SimpleNamespace(service=service, client=client, headers=headers)
        assert _send(wired, "redis answers").status_code == 200
        yield wired
    finally:
        service.close()
        if limiter is not None:
            limiter.close()


def _send(wired: SimpleNamespace, text: str):
    return wired.client.simulate_post(
        SEND, headers=wired.headers, json={"numbers": "0701234567", "message_body": text}
    )


def _queued(redis_client) -> set[str]:
    stream = redis_client.xrange(redis_keys.OUTBOUND_STREAM)
    return {outbox.decode_entry(fields).message_id for _id, fields in stream}


def test_a_hung_redis_costs_a_send_a_bounded_wait_and_loses_nothing(
    wired, db, redis_server, redis_client
):
    """Before: ~16 s (the XADD's client read 5 s three times, after the limiter's 2 x 0.5 s)."""
    assert redis_server.proc is not None
    redis_server.proc.send_signal(signal.SIGSTOP)
    try:
        started = time.monotonic()
        hung = _send(wired, "redis hangs")
        took = time.monotonic() - started
    finally:
        redis_server.proc.send_signal(signal.SIGCONT)
    assert hung.status_code == 200, hung.text  # the database committed: accepted
    assert took < 5, f"a send took {took:.1f}s against a hung Redis"

    (message_id,) = [m["message_id"] for m in hung.json["messages"]]
    wired.service.sweep_once()  # Redis answers again: the sweeper enqueues what the send missed
    with db.connect() as conn:
        state = conn.execute(select(messages.c.state).where(messages.c.id == message_id))
        assert state.scalar_one() == "queued"
    assert message_id in _queued(redis_client)


def test_a_restarted_redis_still_gets_the_sends_xadd(wired, redis_server, redis_client):
    """A dropped connection is retried (at once, on a new one): a blip does not leave the
    send to the sweeper."""
    redis_server.restart()  # same port; the kept connections are closed under the clients
    sent = _send(wired, "after a restart")
    assert sent.status_code == 200, sent.text
    (message_id,) = [m["message_id"] for m in sent.json["messages"]]
    assert message_id in _queued(redis_client)
