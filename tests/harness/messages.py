"""Many stored messages, fast: for the listing tests and bench.listing.

``insert_messages`` writes ``n`` messages of one account straight into the messages table, the
way the send path and the worker leave them (batches, references, numbers, states, prices,
time-ordered ids, and each state's queued/submitted/done times, SMSC id and error code), with
one executemany per chunk on SQLite and COPY on PostgreSQL: a million rows take seconds, not
the hours the HTTP path would. No ledger rows are written (the books of such an account do not
balance; nothing here audits them).
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from sqlalchemy import insert

from bridge.ids import IdGenerator
from bridge.storage.db import Database
from bridge.storage.models import accounts

COLUMNS = (
    "id",
    "batch_id",
    "account_id",
    "destination",
    "sender_id",
    "text",
    "encoding",
    "parts",
    "price",
    "state",
    "client_reference",
    "created_at",
    "updated_at",
    "expires_at",
    "attempts",
    "possible_duplicate",
    "queued_at",
    "submitted_at",
    "done_at",
    "smsc_message_ids",
    "error_code",
)
# how often each state occurs (a week-old account: most messages settled)
STATES = (
    ("delivered", 80),
    ("undelivered", 8),
    ("failed", 4),
    ("expired", 2),
    ("rejected", 1),
    ("submitted", 3),
    ("queued", 1),
    ("accepted", 1),
)
CHUNK = 20_000
# what each state has been through (queued_at, submitted_at, done_at) and its error code, so a
# listed row carries every time and SMSC id a real one would
_LIFE = {
    "accepted": (False, False, False, None),
    "queued": (True, False, False, None),
    "submitted": (True, True, False, None),
    "delivered": (True, True, True, None),
    "undelivered": (True, True, True, "001"),
    "expired": (True, True, True, "EXPIRED"),
    "rejected": (True, False, True, "ESME_RINVDSTADR"),
    "failed": (True, False, True, "ESME_RTHROTTLED"),
}


@dataclass(frozen=True)
class Shape:
    """How the messages spread: per batch, over how many numbers and references, over time."""

    batch_size: int = 100
    numbers: int = 50_000  # distinct recipients
    references: int = 1_000  # distinct references (one per batch, cycling)
    start: datetime = datetime(2030, 1, 1, tzinfo=UTC)
    spacing: timedelta = timedelta(seconds=1)  # between batches
    seed: int = 7


def create_account(db: Database, username: str, currency: str = "KES") -> int:
    """A bare account row (no password that works, no key); returns its id."""
    now = datetime.now(UTC)
    with db.begin() as conn:
        return conn.execute(
            insert(accounts)
            .values(
                username=username,
                password_hash="-",
                balance=Decimal(0),
                currency=currency,
                allowed_sender_ids=[],
                created_at=now,
                updated_at=now,
            )
            .returning(accounts.c.id)
        ).scalar_one()


def rows(account_id: int, n: int, shape: Shape, sqlite: bool) -> Iterator[tuple]:
    """The rows as driver tuples in COLUMNS order (SQLite: money in 1/10,000, text times)."""
    rng = random.Random(f"{shape.seed}:{account_id}")
    clock = [shape.start.timestamp()]
    ids = IdGenerator(clock=lambda: clock[0], randbytes=rng.randbytes)
    states = [state for state, weight in STATES for _ in range(weight)]
    price = Decimal("0.80")
    for batch_no, first in enumerate(range(0, n, shape.batch_size)):
        at = shape.start + shape.spacing * batch_no
        clock[0] = at.timestamp()
        size = min(shape.batch_size, n - first)
        batch_id, *message_ids = ids.many(size + 1)
        reference = f"ref-{batch_no % shape.references}"
        naive = at.replace(tzinfo=None)

        def stored(seconds: float, naive=naive):
            moment = naive + timedelta(seconds=seconds)
            return moment.isoformat(" ", "microseconds") if sqlite else moment

        created, expires = stored(0), stored(2 * 86400)
        queued, submitted, done = stored(0.05), stored(0.4), stored(4.2)
        for mid in message_ids:
            state = rng.choice(states)
            was_queued, was_submitted, was_done, error = _LIFE[state]
            yield (
                mid,
                batch_id,
                account_id,
                f"+25470{rng.randrange(shape.numbers):07d}",
                "SMSBRIDGE",
                "Listing benchmark message.",
                "gsm",
                1,
                8000 if sqlite else price,
                state,
                reference,
                created,
                created,
                expires,
                1,
                False,
                queued if was_queued else None,
                submitted if was_submitted else None,
                done if was_done else None,
                f'["{mid[-10:].lower()}"]' if was_submitted else None,
                error,
            )


def insert_messages(db: Database, account_id: int, n: int, shape: Shape | None = None) -> None:
    """Write ``n`` messages of ``account_id`` (see the module docstring)."""
    shape = shape or Shape()
    sqlite = db.engine.dialect.name == "sqlite"
    source = rows(account_id, n, shape, sqlite)
    names = ", ".join(COLUMNS)
    with db.begin() as conn:
        raw = conn.connection.driver_connection
        assert raw is not None, "the connection has no DBAPI connection under it"
        if sqlite:
            marks = ", ".join("?" * len(COLUMNS))
            sql = f"INSERT INTO messages ({names}) VALUES ({marks})"
            chunk: list[tuple] = []
            for row in source:
                chunk.append(row)
                if len(chunk) == CHUNK:
                    raw.executemany(sql, chunk)
                    chunk = []
            if chunk:
                raw.executemany(sql, chunk)
        else:
            with raw.cursor() as cur, cur.copy(f"COPY messages ({names}) FROM STDIN") as copy:
                for row in source:
                    copy.write_row(row)


def analyze(db: Database) -> None:
    """Refresh the planner's statistics (PostgreSQL autovacuum would, some time later)."""
    if db.engine.dialect.name == "postgresql":
        with db.engine.connect() as conn:
            conn.exec_driver_sql("ANALYZE messages")
            conn.commit()
