"""bridge.storage.driver: statements on the DBAPI cursor store exactly what SQLAlchemy would,
fail with SQLAlchemy's exceptions, roll back, and stay visible to event listeners
(SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import bindparam, event, select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError, InvalidRequestError, OperationalError

from bridge.storage.db import Database
from bridge.storage.driver import DriverCursor, DriverStatement, driver_transaction
from bridge.storage.ledger import _CHARGE, _CHARGE_ROW
from bridge.storage.models import accounts, ledger, messages

NOW = datetime(2026, 11, 24, 18, 0, 0, 123456, tzinfo=UTC)


def _message(mid: str, account_id: int) -> dict:
    return {
        "id": mid,
        "batch_id": "b-" + mid,
        "account_id": account_id,
        "destination": "+254701234567",
        "sender_id": "ACME",
        "text": "h\u00e9llo \u20ac",
        "encoding": "ucs2",
        "parts": 1,
        "price": Decimal("0.8125"),
        "state": "accepted",
        "client_reference": None,
        "callback_url": "https://example.test/cb",
        "created_at": NOW,
        "updated_at": NOW,
        "expires_at": NOW + timedelta(days=2),
    }


def _begin(db):
    return driver_transaction(db.engine, sqlite=db.is_sqlite)


@pytest.fixture
def account_id(service, account):
    return account.id


def test_rows_written_on_the_cursor_equal_rows_written_by_sqlalchemy(db, account_id):
    keys = tuple(_message("x", account_id))
    insert = DriverStatement(messages.insert(), db.engine.dialect, keys)
    with _begin(db) as cur:
        cur.executemany(
            insert,
            [
                insert.params(_message("raw-1", account_id)),
                insert.params(_message("raw-2", account_id)),
            ],
        )
    with db.begin() as conn:
        conn.execute(messages.insert(), [_message("sa-1", account_id)])
    with db.connect() as conn:
        rows = {r["id"]: dict(r) for r in conn.execute(select(messages)).mappings()}
    for raw in ("raw-1", "raw-2"):
        assert {**rows[raw], "id": "", "batch_id": ""} == {**rows["sa-1"], "id": "", "batch_id": ""}
    assert rows["raw-1"]["price"] == Decimal("0.8125")
    assert rows["raw-1"]["created_at"] == NOW


def test_returning_values_come_back_through_the_column_type(db, service, account_id):
    charge = DriverStatement(_CHARGE, db.engine.dialect)
    with _begin(db) as cur:
        row = cur.execute(
            charge, charge.params({"account_id": account_id, "cost": Decimal("0.8"), "now": NOW})
        )
        refused = cur.execute(
            charge, charge.params({"account_id": account_id, "cost": Decimal("1000"), "now": NOW})
        )
    assert row == (Decimal("99.2000"),) and isinstance(row[0], Decimal)
    assert refused is None  # the conditional UPDATE matched nothing: no row
    assert service.balance(account_id).balance == Decimal("99.20")


def test_a_refused_statement_raises_sqlalchemys_error_and_rolls_back(db, service, account_id):
    charge = DriverStatement(_CHARGE, db.engine.dialect)
    entry = DriverStatement(_CHARGE_ROW, db.engine.dialect)
    params = entry.params(
        {
            "account_id": account_id,
            "amount": Decimal("-0.8"),
            "batch_id": "b1",
            "dedupe_key": "charge:b1",
            "now": NOW,
        }
    )
    with pytest.raises(IntegrityError), _begin(db) as cur:  # the same dedupe key twice
        cur.execute(
            charge, charge.params({"account_id": account_id, "cost": Decimal("0.8"), "now": NOW})
        )
        cur.executemany(entry, [params, params])
    assert service.balance(account_id).balance == Decimal("100.00")  # the charge undone
    with db.connect() as conn:
        assert conn.execute(select(ledger).where(ledger.c.batch_id == "b1")).first() is None
    with _begin(db) as cur:  # the pooled connection is usable again
        cur.executemany(entry, [params])
    with db.connect() as conn:
        assert conn.execute(select(ledger).where(ledger.c.batch_id == "b1")).first()


def test_listeners_see_each_statement(db, account_id):
    seen = []

    def before(conn, cursor, statement, parameters, context, executemany):
        seen.append((statement.split(" ")[0], executemany))

    entry = DriverStatement(_CHARGE_ROW, db.engine.dialect)
    event.listen(db.engine, "before_cursor_execute", before)
    try:
        with _begin(db) as cur:
            cur.executemany(
                entry,
                [
                    entry.params(
                        {
                            "account_id": account_id,
                            "amount": Decimal("-1"),
                            "batch_id": "b2",
                            "dedupe_key": "charge:b2",
                            "now": NOW,
                        }
                    )
                ],
            )
    finally:
        event.remove(db.engine, "before_cursor_execute", before)
    begin_commit = [("BEGIN", False), ("COMMIT", False)] if db.is_sqlite else []
    assert sorted(seen) == sorted([("INSERT", True), *begin_commit])


@pytest.mark.postgres
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_a_lost_postgresql_connection_is_invalidated_not_reused(db, database_url, account_id):
    one = Database(database_url, pool_size=1, max_overflow=0)  # always the same connection
    entry = DriverStatement(_CHARGE_ROW, one.engine.dialect)

    def write(batch: str) -> None:
        with driver_transaction(one.engine, sqlite=False) as cur:
            cur.executemany(
                entry,
                [
                    entry.params(
                        {
                            "account_id": account_id,
                            "amount": Decimal("-1"),
                            "batch_id": batch,
                            "dedupe_key": "charge:" + batch,
                            "now": NOW,
                        }
                    )
                ],
            )

    try:
        write("b3")
        with one.connect() as conn:
            pid = conn.execute(text("SELECT pg_backend_pid()")).scalar()
        with db.begin() as admin:  # another engine: another connection
            admin.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        with pytest.raises(OperationalError) as err:
            write("b4")
        assert err.value.connection_invalidated
        write("b5")  # the pool opened a fresh connection
    finally:
        one.dispose()
    with db.connect() as conn:
        batches = set(
            conn.execute(select(ledger.c.batch_id).where(ledger.c.batch_id.like("b_"))).scalars()
        )
    assert batches == {"b3", "b5"}


def test_parameters_are_what_construct_params_builds_and_a_missing_value_is_named(db):
    """params() skips construct_params when every bind's value is given or fixed: the same
    DBAPI parameters either way (message rows, the ledger row with its fixed kind, the charge),
    and a missing value still fails with SQLAlchemy's own error naming it."""
    row = _message("x", 1)
    dialect = db.engine.dialect
    cases = [
        (DriverStatement(messages.insert(), dialect, tuple(row)), row),
        (
            DriverStatement(_CHARGE_ROW, dialect),
            {"account_id": 1, "amount": Decimal("-0.8"), "batch_id": "B", "dedupe_key": "c:B"}
            | {"now": NOW},
        ),
        (DriverStatement(_CHARGE, dialect), {"account_id": 1, "cost": Decimal("0.8"), "now": NOW}),
    ]
    for stmt, values in cases:
        assert stmt._direct is not None, stmt.sql  # the direct path is the one under test
        full = stmt._compiled.construct_params(values)
        for name, processor in stmt._processors.items():
            full[name] = processor(full[name])
        expected = full if stmt._order is None else tuple(full[n] for n in stmt._order)
        assert stmt.params(values) == expected, stmt.sql
    insert = cases[0][0]
    with pytest.raises(InvalidRequestError, match="'destination'"):
        insert.params({k: v for k, v in row.items() if k != "destination"})


