"""bridge.storage.batch: fixed statements only, UTC datetimes bound as the type binds them, typed
rows equal SQLAlchemy's, executemany reports the rows changed in all (SQLite and PostgreSQL)."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from decimal import Decimal

import pytest
from sqlalchemy import bindparam, select, update
from sqlalchemy.exc import ArgumentError

from bridge.storage.batch import BatchStatement, executemany, fetch_rows
from bridge.storage.driver import driver_transaction
from bridge.storage.models import UTCDateTime, messages
from tests.bridge.storage.test_driver import NOW, _message


@pytest.fixture
def account_id(service, account):
    return account.id


def _insert(db, account_id, ids):
    with db.begin() as conn:
        conn.execute(messages.insert(), [_message(mid, account_id) for mid in ids])


def test_a_statement_whose_sql_changes_per_call_is_refused(db):
    with pytest.raises(ArgumentError, match="fixed statement"):
        BatchStatement(
            select(messages.c.id).where(messages.c.id.in_(["a", "b"])), db.engine.dialect
        )


def test_rows_come_back_as_sqlalchemy_gives_them(db, account_id):
    _insert(db, account_id, ["r1", "r2"])
    columns = (
        messages.c.id,
        messages.c.price,
        messages.c.created_at,
        messages.c.possible_duplicate,
        messages.c.done_at,
    )
    query = select(*columns).where(messages.c.id >= bindparam("low")).order_by(messages.c.id)
    batch = BatchStatement(query, db.engine.dialect)
    with driver_transaction(db.engine, sqlite=db.is_sqlite) as cur:
        rows = fetch_rows(cur, batch, batch.params({"low": "r"}))
    with db.connect() as conn:
        expected = [tuple(r) for r in conn.execute(query, {"low": "r"})]
    assert rows == expected
    assert rows[0] == ("r1", Decimal("0.8125"), NOW, False, None)


def test_executemany_counts_the_rows_changed_by_all(db, account_id):
    _insert(db, account_id, ["c1", "c2", "c3"])
    stmt = BatchStatement(
        update(messages)
        .where(messages.c.id == bindparam("b_id"), messages.c.state == "accepted")
        .values(state="queued", updated_at=bindparam("now", type_=UTCDateTime())),
        db.engine.dialect,
    )
    later = NOW + timedelta(seconds=1)
    rows = [{"b_id": mid, "now": later} for mid in ("c1", "c2", "c3", "nobody")]
    with driver_transaction(db.engine, sqlite=db.is_sqlite) as cur:
        assert executemany(cur, stmt, rows) == 3
        assert executemany(cur, stmt, rows[:1]) == 0  # no longer accepted
        assert executemany(cur, stmt, []) == 0
    with db.connect() as conn:
        stored = conn.execute(select(messages.c.state, messages.c.updated_at)).all()
    assert sorted(stored) == [("queued", later)] * 3


def test_utc_datetimes_are_bound_as_sqlalchemy_binds_them(db):
    """The faster UTCDateTime processor gives the type's own value (random instants, zones
    and microseconds) and refuses naive datetimes as the type does."""
    stmt = BatchStatement(
        update(messages).values(updated_at=bindparam("now", type_=UTCDateTime())),
        db.engine.dialect,
    )
    own = UTCDateTime().dialect_impl(db.engine.dialect).bind_processor(db.engine.dialect)
    assert own is not None
    rng = random.Random(13)
    for _ in range(2000):
        zone = timezone(timedelta(minutes=rng.randrange(-14 * 60, 14 * 60)))
        moment = datetime(2000, 1, 1, tzinfo=UTC) + timedelta(
            seconds=rng.randrange(10**9), microseconds=rng.choice([0, rng.randrange(10**6)])
        )
        value = moment.astimezone(zone)
        bound = stmt.params({"now": value})
        assert (bound["now"] if isinstance(bound, dict) else bound[0]) == own(value)
    with pytest.raises(ValueError, match="timezone-aware"):
        stmt.params({"now": datetime(2026, 1, 1)})


class _ClocksGoBack(tzinfo):
    """A zone in its repeated hour, as on the night clocks go back: the first pass
    (fold=0) is +02:00, the second (fold=1) +01:00 (Europe/Berlin's 02:30 on 2026-10-25)."""

    def utcoffset(self, dt):
        return timedelta(hours=1 if dt.fold else 2)

    def dst(self, dt):
        return timedelta(hours=0 if dt.fold else 1)

    def tzname(self, dt):
        return "CET" if dt.fold else "CEST"


def test_the_two_passes_of_a_repeated_hour_bind_their_own_instants(db):
    """In one zone, 02:30 of the first and of the second pass compare (and hash) equal though
    they are an hour apart: each binds as UTCDateTime binds it, whichever came first (the
    cached UTC text of an instant must not answer for the other)."""
    stmt = BatchStatement(
        update(messages).values(updated_at=bindparam("now", type_=UTCDateTime())),
        db.engine.dialect,
    )
    own = UTCDateTime().dialect_impl(db.engine.dialect).bind_processor(db.engine.dialect)
    assert own is not None
    first = datetime(2026, 10, 25, 2, 30, 0, 250, tzinfo=_ClocksGoBack())
    second = first.replace(fold=1)
    assert first == second and hash(first) == hash(second)  # what a cache keyed on it sees
    assert own(first) != own(second)
    for value in (first, second, first, second):
        bound = stmt.params({"now": value})
        assert (bound["now"] if isinstance(bound, dict) else bound[0]) == own(value)
