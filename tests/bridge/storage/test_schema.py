"""Migrations reach head on SQLite and PostgreSQL and match the models exactly."""

from __future__ import annotations

from datetime import UTC
from decimal import Decimal

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, select, text
from sqlalchemy.exc import IntegrityError

from bridge.storage.db import Database, head_revision, schema_revision, upgrade
from bridge.storage.models import accounts, metadata


def test_upgrade_to_head_is_idempotent_and_matches_the_models(database_url):
    db = Database(database_url)
    try:
        assert schema_revision(db.engine) is None and not db.has_schema()
        upgrade(database_url)
        upgrade(database_url)  # second run: nothing to do
        assert schema_revision(db.engine) == head_revision() and db.has_schema()
        with db.engine.connect() as conn:
            names = set(inspect(conn).get_table_names())
            assert {
                "accounts",
                "api_keys",
                "messages",
                "message_events",
                "ledger",
                "idempotency_keys",
            } <= names
            diff = compare_metadata(
                MigrationContext.configure(conn, opts={"compare_type": True}), metadata
            )
        assert diff == []
        indexes = {ix["name"] for ix in inspect(db.engine).get_indexes("messages")}
        assert "ix_messages_state_created_at" in indexes
    finally:
        db.dispose()


def test_sqlite_runs_in_wal_mode_with_the_pragmas(tmp_path):
    db = Database(f"sqlite:///{tmp_path / 'sub' / 'b.db'}")  # the directory is created too
    try:
        with db.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL (the default)
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 10_000
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    finally:
        db.dispose()


def _account_row(**values):
    from datetime import datetime

    now = datetime.now(UTC)
    row = dict(
        username="x",
        password_hash="h",
        balance=Decimal("1.00"),
        currency="KES",
        allowed_sender_ids=[],
        created_at=now,
        updated_at=now,
    )
    row.update(values)
    return row


def test_money_is_exact_and_a_balance_cannot_go_negative(db):
    with db.begin() as conn:
        conn.execute(accounts.insert().values(_account_row(balance=Decimal("10.00"))))
    for _ in range(10):  # 0.1 is inexact in binary floating point; it must not drift here
        with db.begin() as conn:
            conn.execute(accounts.update().values(balance=accounts.c.balance - Decimal("0.10")))
    with db.connect() as conn:
        assert conn.execute(select(accounts.c.balance)).scalar() == Decimal("9.0000")
    with pytest.raises(IntegrityError):
        with db.begin() as conn:
            conn.execute(accounts.update().values(balance=accounts.c.balance - Decimal("9.01")))


def test_write_transactions_begin_immediate_on_sqlite(tmp_path):
    db = Database(f"sqlite:///{tmp_path / 'b.db'}")
    seen = []
    from sqlalchemy import event

    event.listen(db.engine, "before_cursor_execute", lambda conn, cur, stmt, *a: seen.append(stmt))
    try:
        with db.begin() as conn:
            conn.execute(text("SELECT 1"))
        with db.connect() as conn:
            conn.execute(text("SELECT 2"))
        assert seen == ["BEGIN IMMEDIATE", "SELECT 1", "BEGIN", "SELECT 2"]
    finally:
        db.dispose()
