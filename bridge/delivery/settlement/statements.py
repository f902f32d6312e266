"""Settlement's statements, compiled once per database and run on the DBAPI cursor.

Through ``Connection.execute`` each statement of a settlement transaction cost ~50-100 µs of
SQLAlchemy bookkeeping (execution context, an ``IN`` list built and cached per distinct length,
parameter dictionaries per row): at one-recipient load that was most of the writer's CPU per
message. Here every statement is the same SQLAlchemy Core construct, compiled once for the
engine's dialect (bridge.storage.batch), with a list of ids as ONE parameter: ``= ANY(array)``
on PostgreSQL, ``IN (SELECT value FROM json_each(:ids))`` on SQLite; so the SQL text is fixed
whatever the batch size and no bind limit applies.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence

from sqlalchemy import String, any_, bindparam, case, false, func, or_, select, true, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Dialect

from bridge.storage.batch import BatchStatement
from bridge.storage.models import (
    UTCDateTime,
    accounts,
    message_events,
    message_parts,
    messages,
    webhook_outbox,
)
from bridge.storage.states import UNSENT, MessageState

# The columns settlement locks and works on (rules.Row.from_values reads them in this order).
LOCK_COLUMNS = (
    messages.c.id,
    messages.c.account_id,
    messages.c.price,
    messages.c.parts,
    messages.c.state,
    messages.c.submitted_at,
    messages.c.smsc_message_ids,
    messages.c.connection,
    messages.c.done_at,
    messages.c.error_code,
    messages.c.possible_duplicate,
    messages.c.callback_url,
    messages.c.callback_events,
    messages.c.attempts,
)
PART_COLUMNS = (
    message_parts.c.message_id,
    message_parts.c.part_index,
    message_parts.c.stat,
    message_parts.c.state,
    message_parts.c.final,
    message_parts.c.done_at,
)
PART_KEYS = (
    "message_id",
    "part_index",
    "smsc_message_id",
    "stat",
    "state",
    "final",
    "error_code",
    "done_at",
    "received_at",
)
EVENT_KEYS = ("message_id", "state", "at", "detail")
OUTBOX_KEYS = ("event_id", "message_id", "account_id", "url", "body", "created_at")

UPDATE = (
    update(messages)
    .where(messages.c.id == bindparam("b_id"), messages.c.state == bindparam("b_old"))
    .values(
        state=bindparam("b_state"),
        submitted_at=bindparam("b_submitted", type_=UTCDateTime()),
        connection=bindparam("b_conn"),
        smsc_message_ids=bindparam("b_smsc"),
        done_at=bindparam("b_done", type_=UTCDateTime()),
        error_code=bindparam("b_err"),
        possible_duplicate=bindparam("b_dup"),
        updated_at=bindparam("b_now", type_=UTCDateTime()),
    )
)
PART_UPGRADE = (
    update(message_parts)
    .where(
        message_parts.c.message_id == bindparam("b_mid"),
        message_parts.c.part_index == bindparam("b_part"),
        message_parts.c.final == false(),
    )
    .values(
        smsc_message_id=bindparam("smsc_message_id"),
        stat=bindparam("stat"),
        state=bindparam("state"),
        final=bindparam("final"),
        error_code=bindparam("error_code"),
        done_at=bindparam("done_at", type_=UTCDateTime()),
        received_at=bindparam("received_at", type_=UTCDateTime()),
    )
)


def listed(column, dialect: Dialect):
    """``column`` is one of the ids of the parameter ``ids`` (see :meth:`Statements.ids`)."""
    if dialect.name == "postgresql":
        return column == any_(bindparam("ids", type_=postgresql.ARRAY(String)))
    values = func.json_each(bindparam("ids", type_=String)).table_valued("value")
    return column.in_(select(values.c.value))


def _claim(dialect: Dialect, *, recovered: bool):
    """UPDATE ... RETURNING of the claim (Settlement.claim): accepted|queued -> queued,
    attempts + 1; a fresh entry only where no worker claimed the message before."""
    now = bindparam("now", type_=UTCDateTime())
    values = dict(
        state=MessageState.QUEUED,
        attempts=messages.c.attempts + 1,
        connection=func.coalesce(bindparam("conn", type_=String), messages.c.connection),
        queued_at=func.coalesce(messages.c.queued_at, now),
        updated_at=now,
    )
    if recovered:
        values["possible_duplicate"] = case(
            (messages.c.attempts >= 1, true()), else_=messages.c.possible_duplicate
        )
    unsent = or_(*(messages.c.state == state for state in sorted(UNSENT)))
    stmt = update(messages).where(listed(messages.c.id, dialect), unsent)
    if not recovered:
        stmt = stmt.where(messages.c.attempts == 0)
    return stmt.values(**values).returning(
        messages.c.id, messages.c.attempts, messages.c.possible_duplicate
    )


def _on_conflict_nothing(table, index_column, dialect: Dialect):
    insert = postgresql.insert if dialect.name == "postgresql" else sqlite.insert
    return insert(table).on_conflict_do_nothing(index_elements=[index_column])


class Statements:
    """The statements of claim and apply (all but the refunds': money), for one dialect (:func:`statements`)."""

    def __init__(self, dialect: Dialect) -> None:
        self.postgres = dialect.name == "postgresql"
        lock = select(*LOCK_COLUMNS).where(listed(messages.c.id, dialect))
        if self.postgres:  # row locks in id order: two workers queue instead of deadlocking
            lock = lock.order_by(messages.c.id).with_for_update()
        self.lock = BatchStatement(lock, dialect)
        self.parts = BatchStatement(
            select(*PART_COLUMNS).where(listed(message_parts.c.message_id, dialect)), dialect
        )
        self.part_insert = BatchStatement(message_parts.insert(), dialect, PART_KEYS)
        self.part_upgrade = BatchStatement(PART_UPGRADE, dialect)
        self.update = BatchStatement(UPDATE, dialect)
        self.event_insert = BatchStatement(message_events.insert(), dialect, EVENT_KEYS)
        self.details = BatchStatement(
            select(
                messages.c.id,
                messages.c.batch_id,
                messages.c.destination,
                messages.c.client_reference,
                messages.c.created_at,
                accounts.c.currency,
            )
            .join(accounts, accounts.c.id == messages.c.account_id)
            .where(listed(messages.c.id, dialect)),
            dialect,
        )
        # a row still there with the same event id is the same event: keep it
        self.outbox_insert = BatchStatement(
            _on_conflict_nothing(webhook_outbox, webhook_outbox.c.event_id, dialect),
            dialect,
            OUTBOX_KEYS,
        )
        self.outbox_delete = BatchStatement(
            webhook_outbox.delete().where(listed(webhook_outbox.c.event_id, dialect)), dialect
        )
        self.claim = {
            r: BatchStatement(_claim(dialect, recovered=r), dialect) for r in (False, True)
        }

    def ids(self, ids: Sequence[str]):
        """The value of an ``ids`` parameter: an array on PostgreSQL, JSON text on SQLite."""
        return list(ids) if self.postgres else json.dumps(list(ids))


@functools.lru_cache(maxsize=8)
def statements(dialect: Dialect) -> Statements:
    """The statements for ``dialect`` (an engine's), compiled on first use."""
    return Statements(dialect)
