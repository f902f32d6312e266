"""The state machine, pure: given the locked rows and a batch of outcomes, what must be written.

apply() reads every message of a batch with ``SELECT ... FOR UPDATE`` (row locks on PostgreSQL;
SQLite's ``BEGIN IMMEDIATE`` already serialises writers), so the states seen here cannot change
before the commit. :func:`plan` then walks the outcomes in order against working copies of the
rows: several outcomes for one message in one batch (``Submitted`` then a receipt) compose, and
the writes become one UPDATE per changed row, guarded by ``state = <the state read>``.

Rules (rank accepted 0 < queued 1 < submitted 2 < every final state 3; never backwards):
- Submitted: accepted|queued -> submitted. On a message already final (its receipt came first)
  or already submitted, the smsc ids and submit time are filled in / appended, state untouched.
- Failed: accepted|queued -> rejected|failed|expired, plus a refund. Anything later: no change.
- Cancel: scheduled|accepted|queued with attempts = 0 -> cancelled, plus a refund. A message a
  worker claimed (attempts > 0: it may be on the wire) or anything later: no change. The
  claim is a conditional UPDATE of the same row, so a cancel and a claim never both win.
- Finalised / receipts: accepted|queued|submitted -> a final state; never refunded. A multipart
  message is delivered once every part has a delivered receipt; the first final non-delivered
  part receipt decides its failure state. A receipt seen twice changes nothing (part rows).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal

from bridge.delivery.settlement.outcomes import (
    Cancel,
    Failed,
    Finalised,
    Outcome,
    PartReceipt,
    Submitted,
)
from bridge.storage.states import CANCELLABLE, FINAL, RANK, MessageState

log = logging.getLogger(__name__)


ERROR_CODE_MAX = 32  # messages.error_code width: longer codes are cut, never rejected


def utc(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


def _aware(value: datetime | None) -> datetime | None:
    """Naive datetimes (receipt times) are read as UTC; aware ones converted to UTC."""
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _code(error_code: str | None) -> str | None:
    return error_code[:ERROR_CODE_MAX] if error_code else error_code


@dataclass
class Row:
    """A working copy of one locked ``messages`` row (only the columns settlement writes)."""

    id: str
    account_id: int
    price: Decimal
    parts: int
    state: str
    submitted_at: datetime | None
    smsc_ids: list[str] | None
    connection: str | None
    done_at: datetime | None
    error_code: str | None
    possible_duplicate: bool
    old_state: str = ""
    dirty: bool = False
    refund: bool = False
    callback_url: str | None = None  # set: its state changes become webhook events (notify)
    callback_events: str | None = None  # "all" adds the submitted event
    attempts: int = 0  # claims by workers (the write-ahead mark); a cancel needs 0

    def __post_init__(self) -> None:
        self.old_state = self.old_state or self.state

    @classmethod
    def from_values(cls, r) -> Row:
        """From a locked row's values in statements.LOCK_COLUMNS order."""
        (mid, account_id, price, parts, state, submitted_at, smsc, connection, done_at) = r[:9]
        error_code, duplicate, callback_url, callback_events, attempts = r[9:]
        return cls(
            mid,
            account_id,
            price,
            parts,
            state,
            submitted_at,
            json.loads(smsc) if smsc else None,
            connection,
            done_at,
            error_code,
            bool(duplicate),
            callback_url=callback_url,
            callback_events=callback_events,
            attempts=attempts,
        )

    def params(self, now: datetime) -> dict:
        """Bind parameters of the guarded UPDATE (see core._UPDATE)."""
        return {
            "b_id": self.id,
            "b_old": self.old_state,
            "b_state": self.state,
            "b_submitted": self.submitted_at,
            "b_conn": self.connection,
            "b_smsc": json.dumps(self.smsc_ids) if self.smsc_ids is not None else None,
            "b_done": self.done_at,
            "b_err": self.error_code,
            "b_dup": self.possible_duplicate,
            "b_now": now,
        }


@dataclass
class Part:
    stat: str
    state: str
    final: bool
    done_at: datetime | None


@dataclass
class Plan:
    """Everything one batch writes."""

    rows: dict[str, Row]
    parts: dict[tuple[str, int], Part]
    events: list[dict] = field(default_factory=list)
    part_inserts: list[dict] = field(default_factory=list)
    part_updates: list[dict] = field(default_factory=list)
    new_duplicates: int = 0
    missing: list[str] = field(default_factory=list)  # outcomes for unknown message ids

    def changed(self) -> list[Row]:
        return [r for r in self.rows.values() if r.dirty]

    def event(self, row: Row, state: str, at: float, detail: str | None) -> None:
        self.events.append({"message_id": row.id, "state": state, "at": utc(at), "detail": detail})


