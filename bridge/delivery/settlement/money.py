"""Batched refunds for the engine: a fixed number of statements whatever the batch size.

bridge.storage.ledger.refund() does the same job for one caller at a time but updates balances one
statement per account; the engine settles thousands of messages per transaction, so here:
one ``INSERT ... ON CONFLICT (dedupe_key) DO NOTHING RETURNING`` per 1,000 refunds (built once,
sent as executemany) and one executemany UPDATE of the balances, in account-id order (two
workers refunding the same accounts lock them in the same order, so they queue instead of
deadlocking).

The dedupe key is ledger's own ``refund:<message_id>`` (UNIQUE): whichever path refunds a
message first, the other cannot refund it again; only rows really inserted move a balance.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal

from sqlalchemy import Connection, bindparam, update
from sqlalchemy.dialects import postgresql, sqlite

from bridge.delivery.settlement.rules import Row
from bridge.storage.ledger import REFUND
from bridge.storage.models import Money, UTCDateTime, accounts, ledger

_CREDIT = (
    update(accounts)
    .where(accounts.c.id == bindparam("aid"))
    .values(
        balance=accounts.c.balance + bindparam("amount", type_=Money()),
        updated_at=bindparam("now", type_=UTCDateTime()),
    )
)


def refund_key(message_id: str) -> str:
    """ledger.dedupe_key of a message's refund (the same as bridge.storage.ledger.refund writes)."""
    return f"{REFUND}:{message_id}"


def _insert_refunds(dialect):
    """INSERT ... ON CONFLICT (dedupe_key) DO NOTHING RETURNING, built once per dialect."""
    return (
        dialect.insert(ledger)
        .on_conflict_do_nothing(index_elements=[ledger.c.dedupe_key])
        .returning(ledger.c.message_id, ledger.c.account_id, ledger.c.amount)
    )


_INSERT = {"sqlite": _insert_refunds(sqlite), "postgresql": _insert_refunds(postgresql)}


def refund(conn: Connection, rows: Iterable[Row], now: datetime) -> list[str]:
    """Refund each row's price once; returns the message ids refunded by this call."""
    wanted = [
        {
            "account_id": r.account_id,
            "kind": REFUND,
            "amount": r.price,
            "message_id": r.id,
            "dedupe_key": refund_key(r.id),
            "created_at": now,
            "note": r.state,
        }
        for r in rows
        if r.price > 0
    ]
    if not wanted:
        return []
    refunded: list[str] = []
    per_account: dict[int, Decimal] = {}
    # executemany + RETURNING: SQLAlchemy's "insertmanyvalues" sends pages of 1,000 rows and
    # returns only the rows really inserted (a conflict returns nothing)
    for message_id, account_id, amount in conn.execute(_INSERT[conn.dialect.name], wanted):
        refunded.append(message_id)
        per_account[account_id] = per_account.get(account_id, Decimal(0)) + amount
    if per_account:
        conn.execute(
            _CREDIT,
            [{"aid": aid, "amount": per_account[aid], "now": now} for aid in sorted(per_account)],
        )
    return refunded
