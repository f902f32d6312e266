"""bridge.storage.kept: the hot path's connections are reused without a pool checkout each
time, come back with no transaction open, are never reused after their block raised, stay
within their limit, and close with the Database (SQLite and PostgreSQL)."""

from __future__ import annotations

import collections
import contextlib
import threading
from collections.abc import Callable

import pytest
from sqlalchemy import event, text

from bridge.storage.db import Database
from bridge.storage.driver import DriverCursor, DriverStatement
from bridge.storage.kept import KeptConnections
from bridge.storage.models import accounts
from tests.harness.procs import wait_until


@contextlib.contextmanager
def checkouts(db: Database):
    """Pool checkouts while the block runs (one entry per checkout)."""
    seen: list[object] = []

    def on_checkout(dbapi_conn, _record, _proxy) -> None:
        seen.append(dbapi_conn)

    event.listen(db.engine, "checkout", on_checkout)
    try:
        yield seen
    finally:
        event.remove(db.engine, "checkout", on_checkout)


def _dbapi(conn):
    return conn.connection.dbapi_connection


def test_a_kept_connection_is_reused_without_a_pool_checkout(db):
    with db.kept_connection() as conn:
        first = _dbapi(conn)
    with checkouts(db) as seen:
        for _ in range(5):
            with db.kept_connection() as conn:
                assert _dbapi(conn) is first
                assert conn.execute(text("SELECT 1")).scalar() == 1
    assert seen == []
    assert db.kept.open == 1


def test_no_transaction_outlives_the_block(db):
    """Neither SQLAlchemy's (conn.execute autobegins) nor the driver's (a DBAPI-cursor SELECT
    opens one on psycopg): the next user starts clean, and holds no snapshot meanwhile."""
    query = DriverStatement(accounts.select().where(accounts.c.id == 0), db.engine.dialect)
    with db.kept_connection() as conn:
        conn.execute(text("SELECT 1"))
        assert conn.in_transaction()
    with db.kept_connection() as conn:
        assert not conn.in_transaction()
        cursor = DriverCursor(conn)
        assert cursor.fetch_all(query, query.params({})) == []
        cursor.close()
    with db.kept_connection() as conn:
        raw = _dbapi(conn)
        if db.is_sqlite:
            assert not raw.in_transaction
        else:
            assert raw.info.transaction_status == 0  # psycopg.pq.TransactionStatus.IDLE


def test_a_connection_whose_block_raised_is_not_reused(db):
    with db.kept_connection() as conn:
        first = _dbapi(conn)
    with pytest.raises(ZeroDivisionError), db.kept_connection() as conn:
        assert _dbapi(conn) is first
        _ = 1 / 0
    assert db.kept.open == 0  # given back to the pool, which resets it (or discards it)
    with checkouts(db) as seen, db.kept_connection():
        pass
    assert len(seen) == 1


def test_past_the_limit_a_block_gets_a_plain_connection(db):
    kept = KeptConnections(db.engine, limit=1)
    try:
        with kept.connect() as outer, checkouts(db) as seen, kept.connect() as inner:
            assert _dbapi(inner) is not _dbapi(outer)
            assert len(seen) == 1  # the plain one, checked in again when its block ends
        assert kept.open == 1
        with checkouts(db) as seen, kept.connect():
            pass
        assert seen == []
    finally:
        kept.close()
    assert kept.open == 0


def _opened_at(conn) -> float:
    """When the pool opened the DBAPI connection under ``conn`` (time.time, as pool_recycle)."""
    return conn.connection._connection_record.starttime


def test_a_kept_connection_past_its_recycle_age_is_replaced(db):
    now = [0.0]
    kept = KeptConnections(db.engine, limit=2, recycle=1800, clock=lambda: now[0])
    try:
        with kept.connect() as conn:
            first, opened = _dbapi(conn), _opened_at(conn)
        now[0] = opened + 1800.0
        with kept.connect() as conn:
            assert _dbapi(conn) is first  # not past it yet
        now[0] = opened + 1800.5
        with checkouts(db) as seen, kept.connect() as conn:
            replacement = _dbapi(conn)
        assert len(seen) == 1 and kept.open == 1
        with kept.connect() as conn:
            assert _dbapi(conn) is replacement
    finally:
        kept.close()