def plan(rows: dict[str, Row], parts: dict[tuple[str, int], Part], outcomes: list[Outcome]) -> Plan:
    """The writes for ``outcomes`` (in order) over ``rows`` and their recorded ``parts``."""
    p = Plan(rows, parts)
    for o in outcomes:
        row = rows.get(o.message_id)
        if row is None:
            p.missing.append(o.message_id)
            continue
        if isinstance(o, Submitted):
            _submitted(p, row, o)
        elif isinstance(o, Failed):
            _failed(p, row, o)
        elif isinstance(o, PartReceipt):
            _part_receipt(p, row, o)
        elif isinstance(o, Finalised):
            _finalise(p, row, o.state, o.error_code, o.done_at, o.at, None, "receipt")
        elif isinstance(o, Cancel):
            _cancel(p, row, o)
        else:
            raise TypeError(f"not a settlement outcome: {o!r}")
    return p


def _flag_duplicate(p: Plan, row: Row, flagged: bool) -> None:
    if flagged and not row.possible_duplicate:
        row.possible_duplicate = row.dirty = True
        p.new_duplicates += 1


def _submitted(p: Plan, row: Row, o: Submitted) -> None:
    _flag_duplicate(p, row, o.possible_duplicate)
    ids = [str(i) for i in o.smsc_ids]
    shown = ",".join(ids)
    if RANK[row.state] < RANK[MessageState.SUBMITTED]:
        row.state, row.submitted_at, row.smsc_ids = MessageState.SUBMITTED, utc(o.at), ids
        row.connection, row.dirty = o.connection, True
        p.event(
            row, MessageState.SUBMITTED, o.at, f"{len(ids)} part(s) via {o.connection}: {shown}"
        )
    elif row.smsc_ids is None:  # a receipt finalised it before this resp was stored
        row.submitted_at, row.smsc_ids, row.connection = utc(o.at), ids, o.connection
        row.dirty = True
        p.event(
            row,
            MessageState.SUBMITTED,
            o.at,
            f"{len(ids)} part(s) via {o.connection}: {shown}"
            f" (stored after the message was already {row.state})",
        )
    else:
        extra = [i for i in ids if i not in row.smsc_ids]
        if extra:  # a second submit of the same message: never hide it
            row.smsc_ids = row.smsc_ids + extra
            row.dirty = True
            _flag_duplicate(p, row, True)
            p.event(
                row,
                MessageState.SUBMITTED,
                o.at,
                f"submitted again via {o.connection}: {','.join(extra)} (possible duplicate)",
            )


def _failed(p: Plan, row: Row, o: Failed) -> None:
    _flag_duplicate(p, row, o.possible_duplicate)
    if RANK[row.state] >= RANK[MessageState.SUBMITTED]:
        return
    row.state, row.done_at, row.error_code = o.state, utc(o.at), _code(o.error_code)
    row.dirty = row.refund = True
    p.event(row, o.state, o.at, o.error_code)


def _cancel(p: Plan, row: Row, o: Cancel) -> None:
    if row.state not in CANCELLABLE or row.attempts:
        return
    row.state, row.done_at, row.error_code = MessageState.CANCELLED, utc(o.at), None
    row.dirty = row.refund = True
    p.event(row, MessageState.CANCELLED, o.at, "cancelled by the account")


def _finalise(
    p: Plan,
    row: Row,
    state: str,
    error_code: str | None,
    done_at: datetime | None,
    at: float,
    submitted_guess: datetime | None,
    detail: str | None,
) -> None:
    """A receipt's final state, when the message is not final yet (else nothing)."""
    if row.state in FINAL:
        return
    row.state, row.error_code = state, _code(error_code)
    row.done_at = _aware(done_at) or utc(at)
    # a receipt proves the SMSC took the message: never leave it looking unsent
    row.submitted_at = row.submitted_at or _aware(submitted_guess) or utc(at)
    row.dirty = True
    p.event(row, state, at, detail)


def _part_receipt(p: Plan, row: Row, o: PartReceipt) -> None:
    if not 0 <= o.part_index < row.parts:
        log.warning(
            "receipt for part %d of message %s, which has %d part(s): ignored",
            o.part_index,
            row.id,
            row.parts,
        )
        return
    key = (row.id, o.part_index)
    old = p.parts.get(key)
    if old is not None and (old.final or not o.final):
        return  # seen before (or a non-final note after one): nothing changes
    values = {
        "message_id": row.id,
        "part_index": o.part_index,
        "smsc_message_id": o.smsc_message_id[:64],
        "stat": o.stat[:8],
        "state": o.state[:12],
        "final": o.final,
        "error_code": _code(o.error_code),
        "done_at": _aware(o.done_at),
        "received_at": utc(o.at),
    }
    (p.part_updates if old is not None else p.part_inserts).append(values)
    p.parts[key] = Part(o.stat, o.state, o.final, _aware(o.done_at))
    if not o.final:
        return
    detail = f"part {o.part_index + 1}/{row.parts}: {o.stat}" + (
        f" err {o.error_code}" if o.error_code else ""
    )
    if o.state != MessageState.DELIVERED:
        _finalise(p, row, o.state, o.error_code, o.done_at, o.at, o.submit_date, detail)
        return
    last = None  # the latest done date of the parts, once every one is delivered
    for i in range(row.parts):
        d = p.parts.get((row.id, i))
        if d is None or not d.final or d.state != MessageState.DELIVERED:
            return
        if d.done_at and (last is None or d.done_at > last):
            last = d.done_at
    _finalise(p, row, MessageState.DELIVERED, None, last, o.at, o.submit_date, detail)
