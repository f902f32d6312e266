"""Fixtures of the webhook sender tests: a real receiver, a real Redis, a migrated SQLite
database with accounts, and a started Sender (stopped after the test)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any, cast

import pytest

from bridge.config import Config
from bridge.redis import keys
from bridge.storage import webhook_secrets
from bridge.storage.accounts import create_account
from bridge.storage.db import Database, upgrade
from bridge.webhooks.events import encode_event
from bridge.webhooks.secret_cache import SecretCache
from bridge.webhooks.sender import Sender
from tests.harness.webhook_receiver import Receiver
from tests.harness.webhook_receiver import receiver as _receiver

FAST: dict[str, Any] = dict(  # retries in tens of milliseconds, so tests see many attempts quickly
    webhook_allow_networks=("127.0.0.0/8",),
    webhook_backoff_base_seconds=0.02,
    webhook_backoff_max_seconds=0.2,
    webhook_claim_idle_seconds=1.0,
    webhook_timeout_seconds=10.0,
    webhook_workers=16,
)


class _Hasher:  # argon2 is slow and beside the point here
    def hash(self, password: str) -> str:
        return "x"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with _receiver() as r:
        yield r


@pytest.fixture
def wh_db(tmp_path) -> Iterator[Database]:
    url = f"sqlite:///{tmp_path / 'bridge.db'}"
    upgrade(url)
    db = Database(url)
    try:
        yield db
    finally:
        db.dispose()


@pytest.fixture
def account(wh_db) -> Callable[[str], tuple[int, str]]:
    """Make an account; returns (id, its webhook secret)."""

    def make(name: str = "acme") -> tuple[int, str]:
        with wh_db.begin() as conn:
            account_id = create_account(
                conn, cast(Any, _Hasher()), name, "pw", now=datetime.now(UTC), currency="KES"
            )
            return account_id, webhook_secrets.ensure(conn, account_id).current

    return make


@pytest.fixture
def wh_config(redis_server, wh_db) -> Config:
    return Config(database_url=wh_db.url, redis_url=redis_server.url, **FAST)


@pytest.fixture
def start_sender(wh_config, redis_client, wh_db) -> Iterator[Callable[..., Sender]]:
    """Start a Sender (config changes as keyword arguments); every one is stopped after."""
    started: list[Sender] = []

    def start(resolver=None, **changes) -> Sender:
        config = wh_config.replace(**changes)
        sender = Sender(config, redis_client, SecretCache(wh_db, ttl=0.2), resolver=resolver)
        sender.start()
        started.append(sender)
        return sender

    yield start
    for sender in started:
        sender.stop()


def publish(redis, account_id: int, url: str, n: int = 1, prefix: str = "evt", **kw) -> list[str]:
    """XADD n events as the producer would; their ids."""
    ids = []
    pipe = redis.pipeline()
    for i in range(n):
        event_id = f"{prefix}_{i}"
        body = json.dumps({"type": "message.delivered", "data": {"n": i}}, separators=(",", ":"))
        pipe.xadd(
            keys.webhooks_stream_key(),
            encode_event(event_id, account_id, url, "message", body, kw.get("message_id", "")),
        )
        ids.append(event_id)
    pipe.execute()
    return ids
