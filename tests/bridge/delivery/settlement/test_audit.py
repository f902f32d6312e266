"""bridge.delivery.audit and `smpp-bridge audit`: a healthy database passes; each corruption is caught."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import insert, update

from bridge.cli import main
from bridge.delivery.audit import audit
from bridge.delivery.settlement import Failed, PartReceipt, Submitted
from bridge.storage.models import accounts, ledger, messages
from tests.bridge.delivery.settlement.helpers import utc

T = 1_900_000_100.0


@pytest.fixture
def books(db, settlement, make, account, clock):
    """delivered, submitted, rejected (refunded), expired by receipt (not refunded), queued."""
    msgs = make(5)
    ids = [m.message_id for m in msgs]
    settlement.claim(msgs, recovered=False)
    settlement.apply(
        [
            Submitted(ids[0], ["a"], "c", T),
            Submitted(ids[1], ["b"], "c", T),
            Failed(ids[2], "rejected", "ESME_RINVDSTADR", T),
            Submitted(ids[3], ["d"], "c", T),
        ]
    )
    settlement.apply(
        [
            PartReceipt(ids[0], 0, "a", "DELIVRD", "delivered", True, None, None, None, T + 1),
            PartReceipt(ids[3], 0, "d", "EXPIRED", "expired", True, None, None, None, T + 1),
        ]
    )
    return ids


def check(db, clock, grace: float = 3600):
    with db.connect() as conn:
        return audit(conn, utc(clock.now), grace)


def corrupt(db, stmt):
    with db.begin() as conn:
        conn.execute(stmt)


def test_healthy_books_pass_with_a_summary(db, clock, books):
    report = check(db, clock)
    assert report.problems == []
    assert report.states == {
        "delivered": 1,
        "submitted": 1,
        "rejected": 1,
        "expired": 1,
        "queued": 1,
    }
    assert report.summary() == (
        "audit ok: 1 account(s), 5 message(s) (delivered 1, expired 1,"
        " queued 1, rejected 1, submitted 1), 0 possible duplicate(s);"
        " outbound stream not checked (no Redis)"  # this audit was given no Redis to look in
    )


def test_balance_differing_from_the_ledger(db, clock, books, account):
    corrupt(
        db, update(accounts).where(accounts.c.id == account).values(balance=accounts.c.balance + 1)
    )
    assert any("balance" in p and "ledger sums to" in p for p in check(db, clock).problems)


def test_refunded_twice(db, clock, books, account):
    corrupt(
        db,
        insert(ledger).values(
            account_id=account,
            kind="refund",
            amount=Decimal("0.80"),
            message_id=books[2],
            dedupe_key="manual-second",
            created_at=utc(T),
        ),
    )
    assert any(f"message {books[2]}: refunded 2 times" in p for p in check(db, clock).problems)


def test_refund_of_a_message_in_a_non_refundable_state(db, clock, books, account):
    corrupt(
        db,
        insert(ledger).values(
            account_id=account,
            kind="refund",
            amount=Decimal("0.80"),
            message_id=books[0],
            dedupe_key=f"refund:{books[0]}",
            created_at=utc(T),
        ),
    )
    problems = check(db, clock).problems
    assert any(f"message {books[0]}: refunded but its state is delivered" in p for p in problems)
    assert any(f"message {books[0]}: refunded but the SMSC accepted it" in p for p in problems)


def test_refund_of_a_message_the_smsc_expired(db, clock, books, account):
    """expired by receipt is not refundable: the SMSC accepted (and charged) it."""
    corrupt(
        db,
        insert(ledger).values(
            account_id=account,
            kind="refund",
            amount=Decimal("0.80"),
            message_id=books[3],
            dedupe_key=f"refund:{books[3]}",
            created_at=utc(T),
        ),
    )
    problems = check(db, clock).problems
    assert any(f"message {books[3]}: refunded but the SMSC accepted it" in p for p in problems)
    assert not any("non-refundable" in p or "its state is" in p for p in problems)


def test_failure_without_a_refund(db, clock, books):
    corrupt(db, update(messages).where(messages.c.id == books[4]).values(state="failed"))
    assert any(
        f"message {books[4]}: failed before reaching the SMSC but not refunded" in p
        for p in check(db, clock).problems
    )


def test_batch_charge_differing_from_its_prices(db, clock, books):
    corrupt(
        db, update(messages).where(messages.c.id == books[1]).values(price=messages.c.price + 1)
    )
    assert any("charged 4.00 but its messages cost 5.00" in p for p in check(db, clock).problems)


def test_message_stuck_past_its_validity(db, clock, books):
    clock.advance(86_400 + 3_000)
    assert check(db, clock).problems == []  # within the grace
    clock.advance(1_000)
    problems = check(db, clock).problems
    assert {p.split(":")[0] for p in problems} == {f"message {books[1]}", f"message {books[4]}"}
    assert all("validity ended" in p for p in problems)
    assert check(db, clock, grace=timedelta(days=1).total_seconds()).problems == []


def test_the_command_exits_0_with_a_summary_and_1_with_problems(
    db, database_url, clock, books, capsys, monkeypatch
):
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.delenv("BRIDGE_CONFIG", raising=False)
    assert main(["audit", "--grace", "1e12"]) == 0  # longer than the calendar: still runs
    capsys.readouterr()
    assert main(["audit", "--grace", "1e9"]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1 and out[0].startswith("audit ok: 1 account(s), 5 message(s)")
    corrupt(db, update(messages).where(messages.c.id == books[4]).values(state="expired"))
    assert main(["audit", "--grace", "1e9"]) == 1
    out = capsys.readouterr().out.strip().splitlines()
    assert out[0].startswith(f"message {books[4]}: expired before reaching the SMSC")
    assert out[-1].startswith("audit 1 problem(s)")


def test_the_installed_command_on_an_unmigrated_database(tmp_path):
    with sqlite3.connect(tmp_path / "empty.db") as conn:  # a database, but never migrated
        conn.execute("CREATE TABLE unrelated (x INTEGER)")
    env = dict(os.environ, DATABASE_URL=f"sqlite:///{tmp_path / 'empty.db'}")
    env.pop("BRIDGE_CONFIG", None)
    done = subprocess.run(
        [sys.executable, "-m", "bridge.cli", "audit"],
        env=env,
        timeout=60,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 1
    assert "run `smpp-bridge db upgrade` first" in done.stderr
    assert "Traceback" not in done.stderr