COMPILERS = pytest.mark.parametrize(
    "dialect", [sqlite.dialect(), postgresql.psycopg.dialect()], ids=["sqlite", "postgresql"]
)


def _by_name(stmt: DriverStatement, params) -> dict:
    return params if stmt._order is None else dict(zip(stmt._order, params, strict=True))


@COMPILERS
def test_params_of_a_statement_with_anonymous_binds_that_the_direct_path_refuses(dialect):
    """An IN list (expanding) sends params() through construct_params, whose dict is keyed by
    the binds' rendered names, each value through its column type's processor (a KeyError on
    an anonymous bind's key before)."""
    since = datetime(2020, 1, 1, tzinfo=UTC)
    stmt = DriverStatement(
        select(messages.c.id)
        .where(messages.c.created_at > since)
        .where(messages.c.id.in_(["a", "b"])),
        dialect,
    )
    assert stmt._direct is None
    to_db = messages.c.created_at.type.dialect_impl(dialect).bind_processor(dialect)
    assert to_db is not None
    assert _by_name(stmt, stmt.params({})) == {"created_at_1": to_db(since), "id_1": ["a", "b"]}


@COMPILERS
@pytest.mark.parametrize(
    "construct",
    [
        lambda: select(accounts.c.id).where(accounts.c.username == bindparam("name", "nobody")),
        lambda: text("SELECT id FROM accounts WHERE username = :name").bindparams(name="nobody"),
    ],
    ids=["select", "text"],
)
def test_values_given_by_dot_params_win_over_the_binds_own(dialect, construct):
    """What construct_params does: a value given to the statement's .params() is bound, not
    the bindparam's own value, and a value given to params() wins over both."""
    stmt = DriverStatement(construct().params(name="acme"), dialect)
    assert _by_name(stmt, stmt.params({})) == {"name": "acme"}
    assert _by_name(stmt, stmt.params({"name": "other"})) == {"name": "other"}
    plain = DriverStatement(construct(), dialect)  # nothing collected: the direct path still
    assert plain._direct is not None
    assert _by_name(plain, plain.params({})) == {"name": "nobody"}


def test_a_select_with_dot_params_finds_the_row_they_name(db, account):
    query = select(accounts.c.id).where(accounts.c.username == bindparam("name", "nobody"))
    stmt = DriverStatement(query.params(name="acme"), db.engine.dialect)
    with db.connect() as conn:
        cursor = DriverCursor(conn)
        try:
            assert cursor.fetch_all(stmt, stmt.params({})) == [(account.id,)]
        finally:
            cursor.close()
