"""What the simulated SMSC saw and did, for tests to assert on: every connection (bind) with the
PDUs it sent us, every accepted message with its text reassembled from its parts, every receipt
and mobile-originated message we sent and whether the ESME answered it.

Lives on the server thread; the Simulator hands out copies taken there. Memory is bounded:
``limit`` PDUs per bind and ``limit`` messages/receipts/MO records in all (oldest dropped), and
at most MAX_GROUPS unfinished concatenated messages; counters are never dropped.
"""

from __future__ import annotations

import copy
import itertools
import time
from collections import Counter, OrderedDict, deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from smpp.codec import decode, parse_concat, pdu
from smpp.codec.pdu import ShortMessage
from smpp.codec.smpp_time import time_end
from smpp.codec.tlv import TAG_MESSAGE_PAYLOAD

MAX_GROUPS = 10_000  # unfinished concatenated messages kept; the oldest goes beyond this


#: One PDU an ESME sent, as kept: (command_id, status, sequence, decoded body, our answer).
PduEntry = tuple[int, int, int, object, int | None]
#: An unfinished concatenated message: (system_id, source, destination, kind, ref, total).
GroupKey = tuple[str | None, str, str, str, int, int]


@dataclass
class BindRecord:
    """One connection to the SMSC. ``pdus`` holds what the ESME sent, oldest first, as dicts:
    {"command", "command_id", "status", "sequence", "body", "answer"} where body is the decoded
    smpp.codec.pdu object and answer the command_status we replied with (None: not answered)."""

    id: int
    peer: str
    system_id: str | None = None  # from its (last) bind request
    password: str | None = None
    bind_type: str | None = None  # "transmitter", "receiver" or "transceiver", as requested
    bind_status: int | None = None  # status of our bind response; 0 = bound
    bound: bool = False  # bound right now
    open: bool = True  # TCP connection still open
    unbound_by: str | None = None  # "esme" or "smsc" after an unbind; None if dropped
    unbind_answered: bool = False  # the ESME answered our unbind with a matching unbind_resp
    pdus_received: int = 0  # every PDU, even those past the record limit
    pdus: Any = field(default_factory=list)


@dataclass(frozen=True)
class SubmittedMessage:
    """One accepted message (submit_sm or data_sm), whole: its parts' payloads joined in order,
    UDH removed. ``concat`` is None, "udh", "sar" or "payload" (message_payload TLV)."""

    bind_id: int
    system_id: str | None
    source_addr: str
    destination_addr: str
    data_coding: int
    registered_delivery: int
    payload: bytes
    message_ids: tuple[str, ...]  # one per part, in part order
    outcomes: tuple[str, ...]  # receipt stat chosen per part
    concat: str | None = None
    complete: bool = True
    validity_period: str = ""  # as the (first) submit_sm gave it
    received_at: float = 0.0  # epoch seconds when the SMSC accepted it (its last part)

    @property
    def text(self) -> str:
        return decode(self.payload, self.data_coding)

    @property
    def validity_end(self) -> datetime | None:
        """When its validity ends as this SMSC reads validity_period: the absolute moment, or
        received_at plus the relative duration; None when it gave none."""
        return time_end(self.validity_period, datetime.fromtimestamp(self.received_at, UTC))

    @property
    def parts(self) -> int:
        return len(self.message_ids)

    @property
    def message_id(self) -> str:
        return self.message_ids[0]

    @property
    def outcome(self) -> str:
        """DELIVRD when every part was, else the first part's other stat."""
        return next((o for o in self.outcomes if o != "DELIVRD"), "DELIVRD")


@dataclass
class ReceiptRecord:
    """A delivery receipt: queued until a receiving bind exists, then sent as deliver_sm."""

    message_id: str  # as our submit_sm_resp gave it
    receipt_id: str  # as the receipt carries it (see receipt_id_format)
    stat: str
    system_id: str | None
    text: str = ""
    bind_id: int | None = None  # connection it went out on; None while queued
    sequence: int | None = None
    response_status: int | None = None  # the ESME's deliver_sm_resp status; None: unanswered
    statuses: list[int] = field(default_factory=list)  # every deliver_sm_resp status, in order
    sends: int = 0  # deliver_sm sent for it (more than 1: resent after an error status)
    body: ShortMessage | None = field(default=None, repr=False)  # the deliver_sm it sent

    def answered(self, sequence: int, status: int) -> None:
        self.response_status = status
        self.statuses.append(status)


@dataclass
class MoRecord:
    """A mobile-originated message we sent, in one or more deliver_sm parts."""

    source: str
    dest: str
    text: str
    parts_method: str | None
    bind_id: int
    system_id: str | None
    sequences: list[int] = field(default_factory=list)
    responses: dict[int, int] = field(default_factory=dict)  # sequence -> deliver_sm_resp status
    part_of: dict[int, int] = field(default_factory=dict)  # sequence -> 0-based part index
    bodies: list[ShortMessage] = field(default_factory=list, repr=False)  # the parts, in order

    def answered(self, sequence: int, status: int) -> None:
        self.responses[sequence] = status

    @property
    def acknowledged(self) -> bool:
        return len(self.responses) == len(self.sequences)


@dataclass
class _Group:
    first: ShortMessage
    bind_id: int
    system_id: str | None
    total: int
    kind: str
    parts: dict[int, tuple[bytes, str, str]] = field(default_factory=dict)


