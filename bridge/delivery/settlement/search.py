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

import re
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import Connection, String, bindparam, func, literal_column, select, tuple_
from sqlalchemy.sql.elements import ColumnClause

from bridge.delivery.settlement.view import MessageView, row_view
from bridge.errors import InvalidInput, NotFound
from bridge.storage.ledger import REFUND
from bridge.storage.models import UTCDateTime, accounts, ledger, messages
from bridge.storage.paging import MAX_LIMIT, Key, decode_cursor, encode_cursor
from bridge.storage.states import MessageState

BATCH_NOT_FOUND = "Batch not found."
_ID = re.compile(r"[0-9A-Za-z]{1,26}")
_NOTHING: ColumnClause[str] = literal_column("''")  # the empty string, as SQL text

# What a listed message needs: the row of GET /api/v2/sms/{id} without its text and callback
# (every other column, so a column the view gains is listed too).
_COLUMNS = [column for column in messages.c if column.name not in ("text", "callback_url")]


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
def list_query(account_id: int, filters: Filters, limit: int, after: Key | None):
    """The SELECT of one page (limit + 1 rows: the extra one says whether more follow)."""
    c = messages.c
    query = select(*_COLUMNS).where(c.account_id == account_id)
    leading = True
    # Most selective first: a batch holds at most 10,000 messages, a number what one person got,
    # a reference what the client tagged, a state up to all of them. The first filter given
    # picks the index; the others are written as `column || ''`, which no index serves, so no
    # planner (SQLite has no statistics) walks a huge state range to find one small batch.
    for column, value in (
        (c.batch_id, filters.batch_id),
        (c.destination, filters.number),
        (c.client_reference, filters.reference),
        (c.state, filters.state),
    ):
        if value is None:
            continue
        query = query.where((column if leading else column.concat(_NOTHING)) == value)
        leading = False
    if filters.since is not None:
        query = query.where(c.created_at >= filters.since)
    if filters.until is not None:
        query = query.where(c.created_at < filters.until)
    if after is not None:
        query = query.where(
            tuple_(c.created_at, c.id)
            < tuple_(
                bindparam("after_at", after.created_at, type_=UTCDateTime()),
                bindparam("after_id", after.message_id, type_=String()),
            )
        )
    return query.order_by(c.created_at.desc(), c.id.desc()).limit(limit + 1)


def list_messages(
    conn: Connection, account_id: int, filters: Filters, limit: int, cursor: str | None = None
) -> Page:
    """One page of the account's messages, newest first, after ``cursor`` (None: the newest)."""
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidInput(f"limit must be a whole number from 1 to {MAX_LIMIT}.", field="limit")
    after = decode_cursor(cursor) if cursor is not None else None
    rows = conn.execute(list_query(account_id, filters, limit, after)).mappings().all()
    currency = _currency(conn, account_id)
    more = len(rows) > limit
    rows = rows[:limit]
    views = [row_view(row, currency, []) for row in rows]
    next_cursor = None
    if more:
        last = rows[-1]
        next_cursor = encode_cursor(Key(last["created_at"], last["id"]))
    return Page(views, next_cursor)


def _currency(conn: Connection, account_id: int) -> str:
    return conn.execute(select(accounts.c.currency).where(accounts.c.id == account_id)).scalar_one()


# --- a batch ------------------------------------------------------------------------------
def batch_summary(conn: Connection, account_id: int, batch_id: str) -> BatchSummary:
    """Totals of one of the account's batches; NotFound("Batch not found.") for others' and
    unknown ids (an id never tells who owns it)."""
    if not _ID.fullmatch(batch_id or ""):
        raise NotFound(BATCH_NOT_FOUND)
    batch_id = batch_id.upper()
    c = messages.c
    # `account_id + 0`: no index serves it, so SQLite reads the batch's own index instead of
    # walking every message of the account in (account_id, state) order for the GROUP BY
    mine = (c.batch_id == batch_id, c.account_id + literal_column("0") == account_id)
    rows = conn.execute(
        select(
            c.state,
            func.count().label("n"),
            func.sum(c.parts).label("parts"),
            func.sum(c.price).label("cost"),
            func.min(c.created_at).label("created_at"),
        )
        .where(*mine)
        .group_by(c.state)
    ).all()
    if not rows:
        raise NotFound(BATCH_NOT_FOUND)
    refunded = conn.execute(
        select(func.sum(ledger.c.amount))
        .select_from(ledger.join(messages, messages.c.id == ledger.c.message_id))
        .where(*mine, ledger.c.kind == REFUND)
    ).scalar()
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
