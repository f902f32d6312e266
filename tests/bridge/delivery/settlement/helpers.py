"""Building blocks for settlement tests: accounts and charged messages, written the way the
accept path writes them (one charge ledger row per batch, messages in `accepted`), and readers
of the resulting rows."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from sqlalchemy import event, func, select

from bridge.ids import IdGenerator
from bridge.redis.outbox import OutboundMessage
from bridge.storage import ledger
from bridge.storage.models import accounts, message_events, message_parts, messages
from bridge.storage.models import ledger as ledger_rows
from tests.harness.clock import Clock  # noqa: F401  (re-exported for the tests here)

_ids = IdGenerator()


def utc(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


def create_account(db, username: str, balance: Decimal, now: float) -> int:
    """An account whose opening balance is a top-up ledger row (so the books balance)."""
    with db.begin() as conn:
        account_id = conn.execute(
            accounts.insert()
            .values(
                username=username,
                password_hash="x",
                currency="KES",
                allowed_sender_ids=[],
                created_at=utc(now),
                updated_at=utc(now),
            )
            .returning(accounts.c.id)
        ).scalar_one()
        ledger.topup(conn, account_id, balance, utc(now), note="opening balance")
    return account_id


def make_messages(
    db,
    account_id: int,
    n: int,
    now: float,
    *,
    parts: int = 1,
    price: Decimal = Decimal("0.80"),
    state: str = "accepted",
    validity: float = 86_400,
) -> list[OutboundMessage]:
    """One charged batch of n messages (like bridge.accept.send), returned as stream entries."""
    batch_id = _ids.new()
    ids = _ids.many(n)
    created = utc(now)
    expires = created + timedelta(seconds=validity)
    with db.begin() as conn:
        ledger.charge(conn, account_id, price * n, batch_id, created)
        conn.execute(
            messages.insert(),
            [
                dict(
                    id=mid,
                    batch_id=batch_id,
                    account_id=account_id,
                    destination=f"+25470{i:07d}",
                    sender_id="SMSBRIDGE",
                    text="hello",
                    encoding="gsm",
                    parts=parts,
                    price=price,
                    state=state,
                    created_at=created,
                    updated_at=created,
                    expires_at=expires,
                )
                for i, mid in enumerate(ids)
            ],
        )
    return [
        OutboundMessage(
            mid,
            batch_id,
            account_id,
            f"+25470{i:07d}",
            "SMSBRIDGE",
            "hello",
            "gsm",
            parts,
            price,
            expires.timestamp(),
        )
        for i, mid in enumerate(ids)
    ]


def row(db, message_id: str):
    with db.connect() as conn:
        return conn.execute(select(messages).where(messages.c.id == message_id)).mappings().one()


def states(db, ids) -> dict[str, str]:
    with db.connect() as conn:
        return dict(
            conn.execute(
                select(messages.c.id, messages.c.state).where(messages.c.id.in_(list(ids)))
            ).all()
        )


def smsc_ids(db, message_id: str) -> list[str] | None:
    raw = row(db, message_id)["smsc_message_ids"]
    return json.loads(raw) if raw else None


def events(db, message_id: str) -> list[tuple[str, str | None]]:
    with db.connect() as conn:
        return [
            tuple(r)
            for r in conn.execute(
                select(message_events.c.state, message_events.c.detail)
                .where(message_events.c.message_id == message_id)
                .order_by(message_events.c.id)
            )
        ]


def parts_of(db, message_id: str) -> dict[int, str]:
    with db.connect() as conn:
        return dict(
            conn.execute(
                select(message_parts.c.part_index, message_parts.c.state).where(
                    message_parts.c.message_id == message_id
                )
            ).all()
        )


def refunds(db, message_ids=None) -> dict[str, int]:
    """message id -> number of refund ledger rows."""
    query = (
        select(ledger_rows.c.message_id, func.count())
        .where(ledger_rows.c.kind == "refund")
        .group_by(ledger_rows.c.message_id)
    )
    with db.connect() as conn:
        found = dict(conn.execute(query).all())
    return found if message_ids is None else {m: found.get(m, 0) for m in message_ids}


def balance(db, account_id: int) -> Decimal:
    with db.connect() as conn:
        return ledger.balance_of(conn, account_id)


class StatementCounter:
    """Counts SQL statements sent to the database (one per execute / executemany)."""

    def __init__(self, engine) -> None:
        self.engine = engine
        self.statements: list[str] = []

    def _on(self, conn, cursor, statement, parameters, context, executemany) -> None:
        if not statement.lstrip().upper().startswith(("BEGIN", "COMMIT", "ROLLBACK")):
            self.statements.append(statement)

    def __enter__(self) -> StatementCounter:
        event.listen(self.engine, "before_cursor_execute", self._on)
        return self

    def __exit__(self, *exc) -> None:
        event.remove(self.engine, "before_cursor_execute", self._on)
