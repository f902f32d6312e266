"""Hot write statements run straight on the DBAPI cursor, compiled once per dialect.

The group commit of sends (bridge.accept.group) holds the database's one write lock (SQLite)
while it runs; every microsecond of Python inside it is a microsecond no other process can
write. Through ``Connection.execute`` a statement costs ~50 µs of SQLAlchemy bookkeeping
(execution context, events, parameter processing); a DBAPI ``executemany`` of parameters that
were converted beforehand costs a few. Measured on one group of one send (SQLite, nproc 2):
168 -> 82 µs of CPU for the whole transaction, parameters included.

Nothing is hand-written SQL: the statements are the same SQLAlchemy Core constructs, compiled
for the engine's dialect, and their parameters go through each column type's own bind
processor (``Money``, ``UTCDateTime``...), so what lands in a row is exactly what
``Connection.execute`` would have stored (a statement's ``.params()`` values included: such a
statement, like one with an ``IN`` list, goes through ``construct_params``). DBAPI errors are
re-raised as SQLAlchemy's own exception classes (``OperationalError``, ``IntegrityError``...),
and a connection the driver reports as gone is invalidated, as ``Connection.execute`` would do.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.engine import Dialect, Engine
from sqlalchemy.exc import DBAPIError, StatementError
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.compiler import SQLCompiler

_GIVEN = object()  # a bind whose value the caller must give


def _direct_binds(compiled: SQLCompiler, processors: Mapping[str, Callable[[Any], Any]]):
    """The DBAPI parameters' names and, per name in order, (the key of its value, its name
    when that differs, _GIVEN or the bind's fixed value, its processor), for a statement
    whose binds construct_params reads plainly (no callables, escaped names, expanding or
    post-compile binds, no values given by ``.params()``, which construct_params puts over
    the binds' own); else ([], None)."""
    if compiled.escaped_bind_names or getattr(compiled, "_render_postcompile", False):
        return [], None
    if getattr(compiled, "_collected_params", None):
        return [], None
    by_name: dict[str, tuple[str, str | None, Any]] = {}
    for bind, name in compiled.bind_names.items():
        if bind.callable is not None or bind.expanding:
            return [], None
        alt = None if bind.key == name else name  # construct_params tries the key, then this
        entry = (bind.key, alt, _GIVEN if bind.required else bind.value)
        if by_name.setdefault(name, entry) != entry:  # one name, two binds that differ
            return [], None
    names = compiled.positiontup if compiled.positiontup is not None else list(by_name)
    if any(name not in by_name for name in names):
        return [], None
    return list(names), [(*by_name[name], processors.get(name)) for name in names]


class DriverStatement:
    """``stmt`` compiled for ``dialect``: ``params(values)`` gives the DBAPI parameters."""

    def __init__(
        self, stmt: ClauseElement, dialect: Dialect, column_keys: Sequence[str] | None = None
    ) -> None:
        compiled = stmt.compile(dialect=dialect, column_keys=column_keys)
        if not isinstance(compiled, SQLCompiler):  # DDL compiles otherwise: not for this
            raise TypeError(f"DriverStatement runs DML statements, not {type(stmt).__name__}")
        self.sql: str = compiled.string
        self._compiled = compiled
        self._order = compiled.positiontup  # bind names in order; None for named styles
        # by the names construct_params gives (compiled.binds also holds anonymous binds'
        # keys, which are not in its dict)
        self._processors: dict[str, Callable[[Any], Any]] = {}
        for bind, name in compiled.bind_names.items():
            processor = bind.type.dialect_impl(dialect).bind_processor(dialect)
            if processor is not None:
                self._processors.setdefault(name, processor)
        self._dialect = dialect
        self.returns = [
            column.type.dialect_impl(dialect)
            for column in getattr(compiled, "returning", None) or ()
        ]
        self._results: list | None = None  # result processors, from the first description
        self._direct_names, self._direct = _direct_binds(compiled, self._processors)

    def params(self, values: Mapping[str, Any]):
        """The DBAPI parameters (a tuple, or a dict for named paramstyles) for ``values``."""
        if self._direct is not None:
            try:  # every bind's value given (or fixed): what construct_params would build
                return self._direct_params(values)
            except KeyError:
                pass  # construct_params says which value is missing
        full = self._compiled.construct_params(values)
        for name, processor in self._processors.items():
            full[name] = processor(full[name])
        if self._order is None:
            return full
        return tuple(full[name] for name in self._order)

    def _direct_params(self, values: Mapping[str, Any]):
        """``params`` without construct_params' full dict (a message row: 17 -> 10 µs):
        KeyError when a value is missing."""
        assert self._direct is not None
        out = []
        for key, alt, fixed, processor in self._direct:
            if key in values:
                value = values[key]
            elif alt is not None and alt in values:
                value = values[alt]
            elif fixed is _GIVEN:
                raise KeyError(key)
            else:
                value = fixed
            out.append(value if processor is None else processor(value))
        if self._order is None:
            return dict(zip(self._direct_names, out, strict=True))
        return tuple(out)

    def result(self, row: Sequence[Any], description: Sequence[Sequence[Any]]) -> tuple:
        """A RETURNING row with each column's result processor applied (``description`` is
        the cursor's: some drivers' processors depend on the column's type code)."""
        if self._results is None:
            self._results = [
                impl.result_processor(self._dialect, column[1])
                for impl, column in zip(self.returns, description, strict=True)
            ]
        return tuple(
            value if proc is None else proc(value)
            for proc, value in zip(self._results, row, strict=True)
        )


class DriverCursor:
    """A DBAPI cursor inside a SQLAlchemy connection's transaction; errors become
    SQLAlchemy's exceptions."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        dbapi_conn = conn.connection.dbapi_connection
        if dbapi_conn is None:  # only after the connection was closed or invalidated
            raise RuntimeError("DriverCursor needs an open connection")
        self._dbapi_conn = dbapi_conn
        self._cursor = self._dbapi_conn.cursor()

    def execute(self, stmt: DriverStatement, params) -> tuple | None:
        """Run one statement; its first RETURNING row (processed), if any."""
        self._call(self._cursor.execute, stmt.sql, params, False)
        if not stmt.returns:
            return None
        row = self._call(self._cursor.fetchone, stmt.sql, params)
        return None if row is None else stmt.result(row, self._cursor.description)

    def fetch_all(self, stmt: DriverStatement, params) -> list:
        """Run a SELECT; its rows as the DBAPI gives them (for columns without result
        processors, such as plain strings and integers)."""
        self._call(self._cursor.execute, stmt.sql, params, False)
        return self._call(self._cursor.fetchall, stmt.sql, params)

    @property
    def description(self) -> Sequence[Sequence[Any]] | None:
        """The DBAPI cursor's description of the last statement's rows (name, type code...):
        what a column type's result processor may depend on."""
        return self._cursor.description

    def executemany(self, stmt: DriverStatement, params: list) -> None:
        self._call(self._cursor.executemany, stmt.sql, params, True)

    def run_sql(self, sql: str) -> None:
        """A statement without parameters (BEGIN IMMEDIATE, COMMIT)."""
        self._call(self._cursor.execute, sql, None, False)

    def commit(self) -> None:
        self._call(self._dbapi_conn.commit, "COMMIT", None)

    def rollback(self) -> None:
        """Undo the open transaction; a connection that cannot is invalidated, not reused."""
        if self._conn.invalidated:
            return
        try:
            if getattr(self._dbapi_conn, "in_transaction", True):
                self._dbapi_conn.rollback()
        except self._conn.dialect.loaded_dbapi.Error as exc:
            self._conn.invalidate(exc)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._cursor.close()

    def _call(self, method, sql: str, params, many: bool | None = None):
        """``method(sql[, params])`` (just ``method()`` when ``many`` is None), after telling
        SQLAlchemy's ``before_cursor_execute`` listeners (tracing, tests), if any; a DBAPI
        error becomes SQLAlchemy's exception."""
        try:
            if many is None:
                return method()
            listeners = self._conn.dispatch.before_cursor_execute
            if listeners:
                for listener in listeners:
                    listener(self._conn, self._cursor, sql, params, None, many)
            return method(sql) if params is None else method(sql, params)
        except self._conn.dialect.loaded_dbapi.Error as exc:
            raise self._translate(exc, sql, params) from exc

    def _translate(self, exc: Any, sql: str, params) -> StatementError:
        """``exc`` is an instance of the driver's own ``Error`` class."""
        dialect = self._conn.dialect
        gone = dialect.is_disconnect(exc, self._dbapi_conn, self._cursor)
        if gone:
            self._conn.invalidate(exc)
            # what SQLAlchemy's execute path does on a disconnect (invalidate_pool_on_disconnect):
            # the server dropped this connection, so most likely the pool's others too; a new
            # pool opens fresh ones instead of each of them failing once
            self._conn.engine.dispose(close=False)
        return DBAPIError.instance(
            sql,
            params,
            exc,
            dialect.loaded_dbapi.Error,
            connection_invalidated=gone,
            dialect=dialect,
        )


@contextlib.contextmanager
def driver_transaction(engine: Engine, *, sqlite: bool) -> Iterator[DriverCursor]:
    """A write transaction on a pooled connection, begun and ended on the DBAPI connection
    (SQLite: ``BEGIN IMMEDIATE``, as ``Database.begin`` does); commits when the block ends,
    rolls back on any exception."""
    with engine.connect() as conn, connection_transaction(conn, sqlite=sqlite) as cursor:
        yield cursor


@contextlib.contextmanager
def connection_transaction(conn: Connection, *, sqlite: bool) -> Iterator[DriverCursor]:
    """:func:`driver_transaction` on a connection the caller holds (e.g. a kept one,
    bridge.storage.kept): no pool checkout and checkin around it."""
    cursor = DriverCursor(conn)
    try:
        if sqlite:
            cursor.run_sql("BEGIN IMMEDIATE")
        yield cursor
        if sqlite:
            cursor.run_sql("COMMIT")
        else:
            cursor.commit()
    except BaseException:
        cursor.rollback()
        raise
    finally:
        cursor.close()
