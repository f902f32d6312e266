"""The books and the message states, checked against each other (``smpp-bridge audit``).

Money checks come from bridge.storage.ledger.audit (balance == sum of ledger per account; each batch
charged once, for the sum of its messages' prices; each refund once, for the message's price).
The engine's own invariants are added here:

- a refunded message is in rejected | failed | expired;
- a refunded message never reached the SMSC (submitted_at is empty);
- a message in rejected | failed | expired that never reached the SMSC is refunded (receipt
  states — undelivered, expired or rejected *by the SMSC* — are not: the SMSC charged us);
- no message sits outside a final state longer than its expires_at + grace.

Read-only: one connection, a handful of aggregate queries.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import Connection, and_, exists, func, select

from bridge.delivery.settlement.outcomes import FINAL_STATES, REFUNDED_STATES
from bridge.storage import ledger as books
from bridge.storage.models import accounts, ledger, messages

DEFAULT_GRACE_SECONDS = 3600.0  # how long past expires_at a message may still be in flight
SHOWN_PER_CHECK = 50  # problems listed per check; the rest are counted


@dataclass
class AuditReport:
    problems: list[str] = field(default_factory=list)
    states: dict[str, int] = field(default_factory=dict)
    possible_duplicates: int = 0
    accounts: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems

    def summary(self) -> str:
        """One line: verdict, counts per state, possible duplicates."""
        total = sum(self.states.values())
        per_state = ", ".join(f"{s} {n}" for s, n in sorted(self.states.items())) or "none"
        verdict = "ok" if self.ok else f"{len(self.problems)} problem(s)"
        return (
            f"audit {verdict}: {self.accounts} account(s), {total} message(s)"
            f" ({per_state}), {self.possible_duplicates} possible duplicate(s)"
        )


def audit(
    conn: Connection, now: datetime, grace_seconds: float = DEFAULT_GRACE_SECONDS
) -> AuditReport:
    """Every check over the whole database; ``now`` is aware UTC."""
    report = AuditReport()
    report.problems += books.audit(conn)
    report.problems += _refunds_match_states(conn)
    report.problems += _unrefunded_failures(conn)
    try:
        cutoff = now - timedelta(seconds=grace_seconds)
    except OverflowError:  # a grace longer than the calendar: nothing can be overdue
        cutoff = datetime.min.replace(tzinfo=now.tzinfo)
    report.problems += _overdue(conn, cutoff, grace_seconds)
    report.states = dict(
        conn.execute(select(messages.c.state, func.count()).group_by(messages.c.state)).all()
    )
    report.possible_duplicates = conn.execute(
        select(func.count()).where(messages.c.possible_duplicate)
    ).scalar_one()
    report.accounts = conn.execute(select(func.count()).select_from(accounts)).scalar_one()
    return report


def _capped(lines: list[str], total: int, what: str) -> list[str]:
    if total > len(lines):
        lines.append(f"... and {total - len(lines)} more {what}")
    return lines


def _refunds_match_states(conn: Connection) -> list[str]:
    refunded = (
        select(messages.c.id, messages.c.state, messages.c.submitted_at)
        .select_from(ledger.join(messages, messages.c.id == ledger.c.message_id))
        .where(ledger.c.kind == books.REFUND)
        .distinct()
    )
    wrong_state = refunded.where(messages.c.state.not_in(REFUNDED_STATES))
    submitted = refunded.where(messages.c.submitted_at.is_not(None))
    problems: list[str] = []
    rows = conn.execute(wrong_state.limit(SHOWN_PER_CHECK)).all()
    count = conn.execute(select(func.count()).select_from(wrong_state.subquery())).scalar_one()
    problems += _capped(
        [
            f"message {r.id}: refunded but its state is {r.state}"
            f" (only rejected, failed or expired are refunded)"
            for r in rows
        ],
        count,
        "refunded messages in a non-refundable state",
    )
    rows = conn.execute(submitted.limit(SHOWN_PER_CHECK)).all()
    count = conn.execute(select(func.count()).select_from(submitted.subquery())).scalar_one()
    problems += _capped(
        [
            f"message {r.id}: refunded but the SMSC accepted it at"
            f" {r.submitted_at.isoformat()} (state {r.state})"
            for r in rows
        ],
        count,
        "refunded messages that were submitted",
    )
    return problems


def _unrefunded_failures(conn: Connection) -> list[str]:
    has_refund = exists().where(
        and_(ledger.c.message_id == messages.c.id, ledger.c.kind == books.REFUND)
    )
    query = select(messages.c.id, messages.c.state, messages.c.price).where(
        messages.c.state.in_(REFUNDED_STATES),
        messages.c.submitted_at.is_(None),
        messages.c.price > 0,
        ~has_refund,
    )
    rows = conn.execute(query.limit(SHOWN_PER_CHECK)).all()
    count = conn.execute(select(func.count()).select_from(query.subquery())).scalar_one()
    return _capped(
        [
            f"message {r.id}: {r.state} before reaching the SMSC but not refunded"
            f" ({books.money_str(r.price)} owed)"
            for r in rows
        ],
        count,
        "unrefunded failures",
    )


def _overdue(conn: Connection, cutoff: datetime, grace_seconds: float) -> list[str]:
    query = (
        select(messages.c.id, messages.c.state, messages.c.expires_at)
        .where(messages.c.state.not_in(FINAL_STATES), messages.c.expires_at < cutoff)
        .order_by(messages.c.expires_at)
    )
    rows = conn.execute(query.limit(SHOWN_PER_CHECK)).all()
    count = conn.execute(select(func.count()).select_from(query.subquery())).scalar_one()
    return _capped(
        [
            f"message {r.id}: still {r.state}, validity ended"
            f" {r.expires_at.isoformat()} (grace {grace_seconds:g}s)"
            for r in rows
        ],
        count,
        "overdue messages",
    )
