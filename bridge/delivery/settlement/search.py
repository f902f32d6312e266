"""Finding an account's messages (GET /api/v2/sms) and a batch's totals (GET /api/v2/batches/{id}).

A listing walks the account's messages newest first, keyset-paginated on ``(created_at, id)``
(ids are time-ordered, so the pair is unique and stable): a page is ``limit + 1`` rows read from
one index in order, never an OFFSET and never a sort, so page 10,000 costs what page 1 costs.
Each filter has its index (migration 0006_message_search): none -> (account_id, created_at, id);
batch_id -> (batch_id, account_id, created_at, id); reference -> (account_id, client_reference,
created_at, id); state -> (account_id, state, created_at, id); number -> (account_id,
destination, created_at, id). ``since``/``until`` are a range on created_at inside that index.
The cursor is the last key of a page: ``base64url("1.<created_at µs>.<id>")``, version first.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, Integer, String, bindparam, func, literal_column, select, tuple_
from sqlalchemy.engine import Dialect
from sqlalchemy.sql.elements import ColumnClause

from bridge.delivery.settlement.view import MessageView
from bridge.errors import InvalidInput, NotFound
from bridge.ids import ID_SHAPE
from bridge.storage.driver import DriverCursor, DriverStatement
from bridge.storage.ledger import REFUND
from bridge.storage.models import UTCDateTime, accounts, ledger, messages
from bridge.storage.paging import MAX_LIMIT, Key, decode_cursor, encode_cursor
from bridge.storage.states import MessageState

BATCH_NOT_FOUND = "Batch not found."
_NOTHING: ColumnClause[str] = literal_column("''")  # the empty string, as SQL text

# What a listed message needs, in the order _view reads them: the columns of
# GET /api/v2/sms/{id} without the history, and nothing else (not the text, the callback or the
# worker's bookkeeping), so the driver converts only what the answer shows.
_c = messages.c
_COLUMNS = (
    _c.id,
    _c.batch_id,
    _c.destination,
    _c.sender_id,
    _c.state,
    _c.parts,
    _c.price,
    _c.client_reference,
    _c.smsc_message_ids,
    _c.error_code,
    _c.possible_duplicate,
    _c.created_at,
    _c.queued_at,
    _c.submitted_at,
    _c.done_at,
    _c.send_at,
    _c.expires_at,
)


@dataclass(frozen=True)
class Filters:
    """Each one narrows the listing; all given ones must hold. Times are aware datetimes."""

    batch_id: str | None = None
    reference: str | None = None
    state: str | None = None
    number: str | None = None  # E.164, as stored
    since: datetime | None = None  # created_at >= since
    until: datetime | None = None  # created_at < until


@dataclass(frozen=True)
class Page:
    messages: list[MessageView]  # events left empty: the listing carries no history
    next_cursor: str | None  # None: this was the last page


@dataclass(frozen=True)
class BatchSummary:
    batch_id: str
    count: int
    parts: int
    cost: Decimal
    refunded: Decimal
    currency: str
    states: dict[str, int]  # every state, 0 when none of the batch's messages is in it
    created_at: datetime


# --- listing ------------------------------------------------------------------------------
_JSON = json.JSONDecoder()  # json.loads without its per-call checks (SMSC ids, every row)
_CURRENCY = select(accounts.c.currency).where(
    accounts.c.id == bindparam("account_id", type_=Integer())
)
# The filters in the order that picks the index: the first one given leads (see _page_query).
_FILTERS = (
    ("batch_id", _c.batch_id),
    ("number", _c.destination),
    ("reference", _c.client_reference),
    ("state", _c.state),
)


def _shape(filters: Filters, after: Key | None) -> tuple[bool, ...]:
    """Which of the filters (in _FILTERS order), since, until and the cursor are given."""
    return (
        *(getattr(filters, name) is not None for name, _ in _FILTERS),
        filters.since is not None,
        filters.until is not None,
        after is not None,
    )


def _page_query(shape: tuple[bool, ...]):
    """The SELECT of a page for one shape of filters, every value a named bind parameter."""
    c = messages.c
    query = select(*_COLUMNS).where(c.account_id == bindparam("account_id", type_=Integer()))
    leading = True
    # Most selective first: a batch holds at most 10,000 messages, a number what one person got,
    # a reference what the client tagged, a state up to all of them. The first filter given
    # picks the index; the others are written as `column || ''`, which no index serves, so no
    # planner (SQLite has no statistics) walks a huge state range to find one small batch.
    for (name, column), given in zip(_FILTERS, shape, strict=False):
        if not given:
            continue
        value = bindparam(name, type_=String())
        query = query.where((column if leading else column.concat(_NOTHING)) == value)
        leading = False
    since, until, after = shape[len(_FILTERS) :]
    if since:
        query = query.where(c.created_at >= bindparam("since", type_=UTCDateTime()))
    if until:
        query = query.where(c.created_at < bindparam("until", type_=UTCDateTime()))
    if after:
        query = query.where(
            tuple_(c.created_at, c.id)
            < tuple_(
                bindparam("after_at", type_=UTCDateTime()),
                bindparam("after_id", type_=String()),
            )
        )
    order = query.order_by(c.created_at.desc(), c.id.desc())
    return order.limit(bindparam("rows", type_=Integer()))


def _page_values(account_id: int, filters: Filters, limit: int, after: Key | None) -> dict:
    values: dict[str, Any] = {"account_id": account_id, "rows": limit + 1}
    for name, _ in _FILTERS:
        if getattr(filters, name) is not None:
            values[name] = getattr(filters, name)
    if filters.since is not None:
        values["since"] = filters.since
    if filters.until is not None:
        values["until"] = filters.until
    if after is not None:
        values["after_at"], values["after_id"] = after.created_at, after.message_id
    return values


class _PageStatement:
    """A page's SELECT compiled once for a dialect and run on the DBAPI cursor
    (bridge.storage.driver): through ``Connection.execute`` the statement's cache key, the
    execution context and the result rows cost more than the query itself. Values come back
    through each column type's own result processor, as ``Connection.execute`` gives them,
    except the times: :func:`_utc` gives what UTCDateTime's does in one call instead of three."""

    def __init__(self, dialect: Dialect, shape: tuple[bool, ...]) -> None:
        self.driver = DriverStatement(_page_query(shape), dialect)
        self.currency = DriverStatement(_CURRENCY, dialect)
        self._dialect = dialect
        self._types = [column.type.dialect_impl(dialect) for column in _COLUMNS]
        self._processors: list[tuple[int, Callable[[Any], Any]]] | None = None

    def _processor(self, impl: Any, type_code: Any) -> Callable[[Any], Any] | None:
        if isinstance(impl, UTCDateTime):
            return _utc
        return impl.result_processor(self._dialect, type_code)

    def rows(self, cursor: DriverCursor, values: dict) -> list[list]:
        raw = cursor.fetch_all(self.driver, self.driver.params(values))
        processors = self._processors
        if processors is None:  # from the first description: some depend on the type code
            description = cursor.description or ()
            processors = self._processors = [
                (i, proc)
                for i, (impl, column) in enumerate(zip(self._types, description, strict=True))
                if (proc := self._processor(impl, column[1])) is not None
            ]
        out = []
        for row in raw:
            row = list(row)
            for i, proc in processors:
                row[i] = proc(row[i])
            out.append(row)
        return out


