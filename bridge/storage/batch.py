"""Batches through the DBAPI cursor (bridge.storage.driver): statements the settlement writer
runs on thousands of rows per transaction, where the worker's CPU per message is mostly this
Python, not the database.

:class:`BatchStatement` is a :class:`DriverStatement` that only accepts statements whose
parameters ``params`` builds directly (no ``construct_params``), binds ``UTCDateTime`` values
in one call instead of the type decorator's three (several per settled message), and types
SELECT rows with their columns' result processors (``Money``, ``UTCDateTime``, booleans on
SQLite), so a row read here equals the row ``Connection.execute`` would give, as a tuple.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from sqlalchemy.engine import Dialect
from sqlalchemy.exc import ArgumentError
from sqlalchemy.sql import ClauseElement, Select

from bridge.storage.driver import DriverCursor, DriverStatement, _direct_binds
from bridge.storage.models import UTCDateTime


class BatchStatement(DriverStatement):
    """A :class:`DriverStatement` whose parameters are always built directly (never through
    ``construct_params``), with faster ``UTCDateTime`` binds and typed :meth:`rows`.

    Refuses statements whose binds ``params`` cannot read plainly ("expanding" ``IN`` lists,
    escaped or post-compile names, callables, values given by the statement's ``.params()``):
    their SQL or values are not fixed per call."""

    def __init__(
        self, stmt: ClauseElement, dialect: Dialect, column_keys: Sequence[str] | None = None
    ) -> None:
        super().__init__(stmt, dialect, column_keys)
        compiled = self._compiled
        for name, bind in compiled.binds.items():
            if name in self._processors:
                self._processors[name] = _faster(bind.type, dialect, self._processors[name])
        self._direct_names, self._direct = _direct_binds(compiled, self._processors)
        if self._direct is None:
            raise ArgumentError(
                "BatchStatement needs a fixed statement: no IN lists of literals, parameter "
                "names that need escaping or values given by .params() (pass a list as one "
                "parameter, and every value to params(), instead)"
            )
        selected = stmt.selected_columns if isinstance(stmt, Select) else ()
        self.columns = [column.type.dialect_impl(dialect) for column in selected] or self.returns
        self._column_results: list | None = None

    def rows(self, raw: Sequence[Sequence[Any]], description) -> list[tuple]:
        """``raw`` rows (as the DBAPI gave them) with each column's result processor applied
        (``description`` is the cursor's: some processors depend on the column's type code)."""
        if self._column_results is None:
            found = (
                impl.result_processor(self._dialect, column[1])
                for impl, column in zip(self.columns, description, strict=True)
            )
            self._column_results = [(i, p) for i, p in enumerate(found) if p is not None]
        processors = self._column_results
        if not processors:
            return [tuple(row) for row in raw]
        out = []
        for row in raw:
            values = list(row)
            for i, processor in processors:
                values[i] = processor(values[i])
            out.append(tuple(values))
        return out


def _utc_naive(value: datetime | None) -> datetime | None:
    """UTCDateTime's bind value on PostgreSQL: naive UTC (the column is without time zone)."""
    if value is None:
        return None
    if value.tzinfo is None:
        raise ValueError("UTCDateTime needs a timezone-aware datetime")
    return value.astimezone(UTC).replace(tzinfo=None)


def _utc_sqlite_text(value: datetime | None) -> str | None:
    """UTCDateTime's bind value on SQLite: naive UTC as SQLAlchemy's DATETIME stores it
    ("2026-12-04 22:10:05.123456")."""
    return None if value is None else _utc_text(value, value.fold)


@functools.lru_cache(maxsize=4096)
def _utc_text(value: datetime, fold: int) -> str:
    """The text of an instant (a batch repeats many: its commit time, a message's event and
    submit times). Equal aware datetimes are the same instant but in one zone's repeated or
    skipped hour: there both passes of a clock time compare and hash equal, an hour apart,
    and only ``fold`` (so part of the key) tells them apart."""
    naive = _utc_naive(value)
    assert naive is not None
    return naive.isoformat(" ", "microseconds")


_FASTER = {"sqlite": _utc_sqlite_text, "postgresql": _utc_naive}
_SAMPLES = (
    datetime(2026, 12, 4, 22, 10, 5, 123456, tzinfo=UTC),
    datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone(timedelta(hours=3))),
    datetime(999, 12, 31, 23, 59, 59, 1, tzinfo=UTC),
    None,
)


def _faster(type_: Any, dialect: Dialect, processor: Callable) -> Callable:
    """For ``UTCDateTime`` (several per settled message), one function instead of the type
    decorator's three calls: used only when it gives SQLAlchemy's own values for samples of
    every kind (microseconds or none, another zone, a three-digit year, None)."""
    fast = _FASTER.get(dialect.name)
    if fast is None or not isinstance(type_, UTCDateTime):
        return processor
    if all(fast(sample) == processor(sample) for sample in _SAMPLES):
        return fast
    return processor


def fetch_rows(cursor: DriverCursor, stmt: BatchStatement, params) -> list[tuple]:
    """Run a SELECT (or a statement with RETURNING); its rows, typed (:meth:`BatchStatement.rows`)."""
    raw = cursor.fetch_all(stmt, params)
    return stmt.rows(raw, cursor.description or ())


def executemany(cursor: DriverCursor, stmt: BatchStatement, rows: Sequence[Mapping]) -> int:
    """``stmt`` once per row of values (one DBAPI executemany); the rows it changed in all
    (sqlite3 and psycopg both sum an executemany's row counts)."""
    if not rows:
        return 0
    cursor.executemany(stmt, [stmt.params(row) for row in rows])
    return cursor._cursor.rowcount  # the DBAPI cursor DriverCursor wraps
