"""The states of a message: the one vocabulary of ``messages.state``, events and API answers.

A :class:`MessageState` is a ``StrEnum``: it equals its string, so rows, Redis entries and JSON
carry the same words as before ("accepted", "queued", ...). A message only ever moves up
:data:`RANK`; every final state has the same, highest rank.
"""

from __future__ import annotations

from enum import StrEnum


class MessageState(StrEnum):
    """Where a message is in its life; the first four are in flight, the rest are final."""

    SCHEDULED = "scheduled"  # charged and stored with a send_at; held until then (cancellable)
    ACCEPTED = "accepted"  # charged and stored; not yet on the outbound stream
    QUEUED = "queued"  # on the outbound stream, waiting for a worker
    SUBMITTED = "submitted"  # the SMSC accepted every part (submit_sm_resp OK)
    DELIVERED = "delivered"  # receipts: every part reached the handset
    UNDELIVERED = "undelivered"  # receipt: the SMSC could not deliver it
    EXPIRED = "expired"  # validity elapsed (in our queue: refunded; at the SMSC: a receipt)
    REJECTED = "rejected"  # refused: by the SMSC at submit (refunded) or in a receipt
    FAILED = "failed"  # never reached the SMSC: retries spent, no route (refunded)
    CANCELLED = "cancelled"  # cancelled by its owner before any submit (refunded)


#: States a message leaves no more.
FINAL = frozenset(
    {
        MessageState.DELIVERED,
        MessageState.UNDELIVERED,
        MessageState.EXPIRED,
        MessageState.REJECTED,
        MessageState.FAILED,
        MessageState.CANCELLED,
    }
)
#: Final states a message reaches without the SMSC accepting it: each one refunds the message.
REFUNDED = frozenset(
    {MessageState.REJECTED, MessageState.FAILED, MessageState.EXPIRED, MessageState.CANCELLED}
)
#: Final states a delivery receipt may set (receipts never refund).
RECEIPT = frozenset(
    {
        MessageState.DELIVERED,
        MessageState.UNDELIVERED,
        MessageState.EXPIRED,
        MessageState.REJECTED,
    }
)
#: The order of a message's life: a transition only ever goes up.
RANK: dict[str, int] = {
    MessageState.SCHEDULED: -1,  # below accepted: the releaser moves it up (bridge.delivery.release)
    MessageState.ACCEPTED: 0,
    MessageState.QUEUED: 1,
    MessageState.SUBMITTED: 2,
    **{state: 3 for state in FINAL},
}
#: States before the SMSC has the message (the sweeper, claims and expiry look at these).
UNSENT = (MessageState.ACCEPTED, MessageState.QUEUED)
#: States a cancel may take a message from (and then only while no worker claimed it:
#: ``attempts = 0``, the worker's write-ahead mark; see bridge.delivery.settlement.cancel).
CANCELLABLE = (MessageState.SCHEDULED, *UNSENT)
