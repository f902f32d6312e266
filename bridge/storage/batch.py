"""Batches through the DBAPI cursor (bridge.storage.driver): executemany parameters built
without SQLAlchemy's ``construct_params``, and SELECT rows with their columns' result
processors.

The settlement writer sends thousands of rows per transaction (the worker's CPU per message
is mostly this Python, not the database): ``DriverStatement.params`` builds a full parameter
dictionary per row through the compiled statement (~6 µs a row), :meth:`BatchStatement.bind`
walks a plan made once (each bind's name, default and processor) and gives the very same
values. SELECTs get their columns' result processors (``Money``, ``UTCDateTime``, booleans on
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

from bridge.storage.driver import DriverCursor, DriverStatement
from bridge.storage.models import UTCDateTime

_REQUIRED = object()  # a bind with no value of its own: the row must give one


class BatchStatement(DriverStatement):
    """A :class:`DriverStatement` with a fast :meth:`bind` and typed :meth:`rows`.

    Refuses statements SQLAlchemy would rewrite per execution ("expanding" ``IN`` lists,
    escaped bind names): their SQL is not fixed, so they cannot be compiled once."""

    def __init__(
        self, stmt: ClauseElement, dialect: Dialect, column_keys: Sequence[str] | None = None
    ) -> None:
        super().__init__(stmt, dialect, column_keys)
        compiled = self._compiled
        if getattr(compiled, "escaped_bind_names", None) or any(
            b.expanding for b in compiled.bind_names
        ):
            raise ArgumentError(
                "BatchStatement needs a fixed statement: no IN lists of literals or parameter "
                "names that need escaping (pass a list as one parameter instead)"
            )
        # per DBAPI parameter: the key a row gives it under, the name SQLAlchemy also accepts
        # (None when the same), its own value (or _REQUIRED), its type's bind processor
        for name, bind in compiled.binds.items():
            if name in self._processors:
                self._processors[name] = _faster(bind.type, dialect, self._processors[name])
        plan: dict[str, tuple[str, str | None, Any, Any]] = {}
        for bind, name in compiled.bind_names.items():
            default = _REQUIRED if bind.required else bind.effective_value
            alias = None if name == bind.key else name
            plan[name] = (bind.key, alias, default, self._processors.get(name))
        self._names = list(self._order) if self._order is not None else list(plan)
        self._plan = [plan[name] for name in self._names]
        selected = stmt.selected_columns if isinstance(stmt, Select) else ()
        self.columns = [column.type.dialect_impl(dialect) for column in selected] or self.returns
        self._column_results: list | None = None

    def bind(self, values: Mapping[str, Any]):
        """What :meth:`DriverStatement.params` gives for ``values``, without building the
        statement's whole parameter dictionary (a row misses a required value: KeyError)."""
        out = []
        get = values.get
        for key, alias, default, processor in self._plan:
            value = get(key, _REQUIRED)
            if value is _REQUIRED:
                value = default if alias is None else get(alias, default)
                if value is _REQUIRED:
                    raise KeyError(f"a value is required for bind parameter {key!r}")
            out.append(value if processor is None else processor(value))
        if self._order is not None:
            return tuple(out)
        return dict(zip(self._names, out, strict=True))

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
    return None if value is None else _utc_text(value)


@functools.lru_cache(maxsize=4096)
def _utc_text(value: datetime) -> str:
    """The text of an instant (equal aware datetimes are the same instant, so the same text;
    a batch repeats many: its commit time, a message's event and submit times)."""
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
    return stmt.rows(raw, cursor._cursor.description)  # the DBAPI cursor DriverCursor wraps


def executemany(cursor: DriverCursor, stmt: BatchStatement, rows: Sequence[Mapping]) -> int:
    """``stmt`` once per row of values (one DBAPI executemany); the rows it changed in all
    (sqlite3 and psycopg both sum an executemany's row counts)."""
    if not rows:
        return 0
    cursor.executemany(stmt, [stmt.bind(row) for row in rows])
    return cursor._cursor.rowcount  # the DBAPI cursor DriverCursor wraps
