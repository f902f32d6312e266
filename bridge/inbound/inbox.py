"""An account's inbox (``GET /api/v2/inbox``) and the operators' unrouted list: newest first,
keyset-paginated on (received_at, id) with the cursor of ``GET /api/v2/sms``
(bridge.delivery.settlement.search), each filter served by its own index (models.py)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, String, bindparam, func, select, tuple_

from bridge.errors import InvalidInput
from bridge.ids import ID_SHAPE
from bridge.storage.models import UTCDateTime, inbound_messages
from bridge.storage.paging import MAX_LIMIT, Key, decode_cursor, encode_cursor

_COLUMNS = [
    inbound_messages.c[name]
    for name in (
        "id",
        "account_id",
        "connection",
        "number",
        "to",
        "keyword",
        "text",
        "parts",
        "action",
        "received_at",
    )
]


@dataclass(frozen=True)
class InboxFilters:
    number: str | None = None  # the handset, as stored (E.164)
    to: str | None = None  # the short code / long number, digits
    keyword: str | None = None  # the first word, upper case
    since: datetime | None = None  # received_at >= since
    until: datetime | None = None  # received_at < until


@dataclass(frozen=True)
class InboxPage:
    entries: list[dict[str, Any]]  # render() of each row
    next_cursor: str | None


def list_inbox(
    conn: Connection,
    account_id: int | None,
    filters: InboxFilters,
    limit: int,
    cursor: str | None = None,
) -> InboxPage:
    """A page of the account's inbound messages (account_id None: the unrouted ones)."""
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidInput(f"limit must be a whole number from 1 to {MAX_LIMIT}.", field="limit")
    c = inbound_messages.c
    mine = c.account_id.is_(None) if account_id is None else c.account_id == account_id
    query = select(*_COLUMNS).where(mine)
    for column, value in ((c.number, filters.number), (c.to, filters.to)):
        if value is not None:
            query = query.where(column == value)
    if filters.keyword is not None:
        query = query.where(c.keyword == filters.keyword)
    if filters.since is not None:
        query = query.where(c.received_at >= filters.since)
    if filters.until is not None:
        query = query.where(c.received_at < filters.until)
    if cursor is not None:
        after = decode_cursor(cursor)
        query = query.where(
            tuple_(c.received_at, c.id)
            < tuple_(
                bindparam("after_at", after.created_at, type_=UTCDateTime()),
                bindparam("after_id", after.message_id, type_=String()),
            )
        )
    query = query.order_by(c.received_at.desc(), c.id.desc()).limit(limit + 1)
    rows = conn.execute(query).mappings().all()
    more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = encode_cursor(Key(rows[-1]["received_at"], rows[-1]["id"])) if more else None
    return InboxPage([render(r) for r in rows], next_cursor)


def get_inbound(conn: Connection, account_id: int, inbound_id: str) -> dict[str, Any] | None:
    """One of the account's inbound messages; None for another account's or an unknown id."""
    if not ID_SHAPE.fullmatch(inbound_id or ""):
        return None
    c = inbound_messages.c
    row = (
        conn.execute(
            select(*_COLUMNS).where(c.id == inbound_id.upper(), c.account_id == account_id)
        )
        .mappings()
        .first()
    )
    return render(row) if row else None


def count_unrouted(conn: Connection) -> int:
    c = inbound_messages.c
    return conn.execute(select(func.count()).where(c.account_id.is_(None))).scalar_one()


def render(row) -> dict[str, Any]:
    """The JSON shape of an inbound message (the API's and the inbound webhook's ``data``)."""
    return {
        "id": row["id"],
        "number": row["number"],
        "to": row["to"],
        "text": row["text"],
        "keyword": row["keyword"],
        "parts": row["parts"],
        "action": row["action"],
        "received_at": iso(row["received_at"]),
    }


def iso(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
