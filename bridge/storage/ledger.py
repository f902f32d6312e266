"""Money: charges, refunds and top-ups, each one ledger row; a balance is the sum of its ledger.

Every function takes a connection inside the caller's transaction, so the money movement and
whatever it pays for (messages stored, a state change to failed) commit or roll back together.

- A charge is one conditional UPDATE (``balance >= cost AND active``): under any concurrency a
  balance can never go below zero; when it would, nothing is written and
  :class:`~bridge.errors.InsufficientBalance` is raised.
- ``ledger.dedupe_key`` is UNIQUE: ``charge:<batch_id>`` and ``refund:<message_id>`` make a
  second charge of a batch or a second refund of a message impossible, not merely unlikely.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal, InvalidOperation

from sqlalchemy import Connection, bindparam, func, select, update
from sqlalchemy.dialects import postgresql, sqlite

from bridge.errors import InsufficientBalance, InvalidInput, NotFound
from bridge.storage.models import MONEY_SCALE, Money, UTCDateTime, accounts, ledger, messages

CHARGE, REFUND, TOPUP = "charge", "refund", "topup"
MAX_AMOUNT = Decimal(100000000000000)  # 10^14: NUMERIC(18,4) holds 14 integer digits
_CENT = Decimal("0.01")
_REFUND_CHUNK = 500
_PLAIN_AMOUNT = re.compile(r"-?[0-9]+(?:\.[0-9]+)?")  # what parse_amount reads: no 1e3, no inf


def money_str(amount: Decimal) -> str:
    """JSON form of money: a string with two decimals, more only when they are not zero.

    ``Decimal("99.2") -> "99.20"``, ``Decimal("0.8000") -> "0.80"``, ``Decimal("0.125") -> "0.125"``.
    """
    exact = Decimal(amount).quantize(Decimal(1).scaleb(-MONEY_SCALE)).normalize()
    if _exponent(exact) >= -2:
        exact = exact.quantize(_CENT)
    return f"{exact:f}"


def _exponent(value: Decimal) -> int:
    """The exponent of a finite Decimal (NaN and the infinities have none)."""
    exponent = value.as_tuple().exponent
    if not isinstance(exponent, int):
        raise ValueError(f"{value} is not a finite amount")
    return exponent


def parse_amount(raw: object, what: str = "amount", allow_zero: bool = False) -> Decimal:
    """A positive (or zero) amount from user input, written in plain digits with at most 4
    decimals (no exponent, inf or nan: ``1e3`` is refused, not read as 1000); else
    InvalidInput."""
    text = str(raw).strip()
    if not _PLAIN_AMOUNT.fullmatch(text):
        try:
            Decimal(text)
        except (InvalidOperation, ValueError):
            hint = ""
        else:
            hint = " written in plain digits (no exponent, inf or nan)"
        raise InvalidInput(
            f"{what} must be a number like 100 or 99.50{hint}, got {raw!r}.", field=what
        )
    amount = Decimal(text)
    if amount < 0 or (amount == 0 and not allow_zero):
        raise InvalidInput(
            f"{what} must be {'zero or more' if allow_zero else 'greater than zero'}, got {raw!r}.",
            field=what,
        )
    if _exponent(amount) < -MONEY_SCALE:
        raise InvalidInput(f"{what} has more than {MONEY_SCALE} decimals: {raw!r}.", field=what)
    if amount >= MAX_AMOUNT:
        raise InvalidInput(f"{what} is too large: {raw!r}.", field=what)
    return amount


# Built once: the send path runs these on every request, and constructing a statement costs
# more than executing it on SQLite.
_CHARGE = (
    update(accounts)
    .where(
        accounts.c.id == bindparam("account_id"),
        accounts.c.balance >= bindparam("cost", type_=Money()),
        accounts.c.active,
    )
    .values(
        balance=accounts.c.balance - bindparam("cost", type_=Money()),
        updated_at=bindparam("now", type_=UTCDateTime()),
    )
    .returning(accounts.c.balance)
)
_CHARGE_ROW = ledger.insert().values(
    account_id=bindparam("account_id"),
    kind=CHARGE,
    amount=bindparam("amount", type_=Money()),
    batch_id=bindparam("batch_id"),
    dedupe_key=bindparam("dedupe_key"),
    created_at=bindparam("now", type_=UTCDateTime()),
)


def charge(
    conn: Connection, account_id: int, cost: Decimal, batch_id: str, now: datetime
) -> Decimal:
    """Take ``cost`` from the account for a batch; returns the new balance.

    Raises InsufficientBalance (nothing written) when the balance does not cover it or the
    account is disabled.
    """
    row = conn.execute(_CHARGE, {"account_id": account_id, "cost": cost, "now": now}).first()
    if row is None:
        raise InsufficientBalance()
    conn.execute(
        _CHARGE_ROW,
        {
            "account_id": account_id,
            "amount": -cost,
            "batch_id": batch_id,
            "dedupe_key": f"{CHARGE}:{batch_id}",
            "now": now,
        },
    )
    return row[0]


def topup(
    conn: Connection, account_id: int, amount: Decimal, now: datetime, note: str | None = None
) -> Decimal:
    """Add ``amount`` (> 0) to the account; returns the new balance."""
    if amount <= 0:
        raise InvalidInput("A top-up amount must be greater than zero.", field="amount")
    row = conn.execute(
        update(accounts)
        .where(accounts.c.id == account_id)
        .values(balance=accounts.c.balance + amount, updated_at=now)
        .returning(accounts.c.balance)
    ).first()
    if row is None:
        raise NotFound(f"No account with id {account_id}.")
    conn.execute(
        ledger.insert().values(
            account_id=account_id, kind=TOPUP, amount=amount, note=note, created_at=now
        )
    )
    return row[0]


def _insert_ignoring_duplicates(conn: Connection, rows: list[dict]):
    """INSERT ... ON CONFLICT DO NOTHING RETURNING: only the rows really inserted come back."""
    dialect = sqlite if conn.dialect.name == "sqlite" else postgresql
    stmt = (
        dialect.insert(ledger)
        .values(rows)
        .on_conflict_do_nothing(index_elements=[ledger.c.dedupe_key])
        .returning(ledger.c.account_id, ledger.c.amount)
    )
    return conn.execute(stmt).all()


def refund(conn: Connection, message_ids: Iterable[str], now: datetime) -> Decimal:
    """Give back each message's price, exactly once per message; returns the total refunded.

    Call it in the transaction that moved these messages to a final failed state, with the ids
    your conditional state UPDATE actually changed (``... WHERE state IN (...) RETURNING id``):
    then a message is refunded iff this transaction failed it. Refunding a message again is a
    no-op (the UNIQUE dedupe key), so retries of the whole transaction are safe too.
    """
    ids = list(dict.fromkeys(message_ids))
    total = Decimal(0)
    per_account: dict[int, Decimal] = {}
    for start in range(0, len(ids), _REFUND_CHUNK):
        chunk = ids[start : start + _REFUND_CHUNK]
        priced = conn.execute(
            select(messages.c.id, messages.c.account_id, messages.c.price).where(
                messages.c.id.in_(chunk)
            )
        ).all()
        rows = [
            dict(
                account_id=acc,
                kind=REFUND,
                amount=price,
                message_id=mid,
                dedupe_key=f"{REFUND}:{mid}",
                created_at=now,
            )
            for mid, acc, price in priced
            if price > 0
        ]
        if not rows:
            continue
        for account_id, amount in _insert_ignoring_duplicates(conn, rows):
            per_account[account_id] = per_account.get(account_id, Decimal(0)) + amount
    for account_id, amount in per_account.items():
        conn.execute(
            update(accounts)
            .where(accounts.c.id == account_id)
            .values(balance=accounts.c.balance + amount, updated_at=now)
        )
        total += amount
    return total


def audit(conn: Connection) -> list[str]:
    """Every inconsistency found, as sentences; an empty list means the books balance.

    Checks: balance == sum(ledger) per account; each batch's charge == the sum of its
    messages' prices; each refund matches a message's price; nothing charged or refunded twice.
    """
    problems: list[str] = []
    sums = (
        select(ledger.c.account_id, func.sum(ledger.c.amount).label("total"))
        .group_by(ledger.c.account_id)
        .subquery()
    )
    for acc_id, username, balance, total in conn.execute(
        select(accounts.c.id, accounts.c.username, accounts.c.balance, sums.c.total).select_from(
            accounts.outerjoin(sums, sums.c.account_id == accounts.c.id)
        )
    ):
        total = total if total is not None else Decimal(0)
        if balance != total:
            problems.append(
                f"account {username} (id {acc_id}): balance {money_str(balance)}"
                f" but its ledger sums to {money_str(total)}"
            )
    problems += _audit_charges(conn)
    problems += _audit_refunds(conn)
    return problems


def _audit_charges(conn: Connection) -> list[str]:
    problems = []
    priced = (
        select(
            messages.c.batch_id, func.sum(messages.c.price).label("total"), func.count().label("n")
        )
        .group_by(messages.c.batch_id)
        .subquery()
    )
    charges = (
        select(ledger.c.batch_id, func.sum(ledger.c.amount).label("total"), func.count().label("n"))
        .where(ledger.c.kind == CHARGE)
        .group_by(ledger.c.batch_id)
        .subquery()
    )
    query = select(priced.c.batch_id, priced.c.total, charges.c.total, charges.c.n).select_from(
        priced.outerjoin(charges, charges.c.batch_id == priced.c.batch_id)
    )
    for batch_id, price_total, charged, n_charges in conn.execute(query):
        if charged is None:
            problems.append(f"batch {batch_id}: messages stored but no charge in the ledger")
        elif n_charges > 1:
            problems.append(f"batch {batch_id}: charged {n_charges} times")
        elif -charged != price_total:
            problems.append(
                f"batch {batch_id}: charged {money_str(-charged)} but its messages"
                f" cost {money_str(price_total)}"
            )
    return problems


def _audit_refunds(conn: Connection) -> list[str]:
    problems = []
    query = (
        select(
            ledger.c.message_id,
            func.count(),
            func.sum(ledger.c.amount),
            func.max(messages.c.price),
            func.count(messages.c.id),
        )
        .select_from(ledger.outerjoin(messages, messages.c.id == ledger.c.message_id))
        .where(ledger.c.kind == REFUND)
        .group_by(ledger.c.message_id)
    )
    for message_id, n, amount, price, found in conn.execute(query):
        if not found:
            problems.append(f"refund for unknown message {message_id}")
        elif n > 1:
            problems.append(f"message {message_id}: refunded {n} times")
        elif amount != price:
            problems.append(
                f"message {message_id}: refunded {money_str(amount)} but cost {money_str(price)}"
            )
    return problems


def balance_of(conn: Connection, account_id: int) -> Decimal:
    """The stored balance (raises NotFound)."""
    value = conn.execute(select(accounts.c.balance).where(accounts.c.id == account_id)).scalar()
    if value is None:
        raise NotFound(f"No account with id {account_id}.")
    return value


def ledger_sum(conn: Connection, account_id: int) -> Decimal:
    """The sum of the account's ledger rows (equals its balance when the books are right)."""
    value = conn.execute(
        select(func.sum(ledger.c.amount)).where(ledger.c.account_id == account_id)
    ).scalar()
    return value if value is not None else Decimal(0)
