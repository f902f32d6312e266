"""A PostgreSQL restart (every backend of the database terminated) costs no request a 503: a
connection the server dropped before COMMIT is retried once on a fresh one
(``Database.once_more_if_gone``), in the send's reads, in its group commit and in the message
view, and a lost COMMIT is never retried (it may have been applied)."""

from __future__ import annotations

from decimal import Decimal

import psycopg
import pytest
from sqlalchemy import func, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, OperationalError

from bridge.delivery.settlement.view import message_view
from bridge.storage.db import Database, gone_before_commit
from bridge.storage.driver import driver_transaction
from bridge.storage.models import ledger
from tests.bridge.accept.test_group_commit import held_group

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.parametrize("database_url", ["postgresql"], indirect=True),
]


def drop_every_connection(database_url: str) -> int:
    """What a restart does to the bridge's connections: every backend of the database is
    terminated (from a connection of its own); returns how many there were."""
    url = make_url(database_url)
    admin = f"host={url.host} port={url.port} user={url.username or 'postgres'} dbname=postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = %s AND pid <> pg_backend_pid()",
            (url.database,),
        ).fetchall()
    return len(rows)


def charges(db, account_id: int) -> int:
    with db.connect() as conn:
        return conn.execute(
            select(func.count()).where(ledger.c.account_id == account_id, ledger.c.kind == "charge")
        ).scalar_one()


def test_a_send_after_the_server_dropped_every_connection_is_accepted_and_charged_once(
    service, db, account, database_url
):
    service.send(account.id, "0701234567", "before")  # the kept connections are open now
    assert db.kept.open >= 1
    assert drop_every_connection(database_url) >= 1
    body = service.send(account.id, "0701234568", "after").body  # no DependencyDown
    assert body["messages"][0]["number"]
    assert charges(db, account.id) == 2
    assert service.balance(account.id).balance == Decimal("100.00") - 2 * Decimal("0.80")
    assert service.audit() == []


def test_a_group_whose_connection_was_dropped_while_it_queued_runs_again_once(
    service, db, account, database_url
):
    service.send(account.id, "0701234567", "warm")
    sends = [lambda i=i: service.send(account.id, f"07012346{i:02d}", "hi") for i in range(5)]
    with held_group(service.committer, sends) as held:
        # the five did their reads; the group's (kept) connection dies before it runs
        assert drop_every_connection(database_url) >= 1
    results = held.results
    assert not [r for r in results if isinstance(r, Exception)], results
    assert charges(db, account.id) == 6
    assert service.audit() == []


def test_the_message_view_reads_again_on_a_fresh_connection(service, db, account, database_url):
    body = service.send(account.id, "0701234567", "hi").body
    message_id = body["messages"][0]["message_id"]
    assert message_view(db, account.id, message_id).message_id == message_id
    drop_every_connection(database_url)
    assert message_view(db, account.id, message_id).message_id == message_id


def test_only_a_dropped_connection_before_commit_is_retried(db, database_url):
    with db.connect() as conn:
        pid = conn.execute(text("SELECT pg_backend_pid()")).scalar()
    drop_every_connection(database_url)
    with pytest.raises(OperationalError) as err, db.connect() as conn:
        conn.execute(text("SELECT 1"))
    assert pid and err.value.connection_invalidated
    assert gone_before_commit(err.value)
    orig = err.value.orig
    assert isinstance(orig, psycopg.Error)
    lost_commit = DBAPIError.instance(
        "COMMIT", None, orig, psycopg.Error, connection_invalidated=True
    )
    assert not gone_before_commit(lost_commit)  # it may have been applied: never again
    unnamed = DBAPIError.instance(None, None, orig, psycopg.Error, connection_invalidated=True)
    assert not gone_before_commit(unnamed)  # SQLAlchemy's own COMMIT names no statement
    other = DBAPIError.instance("SELECT 1", None, orig, psycopg.Error)
    assert not gone_before_commit(other)  # the server is there: an error of its own
    calls = []

    def lost_commit_work():
        calls.append(1)
        raise lost_commit

    with pytest.raises(DBAPIError):
        db.once_more_if_gone(lost_commit_work)
    assert calls == [1]


def test_one_dropped_connection_seen_renews_the_whole_pool(database_url):
    """The settlement's transactions (and every DBAPI-cursor statement) take pooled
    connections: after a restart only the first one fails, not each pooled one in turn."""
    one = Database(database_url, pool_size=5, max_overflow=0)
    try:
        held = [one.engine.connect() for _ in range(5)]  # five pooled connections...
        for conn in held:
            conn.execute(text("SELECT 1"))
            conn.close()  # ...back in the pool, all open
        drop_every_connection(database_url)
        failed = 0
        for _ in range(5):
            try:
                with driver_transaction(one.engine, sqlite=False) as cur:
                    cur.run_sql("SELECT 1")
            except OperationalError as exc:
                assert exc.connection_invalidated
                failed += 1
        assert failed == 1
    finally:
        one.dispose()
