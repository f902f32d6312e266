"""Shared fixtures: a real redis-server, a throwaway PostgreSQL cluster, and database URLs.

Area-specific fixtures live in the conftest.py of each tests/ sub-folder.
"""

from __future__ import annotations

import os

import pytest

from tests.harness.postgres import postgres_cluster
from tests.harness.redis_server import redis_server as _redis_server


@pytest.fixture
def redis_server(tmp_path):
    """A fresh redis-server on a free port (AOF on), stopped after the test."""
    with _redis_in(tmp_path) as server:
        yield server


def _redis_in(tmp_path):
    d = tmp_path / "redis"
    d.mkdir(exist_ok=True)
    return _redis_server(d)


@pytest.fixture
def redis_client(redis_server):
    client = redis_server.client()
    yield client
    client.close()


@pytest.fixture(scope="session")
def pg_cluster():
    """One PostgreSQL cluster for the whole run; each test gets its own database."""
    if os.environ.get("SB_SKIP_POSTGRES") == "1" and not os.environ.get("CI"):
        pytest.skip("SB_SKIP_POSTGRES=1 (never honoured in CI)")
    with postgres_cluster() as cluster:
        yield cluster


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request, tmp_path):
    """A SQLAlchemy URL of an empty database: a SQLite file, then a PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'bridge.db'}"
    return request.getfixturevalue("pg_cluster").create_database()


# --- storage and the accept service ---------------------------------------------------------
# `db` is a migrated Database on each `database_url`; `bridge_service` is a started
# BridgeService on it with a real redis (background sweeper off: call sweep_once());
# `demo_account` is an account with money, a password and an API key.

DEMO_USERNAME = "demo"
DEMO_PASSWORD = "demo-password-1"


@pytest.fixture
def db(database_url):
    """A Database on `database_url` with every migration applied; disposed after the test."""
    from bridge.storage.db import Database, upgrade

    upgrade(database_url)
    database = Database(database_url)
    try:
        yield database
    finally:
        database.dispose()


@pytest.fixture
def bridge_config(database_url, redis_server):
    """The Config the service fixtures use (change it with `bridge_config.replace(...)`)."""
    from bridge.config import Config

    return Config(database_url=database_url, redis_url=redis_server.url)


@pytest.fixture
def bridge_service(bridge_config, db, redis_client):
    """A started BridgeService (no background sweeper); stopped after the test."""
    from bridge.service import BridgeService

    service = BridgeService(bridge_config, db, redis_client, run_sweeper=False)
    service.start()
    try:
        yield service
    finally:
        service.stop()


@pytest.fixture
def demo_account(bridge_service):
    """Account `demo` (password DEMO_PASSWORD, balance 1000.00, default sender SMSBRIDGE,
    also allowed: ACME) with one API key. Attributes: id, username, password, api_key, key_id,
    info (AccountInfo)."""
    from decimal import Decimal
    from types import SimpleNamespace

    info = bridge_service.create_account(
        DEMO_USERNAME,
        DEMO_PASSWORD,
        balance=Decimal("1000.00"),
        sender_id="SMSBRIDGE",
        allowed_sender_ids=["ACME"],
    )
    key = bridge_service.generate_key(info.id, expiry_days=30)
    return SimpleNamespace(
        id=info.id,
        username=DEMO_USERNAME,
        password=DEMO_PASSWORD,
        api_key=key.api_key,
        key_id=key.key_id,
        info=info,
    )