def _utc(value: datetime | str | None) -> datetime | None:
    """A stored time as UTCDateTime gives it: aware UTC (SQLite stores ISO text, PostgreSQL
    naive datetimes; both are UTC)."""
    if value is None:
        return None
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    return moment.replace(tzinfo=UTC)


@functools.lru_cache(maxsize=512)
def _page_statement(dialect: Dialect, shape: tuple[bool, ...]) -> _PageStatement:
    return _PageStatement(dialect, shape)


def list_messages(
    conn: Connection, account_id: int, filters: Filters, limit: int, cursor: str | None = None
) -> Page:
    """One page of the account's messages, newest first, after ``cursor`` (None: the newest)."""
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidInput(f"limit must be a whole number from 1 to {MAX_LIMIT}.", field="limit")
    after = decode_cursor(cursor) if cursor is not None else None
    statement = _page_statement(conn.dialect, _shape(filters, after))
    driver = DriverCursor(conn)
    try:
        rows = statement.rows(driver, _page_values(account_id, filters, limit, after))
        currency = driver.fetch_all(
            statement.currency, statement.currency.params({"account_id": account_id})
        )[0][0]
    finally:
        driver.close()
    more = len(rows) > limit
    rows = rows[:limit]
    views = [_view(row, currency) for row in rows]
    next_cursor = None
    if more:
        last = views[-1]
        next_cursor = encode_cursor(Key(last.created_at, last.message_id))
    return Page(views, next_cursor)


