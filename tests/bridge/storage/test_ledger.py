"""Refunds happen once per message; the audit finds books that do not balance."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from sqlalchemy import select, update

from bridge.storage import ledger
from bridge.storage.models import accounts, messages
from bridge.storage.models import ledger as ledger_table

NOW = datetime(2030, 1, 1, tzinfo=UTC)


def fail_and_refund(db, ids):
    """What the worker will do: a conditional state change, then refund what it changed."""
    with db.begin() as conn:
        changed = (
            conn.execute(
                update(messages)
                .where(messages.c.id.in_(ids), messages.c.state.in_(["accepted", "queued"]))
                .values(state="failed", done_at=NOW, updated_at=NOW)
                .returning(messages.c.id)
            )
            .scalars()
            .all()
        )
        return ledger.refund(conn, changed, NOW)


def test_refund_is_once_per_message(service, db, account):
    body = service.send(account.id, "0701234567,0711111111,0722222222", "x" * 200).body
    ids = [m["message_id"] for m in body["messages"]]
    assert body["balance"] == "95.20"  # 3 x 2 parts x 0.80
    assert fail_and_refund(db, ids[:2]) == Decimal("3.20")
    assert fail_and_refund(db, ids) == Decimal("1.60")  # only the third moved now
    assert fail_and_refund(db, ids) == 0
    with db.begin() as conn:  # calling refund directly again is a no-op too
        assert ledger.refund(conn, ids, NOW) == 0
    assert service.balance(account.id).balance == Decimal("100.00")
    with db.connect() as conn:
        kinds = conn.execute(
            select(ledger_table.c.kind, ledger_table.c.message_id).where(
                ledger_table.c.kind == "refund"
            )
        ).all()
    assert sorted(m for _k, m in kinds) == sorted(ids)
    assert service.audit() == []


def test_refund_rolls_back_with_its_transaction(service, db, account):
    body = service.send(account.id, "0701234567", "hi").body
    try:
        with db.begin() as conn:
            ledger.refund(conn, [body["messages"][0]["message_id"]], NOW)
            raise RuntimeError("the state change failed")
    except RuntimeError:
        pass
    assert service.balance(account.id).balance == Decimal("99.20")
    assert fail_and_refund(db, [body["messages"][0]["message_id"]]) == Decimal("0.80")


def test_audit_finds_a_tampered_balance_and_a_repriced_message(service, db, account):
    body = service.send(account.id, "0701234567", "hi").body
    assert service.audit() == []
    with db.begin() as conn:
        conn.execute(update(accounts).values(balance=Decimal("1000.00")))
        conn.execute(update(messages).values(price=Decimal("0.10")))
    problems = service.audit()
    assert sorted(problems) == sorted(
        [
            f"account acme (id {account.id}): balance 1000.00 but its ledger sums to 99.20",
            f"batch {body['batch_id']}: charged 0.80 but its messages cost 0.10",
        ]
    )


def test_audit_finds_a_refund_that_does_not_match(service, db, account):
    body = service.send(account.id, "0701234567", "hi").body
    mid = body["messages"][0]["message_id"]
    fail_and_refund(db, [mid])
    with db.begin() as conn:
        conn.execute(
            update(ledger_table)
            .where(ledger_table.c.kind == "refund")
            .values(amount=Decimal("5.00"))
        )
        conn.execute(update(accounts).values(balance=accounts.c.balance + Decimal("4.20")))
    assert service.audit() == [f"message {mid}: refunded 5.00 but cost 0.80"]
