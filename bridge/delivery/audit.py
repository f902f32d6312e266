"""The books and the message states, checked against each other (``smpp-bridge audit``).

Money checks come from bridge.storage.ledger.audit (balance == sum of ledger per account; each batch
charged once, for the sum of its messages' prices; each refund once, for the message's price).
The engine's own invariants are added here:

- a refunded message is in rejected | failed | expired;
- a refunded message never reached the SMSC (submitted_at is empty);
- a message in rejected | failed | expired that never reached the SMSC is refunded (receipt
  states — undelivered, expired or rejected *by the SMSC* — are not: the SMSC charged us);
- no message sits outside a final state longer than its expires_at + grace;
- with Redis at hand: no ``accepted``/``queued`` message older than the stream grace lacks a
  stream entry (bridge.delivery.reconcile.find_lost; the reconciler re-enqueues such
  ``queued`` messages, the sweeper ``accepted`` ones).

Read-only: one connection, a handful of aggregate queries (and XRANGE reads of the stream).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import Connection, and_, exists, func, select

from bridge.delivery.reconcile import find_lost
from bridge.storage import ledger as books
from bridge.storage.models import accounts, ledger, messages
from bridge.storage.states import FINAL, REFUNDED, MessageState

DEFAULT_GRACE_SECONDS = 3600.0  # how long past expires_at a message may still be in flight
DEFAULT_STREAM_GRACE_SECONDS = 180.0  # how long a message may wait for its stream entry (s)
SHOWN_PER_CHECK = 50  # problems listed per check; the rest are counted


@dataclass
class AuditReport:
    problems: list[str] = field(default_factory=list)
    states: dict[str, int] = field(default_factory=dict)
    possible_duplicates: int = 0
    accounts: int = 0
    stream_checked: bool = False  # False: no Redis given, messages not checked against it

    @property
    def ok(self) -> bool:
        return not self.problems

    def summary(self) -> str:
        """One line: verdict, counts per state, possible duplicates."""
        total = sum(self.states.values())
        per_state = ", ".join(f"{s} {n}" for s, n in sorted(self.states.items())) or "none"
        verdict = "ok" if self.ok else f"{len(self.problems)} problem(s)"
        unchecked = "" if self.stream_checked else "; outbound stream not checked (no Redis)"
        return (
            f"audit {verdict}: {self.accounts} account(s), {total} message(s)"
            f" ({per_state}), {self.possible_duplicates} possible duplicate(s){unchecked}"
        )


def audit(
    conn: Connection,
    now: datetime,
    grace_seconds: float = DEFAULT_GRACE_SECONDS,
    *,
    redis=None,
    stream_grace_seconds: float = DEFAULT_STREAM_GRACE_SECONDS,
) -> AuditReport:
    """Every check over the whole database; ``now`` is aware UTC. With ``redis``, also the
    stream check (a RedisError propagates: the caller says the audit could not run)."""
    report = AuditReport()
    if redis is not None:
        report.problems += _not_on_stream(
            conn, redis, now - timedelta(seconds=stream_grace_seconds)
        )
        report.stream_checked = True
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
    wrong_state = refunded.where(messages.c.state.not_in(REFUNDED))
    submitted = refunded.where(messages.c.submitted_at.is_not(None))
    problems: list[str] = []
    rows = conn.execute(wrong_state.limit(SHOWN_PER_CHECK)).all()
    count = conn.execute(select(func.count()).select_from(wrong_state.subquery())).scalar_one()
    problems += _capped(
        [
            f"message {r.id}: refunded but its state is {r.state}"
            f" (only {', '.join(sorted(REFUNDED))} are refunded)"
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
        messages.c.state.in_(REFUNDED),
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
        .where(messages.c.state.not_in(FINAL), messages.c.expires_at < cutoff)
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


_WHO_REENQUEUES = {
    MessageState.ACCEPTED: "the API's outbox sweeper re-enqueues it (is an API process running?)",
    MessageState.QUEUED: "a running worker's reconciler re-enqueues it within"
    " reconcile_interval_seconds + reconcile_grace_seconds (is a worker running?)",
}


def _not_on_stream(conn: Connection, redis, cutoff: datetime) -> list[str]:
    lines: list[str] = []
    total = 0
    for lost in find_lost(conn, redis, cutoff, states=(MessageState.ACCEPTED, MessageState.QUEUED)):
        total += len(lost)
        lines += [
            f"message {r.id}: {r.state}, created {r.created_at.isoformat()}, has no entry on the"
            f" outbound stream (lost by Redis?), so nothing will send it; {_WHO_REENQUEUES[r.state]}"
            for r in lost[: max(0, SHOWN_PER_CHECK - len(lines))]
        ]
    return _capped(lines, total, "messages not on the outbound stream")
