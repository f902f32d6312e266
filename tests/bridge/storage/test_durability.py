"""Durability of a commit: SQLite fsyncs every commit (synchronous=FULL) unless configured
otherwise, and our PostgreSQL sessions never run with synchronous_commit off."""

from __future__ import annotations

import logging

import psycopg
import pytest
from sqlalchemy.engine import make_url

from bridge.config import Config, ConfigError, load_config
from bridge.storage.db import Database

FULL, NORMAL = 2, 1  # what PRAGMA synchronous reports


def _synchronous(db: Database) -> int:
    with db.connect() as conn:
        return conn.exec_driver_sql("PRAGMA synchronous").scalar_one()


@pytest.mark.parametrize(
    "env, expected",
    [
        ({}, FULL),
        ({"BRIDGE_SQLITE_SYNCHRONOUS": "normal"}, NORMAL),
        ({"BRIDGE_SQLITE_SYNCHRONOUS": "NORMAL"}, NORMAL),
        ({"BRIDGE_SQLITE_SYNCHRONOUS": "full"}, FULL),
    ],
)
def test_sqlite_synchronous_follows_the_config(tmp_path, env, expected):
    config = load_config(env={**env, "DATABASE_URL": f"sqlite:///{tmp_path / 'b.db'}"})
    db = Database.from_config(config)
    try:
        assert _synchronous(db) == expected
        with db.begin() as conn:  # a write connection gets it too (a fresh pooled connection)
            assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == expected
    finally:
        db.dispose()


def test_a_database_built_without_a_config_is_full(tmp_path):
    db = Database(f"sqlite:///{tmp_path / 'b.db'}")
    try:
        assert _synchronous(db) == FULL
    finally:
        db.dispose()


@pytest.mark.parametrize("raw", ["off", "extra", "1", ""])
def test_a_bad_synchronous_value_fails_config_with_one_line(tmp_path, raw):
    with pytest.raises(ConfigError) as err:
        if raw:
            load_config(env={"BRIDGE_SQLITE_SYNCHRONOUS": raw})
        else:
            Config(sqlite_synchronous=raw)
    message = str(err.value)
    assert "\n" not in message
    assert "BRIDGE_SQLITE_SYNCHRONOUS" in message and "full or normal" in message
    assert repr(raw) in message


def test_a_bad_synchronous_value_in_toml_fails_config(tmp_path):
    path = tmp_path / "bridge.toml"
    path.write_text('sqlite_synchronous = "fast"\n')
    with pytest.raises(ConfigError, match="must be full or normal, got 'fast'"):
        load_config(env={}, path=str(path))


def _show_synchronous_commit(db: Database) -> str:
    with db.connect() as conn:
        return conn.exec_driver_sql("SHOW synchronous_commit").scalar_one()


def _alter_database(url: str, setting: str) -> None:
    parsed = make_url(url)
    dsn = f"host={parsed.host} port={parsed.port} user={parsed.username} dbname=postgres"
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f'ALTER DATABASE "{parsed.database}" SET synchronous_commit = {setting}')


@pytest.mark.postgres
def test_postgres_sessions_commit_synchronously(pg_cluster):
    db = Database(pg_cluster.create_database())
    try:
        assert _show_synchronous_commit(db) == "on"
    finally:
        db.dispose()


@pytest.mark.postgres
def test_postgres_synchronous_commit_off_is_set_back_on(pg_cluster, caplog):
    url = pg_cluster.create_database()
    _alter_database(url, "off")
    db = Database(url)
    try:
        with caplog.at_level(logging.WARNING, logger="bridge.storage.db"):
            assert _show_synchronous_commit(db) == "on"
            with db.begin() as conn:  # and it holds inside a write transaction
                assert conn.exec_driver_sql("SHOW synchronous_commit").scalar() == "on"
        assert any("synchronous_commit is off" in r.getMessage() for r in caplog.records)
    finally:
        db.dispose()


@pytest.mark.postgres
def test_postgres_stronger_settings_are_kept(pg_cluster):
    url = pg_cluster.create_database()
    _alter_database(url, "remote_apply")
    db = Database(url)
    try:
        assert _show_synchronous_commit(db) == "remote_apply"
    finally:
        db.dispose()