def test_the_recycle_age_counts_from_when_the_pool_opened_the_connection(db):
    """A connection the pool opened long before it was kept is as old as the pool says: kept
    1,000 s after it was opened, it goes back to the pool (whose pool_recycle check, on its
    own clock, then replaces it) 1,800 s after it was opened, not 2,800 s."""
    with db.engine.connect() as conn:  # opened by the pool, then back in it
        pooled, opened = _dbapi(conn), _opened_at(conn)
    now = [opened + 1000.0]
    kept = KeptConnections(db.engine, limit=1, recycle=1800, clock=lambda: now[0])
    try:
        with kept.connect() as conn:
            assert _dbapi(conn) is pooled
        now[0] = opened + 1800.5  # only 800.5 s since it was kept
        with checkouts(db) as seen, kept.connect():
            pass
        assert len(seen) == 1  # given back and checked out again: the pool's recycle applies
        assert kept.open == 1
    finally:
        kept.close()


def test_a_limit_of_zero_keeps_nothing(db):
    kept = KeptConnections(db.engine, limit=0)
    with checkouts(db) as seen:
        for _ in range(3):
            with kept.connect() as conn:
                conn.execute(text("SELECT 1"))
    assert len(seen) == 3
    assert kept.open == 0


def test_dispose_closes_the_kept_connections_and_those_in_use_when_their_block_ends(db):
    with db.kept_connection():
        pass
    with db.kept_connection() as in_use:
        with db.kept_connection():
            pass
        assert db.kept.open == 2
        db.dispose()
        assert db.kept.open == 1  # the free one closed, the one in use still open
        assert in_use.execute(text("SELECT 1")).scalar() == 1
    assert db.kept.open == 0
    with db.kept_connection() as conn:  # usable again after dispose, like the engine
        assert conn.execute(text("SELECT 1")).scalar() == 1


class _ObservedLock:
    """A ``threading.Lock`` that says when a thread had to wait for it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.waited = threading.Event()

    def __enter__(self) -> _ObservedLock:
        if not self._lock.acquire(blocking=False):
            self.waited.set()
            self._lock.acquire()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._lock.release()


class _HookedFree(collections.deque):
    """A free list that calls ``before_append`` (once) just before a block's connection goes
    on it: the moment between the generation check and the append."""

    before_append: Callable[[], None] | None = None

    def append(self, item) -> None:
        hook, self.before_append = self.before_append, None
        if hook is not None:
            hook()
        super().append(item)


def test_a_block_ending_while_close_runs_leaves_no_open_connection_kept(db, monkeypatch):
    """close() (Database.dispose, connections_lost) runs just as a block gives its connection
    back: either the block sees the new generation and closes it, or it is on the free list
    before close() empties it; never left open on the free list after close() returned."""
    kept = KeptConnections(db.engine, limit=1)
    lock, free = _ObservedLock(), _HookedFree()
    monkeypatch.setattr(kept, "_lock", lock)
    monkeypatch.setattr(kept, "_free", free)
    closed = threading.Event()

    def close() -> None:
        kept.close()
        closed.set()

    closer = threading.Thread(target=close, name="closer")

    def close_meanwhile() -> None:
        closer.start()  # ends here unless the check and the append hold the lock it waits for
        wait_until(lambda: closed.is_set() or lock.waited.is_set(), message="close() to run")

    try:
        with kept.connect() as conn:
            assert conn.execute(text("SELECT 1")).scalar() == 1
            free.before_append = close_meanwhile
        closer.join(timeout=10)
        assert closed.is_set()
        assert list(free) == [] and kept.open == 0
        assert conn.closed
    finally:
        kept.close()
