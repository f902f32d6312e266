"""Transactional outbox: Redis down at accept time, the sweeper re-enqueues exactly once."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from sqlalchemy import func, select

from bridge.accept.sweeper import Sweeper
from bridge.redis import keys as redis_keys
from bridge.redis import outbox
from bridge.redis.clients import make_redis
from bridge.service import BridgeService
from bridge.storage.models import idempotency_keys, messages
from tests.harness.procs import wait_until


def states(db):
    with db.connect() as conn:
        return dict(conn.execute(select(messages.c.id, messages.c.state)).all())


def stream_ids(client):
    return [
        outbox.decode_entry(f).message_id for _id, f in client.xrange(redis_keys.OUTBOUND_STREAM)
    ]


def test_redis_down_at_accept_then_the_sweeper_enqueues_exactly_once(
    service, db, account, redis_server, clock, caplog
):
    redis_server.stop()
    body = service.send(account.id, "0701234567,0711111111", "while redis is down").body
    assert body["status"] == "accepted" and body["balance"] == "98.40"
    assert "not enqueued" in caplog.text
    ids = [m["message_id"] for m in body["messages"]]
    service.flusher.flush()
    assert set(states(db).values()) == {"accepted"}

    redis_server.start()  # same port, empty stream
    client = redis_server.client()
    try:
        assert service.sweep_once() == 0  # within the grace period: not yet
        assert client.xlen(redis_keys.OUTBOUND_STREAM) == 0
        clock.advance(31)
        assert service.sweep_once() == 2
        assert sorted(stream_ids(client)) == sorted(ids)
        assert set(states(db).values()) == {"queued"}
        assert service.sweep_once() == 0
        assert sorted(stream_ids(client)) == sorted(ids)  # still once each
    finally:
        client.close()


def test_a_normal_send_is_never_swept(service, db, account, redis_client, clock):
    body = service.send(account.id, "0701234567", "hi").body
    wait_until(lambda: set(states(db).values()) == {"queued"}, timeout=10)
    clock.advance(3600)
    assert service.sweep_once() == 0
    assert stream_ids(redis_client) == [body["messages"][0]["message_id"]]


def test_only_the_lock_holder_sweeps(service, db, account, redis_server, redis_client, clock):
    redis_server.stop()
    service.send(account.id, "0701234567", "hi")
    redis_server.start()
    clock.advance(31)
    redis_client.set(redis_keys.SWEEPER_LOCK, "another-process", px=60_000)
    assert service.sweep_once() == 0
    assert redis_client.xlen(redis_keys.OUTBOUND_STREAM) == 0
    assert redis_client.get(redis_keys.SWEEPER_LOCK) == b"another-process"  # not ours to drop
    redis_client.delete(redis_keys.SWEEPER_LOCK)
    assert service.sweep_once() == 1
    assert redis_client.get(redis_keys.SWEEPER_LOCK) is None  # released after the pass


def test_sweeping_is_bounded_per_pass(service, db, account, redis_server, bridge_config, clock):
    redis_server.stop()
    service.send(account.id, ",".join(f"07{i:08d}" for i in range(10)), "hi")
    redis_server.start()
    clock.advance(31)
    client = make_redis(redis_server.url)
    try:
        sweeper = Sweeper(bridge_config, db, client, clock=clock, batch_size=3, max_batches=2)
        assert sweeper.sweep_once() == 6
        assert sweeper.sweep_once() == 4
        assert sweeper.sweep_once() == 0
        assert len(set(stream_ids(client))) == client.xlen(redis_keys.OUTBOUND_STREAM) == 10
    finally:
        client.close()


def test_the_sweeper_purges_old_idempotency_answers(service, db, account, clock):
    service.send(account.id, "0701234567", "hi", idempotency_key="old")
    clock.advance(86_400 + 1)
    service.send(account.id, "0701234567", "hi", idempotency_key="new")
    service.sweep_once()
    with db.connect() as conn:
        keys = conn.execute(select(idempotency_keys.c.key)).scalars().all()
    assert keys == ["new"]


def test_the_background_sweeper_runs_in_the_service(bridge_config, db, redis_server, fast_hasher):
    """run_sweeper=True (the API process default): no one calls sweep_once by hand."""
    config = bridge_config.replace(sweeper_grace_seconds=0.0, sweeper_interval_seconds=0.05)
    client = make_redis(redis_server.url)
    svc = BridgeService(config, db, client, hasher=fast_hasher)
    try:
        account = svc.create_account("bg", "pw", balance=Decimal(10))
        redis_server.stop()
        svc.start()
        body = svc.send(account.id, "0701234567", "hi").body
        redis_server.start()
        wait_until(
            lambda: client.xlen(redis_keys.OUTBOUND_STREAM) == 1,
            timeout=20,
            message="the background sweeper to re-enqueue the message",
        )
        assert stream_ids(client) == [body["messages"][0]["message_id"]]
        wait_until(lambda: set(states(db).values()) == {"queued"}, timeout=10)
    finally:
        svc.stop()
        client.close()


def test_stream_entries_carry_what_the_worker_needs(service, db, account, redis_client, clock):
    service.send(account.id, "0701234567", "Jambo €", sender_id="INFO")
    (entry,) = [outbox.decode_entry(f) for _i, f in redis_client.xrange(redis_keys.OUTBOUND_STREAM)]
    with db.connect() as conn:
        row = conn.execute(select(messages)).mappings().one()
    assert (
        entry.message_id,
        entry.batch_id,
        entry.account_id,
        entry.destination,
        entry.sender_id,
        entry.text,
        entry.encoding,
        entry.parts,
        entry.price,
    ) == (
        row["id"],
        row["batch_id"],
        account.id,
        "+254701234567",
        "INFO",
        "Jambo €",
        "gsm",
        1,
        Decimal("0.8000"),
    )
    assert datetime.fromtimestamp(entry.expires_at, UTC) == row["expires_at"]
    assert redis_client.xinfo_stream(redis_keys.OUTBOUND_STREAM)["length"] == 1
    with db.connect() as conn:
        assert conn.execute(select(func.count()).select_from(messages)).scalar() == 1
