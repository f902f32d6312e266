"""Fixtures for the storage/accept tests (shared ones live in tests/conftest.py)."""

from __future__ import annotations

import contextlib
import threading
from decimal import Decimal

import pytest
from argon2 import PasswordHasher
from sqlalchemy import event

from bridge.redis.clients import make_redis
from bridge.service import BridgeService
from tests.harness.clock import Clock


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def fast_hasher():
    """argon2id with small cost parameters: same code path, fewer milliseconds per test."""
    return PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1)


@pytest.fixture
def service(bridge_config, db, redis_server, clock, fast_hasher):
    """A started BridgeService on a settable clock, its Redis client failing fast."""
    client = make_redis(redis_server.url)
    svc = BridgeService(
        bridge_config, db, client, clock=clock, run_sweeper=False, hasher=fast_hasher
    )
    svc.start()
    try:
        yield svc
    finally:
        svc.stop()
        client.close()


@pytest.fixture
def account(service):
    """An account with 100.00, default sender ACME, also allowed INFO."""
    return service.create_account(
        "acme",
        "s3cret-pass",
        balance=Decimal("100.00"),
        sender_id="ACME",
        allowed_sender_ids=["INFO"],
    )


@contextlib.contextmanager
def count_statements(engine, keep=None):
    """Collect the SQL statements sent while the block runs (executemany counts once): by
    this thread only, or by the threads for which ``keep()`` is true."""
    seen: list[str] = []
    me = threading.get_ident()
    if keep is None:

        def keep():
            return threading.get_ident() == me

    def before(conn, cursor, statement, parameters, context, executemany):
        if keep():
            seen.append(statement)

    event.listen(engine, "before_cursor_execute", before)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", before)
