"""Which state changes of a settlement batch become webhook events, and their bodies: pure.

Called inside the apply transaction with the plan's changed rows, so each event is written to
the ``webhook_outbox`` in the same commit as the state it reports (the transactional outbox;
:mod:`bridge.delivery.settlement.relay` takes it from there). Only messages with a
``callback_url`` produce events:

- reaching a final state (delivered, undelivered, expired, rejected, failed, and cancelled by
  the account's DELETE): ``message.<state>``;
- with ``callback_events = "all"``, reaching the SMSC (``submitted``, or straight to a receipt's
  final state when the receipt overtook the submit_sm_resp): ``message.submitted`` first.

Each state is reached at most once (transitions never go backwards), so the event id
``evt_<message id>_<state>`` is stable: a relayed duplicate carries the same id and bytes.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from bridge.delivery.settlement.rules import Plan, Row
from bridge.storage.ledger import money_str
from bridge.storage.states import RANK, MessageState
from smpp.codec import status as smpp_status

# The final states reported. A cancel is reported too: a batch DELETE's answer gives counts, and
# a client following each message by its webhooks needs every one to end.
REPORTED = frozenset(
    {
        MessageState.DELIVERED,
        MessageState.UNDELIVERED,
        MessageState.EXPIRED,
        MessageState.REJECTED,
        MessageState.FAILED,
        MessageState.CANCELLED,
    }
)
EVENTS_ALL = "all"  # messages.callback_events asking for `submitted` too (bridge.accept.callbacks)


@dataclass(frozen=True)
class Details:
    """The message columns an event body needs that settlement does not lock."""

    batch_id: str
    number: str
    reference: str | None
    currency: str
    created_at: datetime


@dataclass(frozen=True)
class OutboxEvent:
    """One row of ``webhook_outbox``; ``body`` is the exact JSON text to POST."""

    event_id: str
    message_id: str
    account_id: int
    url: str
    body: str
    created_at: datetime

    def row(self) -> dict[str, Any]:
        return {
            "event_id": self.event_id,
            "message_id": self.message_id,
            "account_id": self.account_id,
            "url": self.url,
            "body": self.body,
            "created_at": self.created_at,
        }


def event_id(message_id: str, state: str) -> str:
    return f"evt_{message_id}_{state}"


def wanted(rows: Iterable[Row]) -> list[tuple[Row, list[str]]]:
    """(row, states to report) for the changed rows with a callback URL, in report order."""
    out = []
    for row in rows:
        if not row.callback_url or row.state == row.old_state:
            continue
        states = []
        unsent = RANK[row.old_state] < RANK[MessageState.SUBMITTED]
        if row.callback_events == EVENTS_ALL and unsent and not row.refund:
            states.append(MessageState.SUBMITTED.value)  # it reached the SMSC
        if row.state in REPORTED and row.old_state not in REPORTED:
            states.append(str(row.state))
        if states:
            out.append((row, states))
    return out


def build(p: Plan, details: Mapping[str, Details], now: datetime) -> list[OutboxEvent]:
    """The outbox rows of the plan's state changes (``details`` for each reporting message)."""
    seen: dict[tuple[str, str], tuple[datetime, str | None]] = {}
    for e in p.events:  # the time and detail of each transition, first one wins
        seen.setdefault((e["message_id"], e["state"]), (e["at"], e["detail"]))
    out = []
    for row, states in wanted(p.changed()):
        d = details.get(row.id)
        if d is None:
            continue
        for state in states:
            at, detail = seen.get((row.id, state), (now, None))
            body = _body(row, d, state, at, detail)
            out.append(
                OutboxEvent(
                    event_id(row.id, state),
                    row.id,
                    row.account_id,
                    row.callback_url or "",
                    body,
                    now,
                )
            )
    return out


def _body(row: Row, d: Details, state: str, at: datetime, detail: str | None) -> str:
    final = state != MessageState.SUBMITTED
    code = row.error_code if final else None
    # no error to name: in submitted, and when delivered (the receipt's 'DELIVRD' is no error)
    failed = final and state != MessageState.DELIVERED
    body = {
        "id": event_id(row.id, state),
        "type": f"message.{state}",
        "timestamp": iso(at),
        "data": {
            "message_id": row.id,
            "batch_id": d.batch_id,
            "reference": d.reference,
            "number": d.number,
            "state": state,
            "error_code": code,
            "error_reason": reason(code, detail) if failed else None,
            "parts": row.parts,
            "cost": money_str(row.price),
            "currency": d.currency,
            "possible_duplicate": row.possible_duplicate,
            "smsc_message_ids": list(row.smsc_ids or []),
            "accepted_at": iso(d.created_at),
            "submitted_at": iso(row.submitted_at),
            "done_at": iso(row.done_at) if final else None,
        },
    }
    return json.dumps(body, ensure_ascii=False, separators=(",", ":"))


def reason(code: str | None, detail: str | None) -> str | None:
    """A sentence for an error code: the SMPP status's meaning, or what the receipt said."""
    if not code and not detail:
        return None
    if code and (code.startswith("ESME_") or code.startswith("0x")):
        try:
            return smpp_status.by_name(code).description
        except KeyError:
            return smpp_status.status(int(code, 16)).description if code.startswith("0x") else code
    return detail or code


def iso(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