def _view(r: Sequence[Any], currency: str) -> MessageView:
    """A listed message from a row of _COLUMNS (values as their column types give them)."""
    return MessageView(
        message_id=r[0],
        batch_id=r[1],
        number=r[2],
        sender_id=r[3],
        state=r[4],
        parts=r[5],
        cost=r[6],
        currency=currency,
        reference=r[7],
        smsc_message_ids=_JSON.decode(r[8]) if r[8] else [],
        error_code=r[9],
        possible_duplicate=bool(r[10]),
        created_at=r[11],
        queued_at=r[12],
        submitted_at=r[13],
        done_at=r[14],
        events=[],
        send_at=r[15],
        expires_at=r[16],
    )


def _currency(conn: Connection, account_id: int) -> str:
    return conn.execute(select(accounts.c.currency).where(accounts.c.id == account_id)).scalar_one()


# --- a batch ------------------------------------------------------------------------------
def batch_summary(conn: Connection, account_id: int, batch_id: str) -> BatchSummary:
    """Totals of one of the account's batches; NotFound("Batch not found.") for others' and
    unknown ids (an id never tells who owns it)."""
    if not ID_SHAPE.fullmatch(batch_id or ""):
        raise NotFound(BATCH_NOT_FOUND)
    batch_id = batch_id.upper()
    c = messages.c
    # `account_id + 0`: no index serves it, so SQLite reads the batch's own index instead of
    # walking every message of the account in (account_id, state) order for the GROUP BY
    mine = (c.batch_id == batch_id, c.account_id + literal_column("0") == account_id)
    # ONE statement, so the states and the refunds are of one snapshot: read in two, a
    # settlement that fails and refunds a message could commit in between (on PostgreSQL) and
    # the answer would show the refund while the message still counts as queued
    refunds = (
        select(func.sum(ledger.c.amount))
        .select_from(ledger.join(messages, messages.c.id == ledger.c.message_id))
        .where(*mine, ledger.c.kind == REFUND)
        .scalar_subquery()
    )
    rows = conn.execute(
        select(
            c.state,
            func.count().label("n"),
            func.sum(c.parts).label("parts"),
            func.sum(c.price).label("cost"),
            func.min(c.created_at).label("created_at"),
            refunds.label("refunded"),
        )
        .where(*mine)
        .group_by(c.state)
    ).all()
    if not rows:
        raise NotFound(BATCH_NOT_FOUND)
    refunded = rows[0].refunded
    states = {state.value: 0 for state in MessageState}
    for row in rows:
        states[row.state] = states.get(row.state, 0) + row.n
    return BatchSummary(
        batch_id=batch_id,
        count=sum(row.n for row in rows),
        parts=sum(int(row.parts) for row in rows),
        cost=sum((row.cost for row in rows), Decimal(0)),
        refunded=refunded if refunded is not None else Decimal(0),
        currency=_currency(conn, account_id),
        states=states,
        created_at=min(row.created_at for row in rows),
    )
