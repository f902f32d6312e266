"""A COMMIT whose answer was lost (PostgreSQL; the connection cut after the server applied it):
the send's answer says what happened to the money. tests/harness/commit_cutter.py drops the
answer of a real COMMIT on a real server."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from bridge.errors import DependencyDown
from bridge.storage.db import Database, upgrade
from bridge.storage.models import ledger, messages
from tests.harness.commit_cutter import CommitCutter

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.parametrize("database_url", ["postgresql"], indirect=True),
]


@pytest.fixture(params=[True], ids=["applied"])
def cutter(request, database_url):
    port = make_url(database_url).port
    assert port is not None  # the throwaway cluster listens on a TCP port
    proxy = CommitCutter(port, applied=request.param)
    try:
        yield proxy
    finally:
        proxy.stop()


@pytest.fixture
def db(database_url, cutter):
    """The bridge's Database, its connections through the cutter."""
    upgrade(database_url)
    url = make_url(database_url).set(host="127.0.0.1", port=cutter.port)
    database = Database(url.render_as_string(hide_password=False))
    try:
        yield database
    finally:
        database.dispose()


def counts(database_url, account_id: int) -> tuple[int, int]:
    """(charge ledger rows, message rows) of the account, read past the cutter."""
    direct = Database(database_url)
    try:
        with direct.connect() as conn:
            charges = conn.execute(
                select(func.count()).where(
                    ledger.c.account_id == account_id, ledger.c.kind == "charge"
                )
            ).scalar_one()
            rows = conn.execute(
                select(func.count()).where(messages.c.account_id == account_id)
            ).scalar_one()
    finally:
        direct.dispose()
    return charges, rows


def test_a_group_send_whose_commit_answer_was_lost_answers_what_the_database_holds(
    service, account, cutter, database_url
):
    service.send(account.id, "0701234567", "warm")
    cutter.arm(b"INSERT INTO ledger")
    try:
        body = service.send(account.id, "0701234568", "after").body
    except DependencyDown:  # "nothing charged": must then be true
        body = None
    assert cutter.cut.is_set()
    charges, rows = counts(database_url, account.id)
    assert (charges, rows) == (2, 2)  # the COMMIT held
    assert body is not None, "answered 503 (nothing charged) for a send that was charged"
    assert body["messages"][0]["number"] == "+254701234568"
    assert Decimal(body["balance"]) == Decimal("100.00") - 2 * Decimal("0.80")


@pytest.mark.parametrize("cutter", [False], ids=["rolled back"], indirect=True)
def test_a_group_send_whose_commit_never_reached_the_server_is_a_503_with_nothing_charged(
    service, account, cutter, database_url
):
    service.send(account.id, "0701234567", "warm")
    cutter.arm(b"INSERT INTO ledger")
    with pytest.raises(DependencyDown):
        service.send(account.id, "0701234568", "after")
    assert cutter.cut.is_set()
    assert counts(database_url, account.id) == (1, 1)
    assert service.balance(account.id).balance == Decimal("100.00") - Decimal("0.80")


def test_a_send_with_an_idempotency_key_whose_commit_answer_was_lost_is_answered_once(
    service, account, cutter, database_url
):
    """Its own transaction (SQLAlchemy's commit): run again on a fresh connection, it finds
    its own key and answers the stored first answer; charged once."""
    service.send(account.id, "0701234567", "warm")
    cutter.arm(b"INSERT INTO ledger")
    result = service.send(account.id, "0701234568", "after", idempotency_key="k-1")
    assert cutter.cut.is_set()
    assert counts(database_url, account.id) == (2, 2)
    assert result.body["messages"][0]["number"] == "+254701234568"
    again = service.send(account.id, "0701234568", "after", idempotency_key="k-1")
    assert again.body == result.body and counts(database_url, account.id) == (2, 2)


def test_a_write_whose_sqlalchemy_commit_answer_was_lost_is_not_run_again(db, cutter, database_url):
    """A ``Database.begin()`` write (SQLAlchemy's own COMMIT: the error names no statement)
    under ``once_more_if_gone``: its COMMIT held, so running it again would apply it twice."""
    direct = Database(database_url)
    try:
        with direct.begin() as conn:
            conn.execute(text("CREATE TABLE lost_commit_probe (id serial PRIMARY KEY)"))
        runs = []

        def write() -> None:
            runs.append(1)
            with db.begin() as conn:
                conn.execute(text("INSERT INTO lost_commit_probe DEFAULT VALUES"))

        cutter.arm(b"INSERT INTO lost_commit_probe")
        with pytest.raises(DBAPIError) as err:
            db.once_more_if_gone(write)
        assert cutter.cut.is_set() and err.value.connection_invalidated
        with direct.connect() as conn:
            rows = conn.execute(text("SELECT count(*) FROM lost_commit_probe")).scalar_one()
        assert (len(runs), rows) == (1, 1), "the write ran again after its COMMIT held"
    finally:
        direct.dispose()
