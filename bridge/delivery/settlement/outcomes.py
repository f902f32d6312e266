"""What the delivery engine tells settlement, and what settlement answers: small frozen values.

Every ``at`` is epoch seconds (float) from the caller's clock: when the event was seen.

Entry outcomes end the life of a stream entry (the worker XACKs it once the outcome is stored):
- :class:`Submitted`: the SMSC accepted every part (one smsc id per part, in part order).
- :class:`Failed`: the message never reached the SMSC (permanent refusal, retries spent, no
  route, validity elapsed in the queue) -> ``rejected`` / ``failed`` / ``expired`` AND a refund.

:class:`Cancel` is the owner's, not the worker's: ``cancelled`` and a refund, only while no
worker has claimed the message (bridge.delivery.settlement.cancel).

Receipt outcomes come from deliver_sm receipts; they are never refunded (the SMSC accepted the
message and charged us):
- :class:`ReceiptIn`: a raw receipt (already in the Redis receipt log); the writer correlates
  it to (message, part) in Redis.
- :class:`PartReceipt`: a correlated receipt for one part; apply() aggregates the parts.
- :class:`Finalised`: a message-level final state decided elsewhere (no part bookkeeping).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from bridge.redis.outbox import OutboundMessage
from bridge.storage.states import RECEIPT, REFUNDED
from smpp.codec.receipt import Receipt


def _check_state(kind: str, state: str, allowed: frozenset[str]) -> None:
    if state not in allowed:
        raise ValueError(f"{kind} state must be one of {sorted(allowed)}, got {state!r}")


@dataclass(frozen=True)
class Submitted:
    """Every part accepted by the SMSC; smsc_ids[i] is the id of part i."""

    message_id: str
    smsc_ids: Sequence[str]
    connection: str
    at: float
    id_form: str = "auto"  # the connection's message_id_form: how to key its receipts
    possible_duplicate: bool = False  # a resend after a timeout: the SMSC may have it twice


@dataclass(frozen=True)
class Failed:
    """Never reached the SMSC: final state + refund (exactly once)."""

    message_id: str
    state: str  # rejected | failed | expired
    error_code: str | None
    at: float
    possible_duplicate: bool = False

    def __post_init__(self) -> None:
        _check_state("Failed", self.state, REFUNDED)


@dataclass(frozen=True)
class Finalised:
    """A message-level final state from receipts (not refunded)."""

    message_id: str
    state: str  # delivered | undelivered | expired | rejected
    error_code: str | None
    done_at: datetime | None
    at: float

    def __post_init__(self) -> None:
        _check_state("Finalised", self.state, RECEIPT)


@dataclass(frozen=True)
class PartReceipt:
    """A receipt correlated to one part of a message (see Settlement.receipt_outcomes)."""

    message_id: str
    part_index: int
    smsc_message_id: str
    stat: str  # the SMSC's word (DELIVRD, UNDELIV, ENROUTE...)
    state: str  # ours (smpp.codec.receipt.STATES): delivered, undelivered, enroute...
    final: bool
    error_code: str | None
    done_at: datetime | None  # aware UTC
    submit_date: datetime | None  # aware UTC
    at: float


@dataclass(frozen=True)
class ReceiptIn:
    """A receipt as a session received it; the writer correlates it (Redis) before applying.
    ``entry_id``: its entry in the receipt log (bridge.delivery.receipt_log), acknowledged
    once the receipt is applied."""

    connection: str
    id_form: str
    receipt: Receipt
    at: float
    entry_id: str | None = None


@dataclass(frozen=True)
class Cancel:
    """Its owner cancels the message: ``cancelled`` + refund (exactly once), only from
    scheduled|accepted|queued with ``attempts = 0`` (no worker claimed it); else no change."""

    message_id: str
    at: float


Outcome = Submitted | Failed | Finalised | PartReceipt | Cancel


@dataclass(frozen=True)
class ReceiptEvent:
    """A receipt matched to the (message, part) whose submit got its smsc id."""

    message_id: str
    part_index: int
    connection: str
    smsc_message_id: str
    receipt: Receipt
    at: float


@dataclass(frozen=True)
class Claimed:
    """A message this worker now owns: attempts counts claims (the write-ahead mark)."""

    message: OutboundMessage
    attempts: int
    possible_duplicate: bool


@dataclass(frozen=True)
class ClaimResult:
    claimed: list[Claimed]
    duplicates: list[str]  # message ids past queued or owned elsewhere: ack their entries


@dataclass(frozen=True)
class Applied:
    """What one apply() did. changed = rows updated; refunded = refunds written now;
    settled = message ids of the Submitted/Failed outcomes (their stream entries may be acked)."""

    changed_ids: list[str] = field(default_factory=list)
    unchanged_ids: list[str] = field(default_factory=list)
    refunded_ids: list[str] = field(default_factory=list)
    settled_ids: list[str] = field(default_factory=list)