class Recorder:
    """Collects records on the server thread; ``snapshot_*`` return copies for other threads."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.binds: deque[BindRecord] = deque(maxlen=max(limit, 1000))
        self.messages: deque[SubmittedMessage] = deque(maxlen=limit)
        self.receipts: deque[ReceiptRecord] = deque(maxlen=limit)
        self.mo: deque[MoRecord] = deque(maxlen=limit)
        self.counters: Counter[str] = Counter()
        self._groups: OrderedDict[GroupKey, _Group] = OrderedDict()
        self._ids = itertools.count(1)

    def new_bind(self, peer: str) -> BindRecord:
        record = BindRecord(next(self._ids), peer, pdus=deque(maxlen=self.limit))
        self.binds.append(record)
        self.counters["connections"] += 1
        return record

    def pdu(
        self,
        record: BindRecord,
        command_id: int,
        status: int,
        sequence: int,
        body: object,
        answer: int | None,
    ) -> None:
        record.pdus_received += 1
        record.pdus.append((command_id, status, sequence, body, answer))

    def accepted(self, record: BindRecord, m: ShortMessage, message_id: str, outcome: str) -> None:
        """An accepted submit: a whole message, or one part of a concatenated one."""
        self.counters["accepted"] += 1
        if not m.tlvs and not m.esm_class & pdu.ESM_CLASS_UDHI:  # the common, fast case
            self.messages.append(
                SubmittedMessage(
                    record.id,
                    record.system_id,
                    m.source_addr,
                    m.destination_addr,
                    m.data_coding,
                    m.registered_delivery,
                    m.short_message,
                    (message_id,),
                    (outcome,),
                    validity_period=m.validity_period,
                    received_at=time.time(),
                )
            )
            return
        payload = m.tlvs.get(TAG_MESSAGE_PAYLOAD)
        in_payload = payload is not None and not m.short_message
        body = payload if payload is not None and in_payload else m.short_message
        info, data = parse_concat(body, m.esm_class, m.tlvs)
        if info is None:
            self._finish(
                record.id,
                record.system_id,
                m,
                [(data, message_id, outcome)],
                "payload" if in_payload else None,
            )
            return
        kind = "udh" if m.esm_class & pdu.ESM_CLASS_UDHI else "sar"
        key = (record.system_id, m.source_addr, m.destination_addr, kind, info.ref, info.total)
        group = self._groups.get(key)
        if group is None:
            group = self._groups[key] = _Group(m, record.id, record.system_id, info.total, kind)
            if len(self._groups) > MAX_GROUPS:
                self._groups.popitem(last=False)
                self.counters["groups_dropped"] += 1
        group.parts.setdefault(info.seq, (data, message_id, outcome))
        if len(group.parts) == group.total:
            del self._groups[key]
            parts = [group.parts[i] for i in sorted(group.parts)]
            self._finish(group.bind_id, group.system_id, group.first, parts, kind)

    def _finish(
        self,
        bind_id: int,
        system_id: str | None,
        m: ShortMessage,
        parts: list[tuple[bytes, str, str]],
        concat: str | None,
        complete: bool = True,
    ) -> SubmittedMessage:
        message = SubmittedMessage(
            bind_id,
            system_id,
            m.source_addr,
            m.destination_addr,
            m.data_coding,
            m.registered_delivery,
            b"".join(p[0] for p in parts),
            tuple(p[1] for p in parts),
            tuple(p[2] for p in parts),
            concat,
            complete,
            validity_period=m.validity_period,
            received_at=time.time(),
        )
        if complete:
            self.messages.append(message)
        return message

    # --- copies for other threads (called on the server thread) ---

    def snapshot_binds(self) -> list[BindRecord]:
        return [_bind_copy(b) for b in self.binds]

    def snapshot_incomplete(self) -> list[SubmittedMessage]:
        """Concatenated messages still missing parts."""
        return [
            self._finish(
                g.bind_id,
                g.system_id,
                g.first,
                [g.parts[i] for i in sorted(g.parts)],
                g.kind,
                complete=False,
            )
            for g in self._groups.values()
        ]

    def snapshot_receipts(self) -> list[ReceiptRecord]:
        copies = [copy.copy(r) for r in self.receipts]
        for c in copies:
            c.statuses = list(c.statuses)
        return copies

    def snapshot_mo(self) -> list[MoRecord]:
        return [copy.deepcopy(r) for r in self.mo]

    def clear(self) -> None:
        """Forget messages, receipts, MO and per-bind PDUs (connections stay listed)."""
        self.messages.clear()
        self.receipts.clear()
        self.mo.clear()
        self._groups.clear()
        self.counters.clear()
        for b in self.binds:
            b.pdus.clear()


def pdu_dict(entry: PduEntry) -> dict[str, Any]:
    command_id, status, sequence, body, answer = entry
    return {
        "command": pdu.command_name(command_id),
        "command_id": command_id,
        "status": status,
        "sequence": sequence,
        "body": body,
        "answer": answer,
    }


def _bind_copy(b: BindRecord) -> BindRecord:
    return BindRecord(
        b.id,
        b.peer,
        b.system_id,
        b.password,
        b.bind_type,
        b.bind_status,
        b.bound,
        b.open,
        b.unbound_by,
        b.unbind_answered,
        b.pdus_received,
        [pdu_dict(e) for e in b.pdus],
    )
