"""One message as its owner sees it (GET /api/v2/sms/{message_id}): row, money, history.

The history is the message's life in order: ``accepted`` (created_at), ``queued`` (queued_at)
and then every ``message_events`` row (submitted, final states, resubmits), each with its time
and detail, ordered by state rank, then time. Times are when the bridge saw each event, so a
receipt that overtook its submit_sm_resp shows a ``delivered`` time before the ``submitted``
one; ``done_at`` is the SMSC's own clock (receipt "done date", often minute resolution), which
may be earlier than ``submitted_at``. Receipt notes of single parts (ENROUTE...) live in message_parts, not here.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, TypeVar

from sqlalchemy import Connection, select
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from bridge.errors import DependencyDown, NotFound
from bridge.ids import ID_SHAPE
from bridge.storage.db import Database
from bridge.storage.models import accounts, message_events, messages
from bridge.storage.states import RANK, MessageState

MESSAGE_NOT_FOUND = "Message not found."
T = TypeVar("T")


@dataclass(frozen=True)
class Event:
    state: str
    at: datetime
    detail: str | None


@dataclass(frozen=True)
class MessageView:
    message_id: str
    batch_id: str
    number: str
    sender_id: str
    state: str
    parts: int
    cost: Decimal
    currency: str
    reference: str | None
    smsc_message_ids: list[str]
    error_code: str | None
    possible_duplicate: bool
    created_at: datetime
    queued_at: datetime | None
    submitted_at: datetime | None
    done_at: datetime | None
    events: list[Event]
    send_at: datetime | None = None  # a scheduled send's time
    expires_at: datetime | None = None  # not submitted by then: expired (the validity's end)


def load(conn: Connection, account_id: int, message_id: str) -> MessageView:
    """The account's message; NotFound("Message not found.") for others' and unknown ids."""
    if not ID_SHAPE.fullmatch(message_id or ""):
        raise NotFound(MESSAGE_NOT_FOUND)
    m = (
        conn.execute(
            select(messages, accounts.c.currency)
            .join(accounts, accounts.c.id == messages.c.account_id)
            .where(messages.c.id == message_id.upper(), messages.c.account_id == account_id)
        )
        .mappings()
        .first()
    )
    if m is None:
        raise NotFound(MESSAGE_NOT_FOUND)
    # a scheduled message was stored `scheduled`; the releaser's `accepted` is an event row
    first = MessageState.SCHEDULED if m["send_at"] is not None else MessageState.ACCEPTED
    history = [Event(first, m["created_at"], None)]
    if m["queued_at"] is not None:
        history.append(Event(MessageState.QUEUED, m["queued_at"], None))
    history += [
        Event(r.state, r.at, r.detail)
        for r in conn.execute(
            select(message_events.c.state, message_events.c.at, message_events.c.detail)
            .where(message_events.c.message_id == m["id"])
            .order_by(message_events.c.at, message_events.c.id)
        )
    ]
    # the life's order (a stable sort by rank): a receipt seen before its submit_sm_resp still
    # lists `submitted` before `delivered`, each with the time it was really seen
    history.sort(key=lambda e: RANK.get(e.state, RANK[MessageState.DELIVERED]))
    return row_view(m, m["currency"], history)


def row_view(m, currency: str, events: list[Event]) -> MessageView:
    """The view of one ``messages`` row (a mapping) with the account's currency and history."""
    return MessageView(
        message_id=m["id"],
        batch_id=m["batch_id"],
        number=m["destination"],
        sender_id=m["sender_id"],
        state=m["state"],
        parts=m["parts"],
        cost=m["price"],
        currency=currency,
        reference=m["client_reference"],
        smsc_message_ids=json.loads(m["smsc_message_ids"]) if m["smsc_message_ids"] else [],
        error_code=m["error_code"],
        possible_duplicate=bool(m["possible_duplicate"]),
        created_at=m["created_at"],
        queued_at=m["queued_at"],
        submitted_at=m["submitted_at"],
        done_at=m["done_at"],
        events=events,
        send_at=m.get("send_at"),
        expires_at=m.get("expires_at"),
    )


def message_view(db: Database, account_id: int, message_id: str) -> MessageView:
    """load() on a fresh read connection; an unreachable database is DependencyDown (503)."""
    return reading(db, load, account_id, message_id)


def reading(db: Database, query: Callable[..., T], *args: Any) -> T:
    """``query(conn, *args)`` on a fresh read connection (once more on a new one when the
    server had dropped it: ``Database.once_more_if_gone``); an unreachable database (or a pool
    that gave no connection in time) is DependencyDown (503)."""

    def read() -> T:
        with db.connect() as conn:
            return query(conn, *args)

    with database_down():
        return db.once_more_if_gone(read, repeatable=True)


@contextlib.contextmanager
def database_down() -> Iterator[None]:
    """Inside: an unreachable database (or a pool that gave no connection in time) raises
    DependencyDown (503)."""
    try:
        yield
    except (OperationalError, PoolTimeout) as exc:
        raise DependencyDown() from exc
    except DBAPIError as exc:
        if exc.connection_invalidated:
            raise DependencyDown() from exc
        raise
