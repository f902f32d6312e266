"""Shared fixtures: a real redis-server, a throwaway PostgreSQL cluster, and database URLs.

Area-specific fixtures live in the conftest.py of each tests/ sub-folder.
"""
from __future__ import annotations

import os

import pytest

from tests.support.postgres import postgres_cluster
from tests.support.redis_server import redis_server as _redis_server


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
