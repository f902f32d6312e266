"""Cancelling messages before they reach the SMSC: ``DELETE /api/v2/sms/{id}`` and
``DELETE /api/v2/batches/{id}``.

A cancel is a settlement outcome (:class:`~bridge.delivery.settlement.outcomes.Cancel`) applied
like the worker's: the rows are locked, the move to ``cancelled`` is a guarded UPDATE, the refund
is the ledger row ``refund:<id>`` (UNIQUE: a message is refunded once, whoever refunds it), and
webhook events go to the outbox in the same transaction. Only messages no worker has claimed
(``attempts = 0``) in ``scheduled``, ``accepted`` or ``queued`` are cancelled; the worker's claim
is a conditional UPDATE of the same row, so exactly one of them wins. Cancelling a message that is
already ``cancelled`` answers as the first cancel did (no second refund).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal

from redis.exceptions import RedisError
from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError

from bridge.delivery.settlement.core import Settlement
from bridge.delivery.settlement.money import refund_key
from bridge.delivery.settlement.outcomes import Cancel
from bridge.delivery.settlement.search import BATCH_NOT_FOUND
from bridge.delivery.settlement.view import MessageView, database_down, load, reading
from bridge.errors import Conflict, NotFound
from bridge.redis import schedule
from bridge.storage.db import Database
from bridge.storage.models import accounts, ledger, messages
from bridge.storage.states import CANCELLABLE, FINAL, MessageState

log = logging.getLogger(__name__)

_APPLY_CHUNK = 2000  # cancels per settlement transaction (a batch may hold 10,000 messages)


@dataclass(frozen=True)
class MessageCancel:
    """A cancelled message: its view after the cancel and its refund (by this cancel or an
    earlier one)."""

    view: MessageView
    refunded: Decimal


@dataclass(frozen=True)
class BatchCancel:
    """What a batch cancel did: messages cancelled (and refunded) by this request, those
    cancelled before, those it could not cancel, and the batch's states afterwards."""

    batch_id: str
    cancelled: int
    already_cancelled: int
    not_cancellable: int
    refunded: Decimal
    currency: str
    states: dict[str, int] = field(default_factory=dict)


def conflict(state: str) -> Conflict:
    """The 409 for a message that can no longer be cancelled, naming its state."""
    if state == MessageState.SUBMITTED:
        text = "Message was already submitted to the SMSC and can no longer be cancelled."
    elif state in FINAL:
        text = f"Message is already {state} and can no longer be cancelled."
    else:  # accepted|queued, claimed by a worker: it may be on the wire
        text = "Message is being submitted to the SMSC and can no longer be cancelled."
    return Conflict(text, state=str(state))


class Canceller:
    """Cancels an account's messages over one Database and one Redis client."""

    def __init__(self, db: Database, redis, *, clock: Callable[[], float] = time.time) -> None:
        self._db, self._redis, self._clock = db, redis, clock
        self.settlement = Settlement(db, redis, clock=clock)

    def cancel_message(self, account_id: int, message_id: str) -> MessageCancel:
        """Cancel one of the account's messages. NotFound for another account's or an unknown
        id; Conflict (with its state) when it is submitted, final or being submitted."""
        view = reading(self._db, load, account_id, message_id)
        if view.state in CANCELLABLE:
            self._apply([view.message_id])
            view = reading(self._db, load, account_id, message_id)
        if view.state != MessageState.CANCELLED:
            raise conflict(view.state)
        return MessageCancel(view, reading(self._db, _refund_of, view.message_id))

    def cancel_batch(self, account_id: int, batch_id: str) -> BatchCancel:
        """Cancel every cancellable message of one of the account's batches."""
        rows = reading(self._db, _batch_rows, account_id, batch_id)
        if not rows:
            raise NotFound(BATCH_NOT_FOUND)
        before = {r.id: r.state for r in rows}
        wanted = [r.id for r in rows if r.state in CANCELLABLE]
        refunded_ids: list[str] = []
        for start in range(0, len(wanted), _APPLY_CHUNK):
            refunded_ids += self._apply(wanted[start : start + _APPLY_CHUNK])
        price = {r.id: r.price for r in rows}
        after = reading(self._db, _batch_rows, account_id, batch_id)
        states = {state.value: 0 for state in MessageState}
        for r in after:
            states[r.state] = states.get(r.state, 0) + 1
        now_cancelled = sum(
            1
            for r in after
            if r.state == MessageState.CANCELLED and before[r.id] != MessageState.CANCELLED
        )
        already = sum(1 for s in before.values() if s == MessageState.CANCELLED)
        return BatchCancel(
            batch_id=rows[0].batch_id,
            cancelled=now_cancelled,
            already_cancelled=already,
            not_cancellable=len(after) - now_cancelled - already,
            refunded=sum((price[i] for i in refunded_ids), Decimal(0)),
            currency=reading(self._db, _currency, account_id),
            states=states,
        )

    def _apply(self, ids: list[str]) -> list[str]:
        """The Cancel outcomes in one settlement transaction; the ids refunded by it."""
        now = self._clock()
        with database_down():
            applied = self.settlement.apply([Cancel(mid, now) for mid in ids])
        try:  # delete the relayed webhook outbox rows now (else the worker's sweep re-sends)
            self.settlement.relay.flush()
        except SQLAlchemyError as exc:
            log.warning("could not delete relayed webhook outbox rows (%s)", exc)
        if applied.changed_ids and self._redis is not None:
            try:
                schedule.remove(self._redis, applied.changed_ids)
            except RedisError as exc:  # harmless: the release UPDATE skips cancelled rows
                log.warning("could not remove cancelled ids from the schedule (%s)", exc)
        return applied.refunded_ids


def _refund_of(conn, message_id: str) -> Decimal:
    amount = conn.execute(
        select(ledger.c.amount).where(ledger.c.dedupe_key == refund_key(message_id))
    ).scalar()
    return amount if amount is not None else Decimal(0)


def _batch_rows(conn, account_id: int, batch_id: str) -> list:
    if not batch_id or len(batch_id) > 26 or not batch_id.isalnum() or not batch_id.isascii():
        return []
    return list(
        conn.execute(
            select(messages.c.id, messages.c.batch_id, messages.c.state, messages.c.price).where(
                messages.c.batch_id == batch_id.upper(), messages.c.account_id == account_id
            )
        )
    )


def _currency(conn, account_id: int) -> str:
    return conn.execute(
        select(func.coalesce(accounts.c.currency, "")).where(accounts.c.id == account_id)
    ).scalar_one()
