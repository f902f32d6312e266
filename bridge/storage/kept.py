"""Connections the hot path keeps checked out of the engine's pool instead of checking one out
and back in per use.

``Engine.connect()`` plus ``Connection.close()`` cost ~50 µs of CPU (pool checkout and checkin,
the pool's events, the reset on return): for a one-recipient send that was ~9 % of the API's
CPU, spent on the opt-out lookup and the group commit's transaction, each a few µs of SQL. A
:class:`KeptConnections` hands out pooled connections it keeps (a free list: one per caller at a
time, as many as were ever in use at once, at most ``limit``); past the limit, or with a
``limit`` of 0, :meth:`KeptConnections.connect` is a plain ``engine.connect()``.

What the pool would do is kept: a connection comes back as it went out, with no transaction
open (SQLAlchemy's or the driver's: rolled back, as the pool's reset on return does), and a
connection whose block raised is closed (given back to the pool, which resets or discards it),
never reused, so a broken or invalidated connection is not handed out again. ``close()`` (from
``Database.dispose``) closes the kept ones; one in use then is closed when its block ends, and
one whose block ends while ``close()`` runs is closed too, never left open on the free list
(the generation check and the append are one step under the lock, as is close()'s bump).

A kept connection is replaced once its DBAPI connection is older than ``recycle`` seconds,
counted as ``pool_recycle`` counts: from when the pool opened it (its record's ``starttime``, on
the pool's clock ``time.time``), not from when it was kept.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from sqlalchemy import Connection
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

log = logging.getLogger(__name__)


@dataclass(slots=True)
class _Kept:
    conn: Connection
    generation: int  # KeptConnections.close() calls before it was made


class KeptConnections:
    """Up to ``limit`` connections of ``engine`` kept open and reused, one user at a time."""

    def __init__(
        self,
        engine: Engine,
        limit: int,
        *,
        recycle: float | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """``recycle``: seconds after which a kept connection is replaced (the pool's
        ``pool_recycle``, which a connection that is never checked in would escape), counted
        from when its DBAPI connection was opened. ``clock``: the pool's clock (``time.time``,
        what a connection record's ``starttime`` is on)."""
        self._engine = engine
        self._limit = max(0, limit)
        self._recycle, self._clock = recycle, clock
        self._free: collections.deque[_Kept] = collections.deque()
        self._lock = threading.Lock()
        self._open = 0  # kept connections, in use or free
        self._generation = 0  # bumped by close(): older connections are closed on return

    @property
    def open(self) -> int:
        """How many connections are kept (in use or free)."""
        return self._open

    @contextlib.contextmanager
    def connect(self) -> Iterator[Connection]:
        """A connection for the block: a kept one if any is free, else a new kept one while
        fewer than ``limit`` are open, else a plain one closed when the block ends."""
        kept = self._take()
        if kept is None:
            with self._engine.connect() as plain:
                yield plain
            return
        conn = kept.conn
        try:
            yield conn
        except BaseException:
            self._drop(conn)
            raise
        try:
            _reset(conn)
        except (SQLAlchemyError, conn.dialect.loaded_dbapi.Error) as exc:
            # the block's work is done (a commit, perhaps): its caller must not fail now
            log.warning("a kept database connection could not be reset (%s); closed it", exc)
            self._drop(conn)
            return
        with self._lock:  # one step, or a close() between them would miss it (left open)
            if kept.generation == self._generation:
                self._free.append(kept)
                return
        self._drop(conn)

    def close(self) -> None:
        """Close the free connections; those in use are closed when their blocks end."""
        with self._lock:  # after this no block puts an older connection on the free list
            self._generation += 1
        # popped one at a time (deque.pop is atomic), so a connection a request thread's
        # _take pops at this moment is either its or ours, never both (a copy could be both)
        while True:
            try:
                kept = self._free.pop()
            except IndexError:
                break
            with self._lock:
                self._open -= 1
            kept.conn.close()

    def _take(self) -> _Kept | None:
        """A free kept connection (one past its recycle age is replaced), else a new one
        within the limit, else None."""
        try:
            kept = self._free.pop()  # deque.pop is atomic: no lock
        except IndexError:
            return self._new()
        if self._recycle is not None and self._age(kept.conn) > self._recycle:
            self._drop(kept.conn)
            return self._new()
        return kept

    def _age(self, conn: Connection) -> float:
        """Seconds since the pool opened the DBAPI connection under ``conn`` (what its
        ``pool_recycle`` counts; a connection the pool let go of counts as infinitely old)."""
        record = conn.connection._connection_record
        if record is None:
            return float("inf")
        return self._clock() - record.starttime

    def _new(self) -> _Kept | None:
        with self._lock:
            if self._open >= self._limit:
                return None
            self._open += 1
            generation = self._generation
        try:
            conn = self._engine.connect()
        except BaseException:
            with self._lock:
                self._open -= 1
            raise
        return _Kept(conn, generation)

    def _drop(self, conn: Connection) -> None:
        with self._lock:
            self._open -= 1
        conn.close()


def _reset(conn: Connection) -> None:
    """End whatever transaction the block left open: SQLAlchemy's (``conn.execute``
    autobegins one) and the driver's (a DBAPI-cursor SELECT opens one on psycopg; pysqlite
    and psycopg skip the ROLLBACK when none is open)."""
    if conn.in_transaction():
        conn.rollback()
    dbapi_conn = conn.connection.dbapi_connection
    if dbapi_conn is not None and getattr(dbapi_conn, "in_transaction", True):
        dbapi_conn.rollback()
