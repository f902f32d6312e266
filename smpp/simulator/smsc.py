"""The simulated SMSC's state on the server thread: who is bound, scenarios, ids, outcomes,
receipts and MO routing. Connections (smpp.simulator.connection) parse and answer PDUs and
call in here for every decision; nothing here touches another thread."""

from __future__ import annotations

import asyncio
import functools
import itertools
import random
from collections import defaultdict, deque
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from smpp.codec import pdu
from smpp.codec.smpp_time import parse_absolute_time, parse_relative_time
from smpp.codec.status import (
    ESME_RBINDFAIL,
    ESME_RINVEXPIRY,
    ESME_RINVPASWD,
    ESME_RINVSYSID,
    ESME_ROK,
)
from smpp.codec.tlv import TAG_MESSAGE_PAYLOAD
from smpp.simulator.config import SimulatorConfig
from smpp.simulator.dlr import (
    MessageIds,
    Outcomes,
    ReceiptDates,
    ReceiptDelays,
    receipt_id,
    receipt_message,
    receipt_text,
    text_sample,
)
from smpp.simulator.mo import mo_messages
from smpp.simulator.recording import MoRecord, ReceiptRecord, Recorder
from smpp.simulator.scenarios import SILENT, Scenario, build_scenarios
from smpp.simulator.timers import Timers

if TYPE_CHECKING:  # pragma: no cover
    from smpp.simulator.connection import Connection

    #: A receipt to send: (submitting connection, the submit, message id, stat, submit date).
    ReceiptJob = tuple[Connection, pdu.ShortMessage, str, str, str]


@functools.lru_cache(maxsize=4096)
def validity_readable(value: str) -> bool:
    """A validity_period in the absolute or the relative form of SMPP 3.4 §7.1.1 (cached: a
    bulk send repeats the same few values)."""
    try:
        parse_relative_time(value) if value.endswith("R") else parse_absolute_time(value)
    except ValueError:
        return False
    return True


def _overrides(scenarios: list[Scenario], hook: str) -> list[Scenario]:
    return [s for s in scenarios if getattr(type(s), hook) is not getattr(Scenario, hook)]


RECEIPT_RETRIES = 10  # sends of one receipt in all, with receipt_retry_seconds set


class Smsc:
    """Decisions and routing for every connection of one simulator."""

    def __init__(
        self, config: SimulatorConfig, loop: asyncio.AbstractEventLoop, dates: ReceiptDates
    ) -> None:
        self.loop = loop
        self.dates = dates
        self.recorder = Recorder(config.record_limit)
        self.timers = Timers(loop, self.flush)
        self.connections: set[Connection] = set()
        self.receivers: dict[str | None, list[Connection]] = defaultdict(list)
        self.bound_counts: dict[str | None, int] = defaultdict(int)
        # receipts with nowhere to go, by system_id
        self.pending: dict[str | None, deque[ReceiptJob]] = defaultdict(deque)
        self.dirty: list[Connection] = []
        self.read_at = loop.time()  # loop time the read being handled arrived (Connection sets)
        self._rr = itertools.count()
        self.scenarios: list[Scenario] = []
        self.ids: MessageIds  # set by configure(), which reads the previous one's counter
        self.configure(config)
        self._mo_refs = itertools.count(self.rng.randrange(0, 256))
        self.set_scenarios(config.scenarios)

    def configure(self, config: SimulatorConfig) -> None:
        """Adopt new settings (ids, receipts, outcomes); bound sessions stay."""
        previous = getattr(self, "config", None)
        self.config = config
        if previous is None or previous.seed != config.seed:
            self.rng = random.Random(config.seed)
        self.ids = MessageIds(
            config.message_id_format, self.rng, None if previous is None else self.ids.counter
        )
        self.outcomes = Outcomes(config.outcomes, self.rng)
        self.receipt_delays = ReceiptDelays(config.dlr_delay, config.dlr_delay_max, self.rng)

    def set_scenarios(self, items: Iterable[Scenario | str]) -> None:
        new = build_scenarios(items)
        for old in self.scenarios:
            old.stop()
        self.scenarios = new
        self.bind_hooks = _overrides(new, "bind")
        self.submit_hooks = _overrides(new, "submit")
        self.outcome_hooks = _overrides(new, "outcome")
        self.delay_hooks = _overrides(new, "response_delay")
        self.pdu_hooks = _overrides(new, "after_pdu")
        self.receipt_hooks = _overrides(new, "receipt")
        self.receipt_first = any(s.receipt_first for s in new)
        for s in new:
            s.start(self)

    def flush(self) -> None:
        """Write what every connection has queued, one write call each."""
        dirty, self.dirty = self.dirty, []
        for conn in dirty:
            conn.flush()

    # ------------------------------------------------------------------ binds

    def authorize(self, bind: pdu.Bind) -> int:
        """The status to answer a bind request with (0: bound)."""
        for scenario in self.bind_hooks:
            status = scenario.bind(bind.system_id)
            if status:
                return status
        config = self.config
        if config.system_id is not None and bind.system_id != config.system_id:
            return ESME_RINVSYSID
        if config.password is not None and bind.password != config.password:
            return ESME_RINVPASWD
        cap = config.max_binds_per_system_id
        if cap is not None and self.bound_counts[bind.system_id] >= cap:
            return ESME_RBINDFAIL
        return ESME_ROK

    def bound(self, conn: Connection) -> None:
        self.bound_counts[conn.system_id] += 1
        if conn.can_receive:
            self.receivers[conn.system_id].append(conn)
            self._flush_pending(conn)

    def unbound(self, conn: Connection) -> None:
        self.bound_counts[conn.system_id] -= 1
        receivers = self.receivers.get(conn.system_id)
        if receivers and conn in receivers:
            receivers.remove(conn)

    def receiver(self, system_id: str | None, any_system: bool = False) -> Connection | None:
        """A bound connection that takes deliver_sm (round robin)."""
        pool = self.receivers.get(system_id)
        if not pool and any_system:
            pool = [c for conns in self.receivers.values() for c in conns]
        if not pool:
            return None
        return pool[next(self._rr) % len(pool)]

    # ------------------------------------------------------------------ submits

    def submit(
        self, conn: Connection, command_id: int, sequence: int, m: pdu.ShortMessage, resp_id: int
    ) -> None:
        """Answer a decoded submit_sm or data_sm (refused, silent or accepted) and plan its
        receipt. A latency scenario holds refusals as well as acceptances, counted from when
        the PDU arrived (``read_at``), not from when its turn in a long read came."""
        record = conn.record
        delay = sum(s.response_delay() for s in self.delay_hooks) if self.delay_hooks else 0.0
        if m.validity_period and not validity_readable(m.validity_period):
            self.recorder.pdu(record, command_id, 0, sequence, m, ESME_RINVEXPIRY)
            self._respond(
                conn, pdu.encode_message_id_resp(resp_id, sequence, "", ESME_RINVEXPIRY), delay
            )
            return
        for scenario in self.submit_hooks:
            verdict = scenario.submit(self.read_at, m)
            if verdict == SILENT:
                self.recorder.pdu(record, command_id, 0, sequence, m, None)
                return
            if verdict:
                self.recorder.pdu(record, command_id, 0, sequence, m, verdict)
                self._respond(
                    conn, pdu.encode_message_id_resp(resp_id, sequence, "", verdict), delay
                )
                return
        message_id = self.ids.next()
        stat = self._outcome(m)
        self.recorder.pdu(record, command_id, 0, sequence, m, 0)
        self.recorder.accepted(record, m, message_id, stat)
        rd = m.registered_delivery & 0x03
        job: ReceiptJob | None = None
        if rd == 1 or (rd == 2 and stat != "DELIVRD"):
            job = (conn, m, message_id, stat, self.dates.now()[1])
            if self.receipt_first:
                self.send_receipt(job)
        self._respond(conn, pdu.encode_message_id_resp(resp_id, sequence, message_id), delay)
        if job is not None and not self.receipt_first:
            due = delay + self.receipt_delays.next()
            if due > 0:
                self.timers.call_at(self.read_at + due, self.send_receipt, job)
            else:
                self.send_receipt(job)

    def _respond(self, conn: Connection, data: bytes, delay: float) -> None:
        if delay:
            self.timers.call_at(self.read_at + delay, conn.send, data)
        else:
            conn.send(data)

    def _outcome(self, m: pdu.ShortMessage) -> str:
        for scenario in self.outcome_hooks:
            stat = scenario.outcome(m)
            if stat:
                return stat
        return self.outcomes.choose()

    # ------------------------------------------------------------------ receipts

    def send_receipt(self, job: ReceiptJob) -> None:
        """Deliver a receipt on the submitting transceiver, else a receiver of its system_id,
        else hold it until one binds."""
        origin, m, message_id, stat, submit_date = job
        conn = (
            origin if origin.can_receive and not origin.closed else self.receiver(origin.system_id)
        )
        if conn is None:
            pending = self.pending[origin.system_id]
            if len(pending) >= self.config.pending_receipt_limit:
                self.recorder.counters["receipts_dropped"] += 1
                return
            pending.append(job)
            return
        config = self.config
        rid = receipt_id(message_id, config.message_id_format, config.receipt_id_format)
        payload = m.short_message
        if m.esm_class & pdu.ESM_CLASS_UDHI and payload:
            payload = payload[payload[0] + 1 :]
        elif not payload:
            payload = m.tlvs.get(TAG_MESSAGE_PAYLOAD, b"")
        text = receipt_text(
            rid, stat, submit_date, self.dates.now()[1], text_sample(payload, m.data_coding)
        )
        body = receipt_message(m, rid, stat, text)
        for scenario in self.receipt_hooks:
            body, text = scenario.receipt(body, rid, text)
        record = ReceiptRecord(message_id, rid, stat, origin.system_id, text)
        record.body, record.sends = body, 1
        self.recorder.receipts.append(record)
        self.recorder.counters["receipts_sent"] += 1
        conn.deliver(record.body, record)

    def refused(self, record: object) -> None:
        """A deliver_sm answered with an error status: a receipt's is sent again after
        ``receipt_retry_seconds`` (when set), as an SMSC retries after ESME_RX_T_APPN, up to
        RECEIPT_RETRIES sends in all."""
        retry = self.config.receipt_retry_seconds
        if retry is None or not isinstance(record, ReceiptRecord):
            return
        if record.sends < RECEIPT_RETRIES:
            self.timers.call_later(retry, self._retry_receipt, record)

    def _retry_receipt(self, record: ReceiptRecord) -> None:
        if record.response_status in (None, 0) or record.body is None:
            return  # answered meanwhile (an explicit resend_receipts())
        conn = self.receiver(record.system_id)
        if conn is None:  # no receiver bound now: try again later
            self.timers.call_later(
                self.config.receipt_retry_seconds or 1.0, self._retry_receipt, record
            )
            return
        record.response_status, record.sends = None, record.sends + 1
        self.recorder.counters["receipts_retried"] += 1
        conn.deliver(record.body, record)

    def resend_receipts(self) -> int:
        """Send again, as an SMSC does after a temporary error, every recorded receipt whose
        last deliver_sm_resp was not ESME_ROK, on a bound receiver of its system_id; how many
        (one without a receiver bound now is skipped)."""
        sent = 0
        for record in self.recorder.receipts:
            if record.response_status in (None, 0) or record.body is None:
                continue
            conn = self.receiver(record.system_id)
            if conn is None:
                continue
            record.response_status, record.sends = None, record.sends + 1
            conn.deliver(record.body, record)
            sent += 1
        self.flush()
        return sent

    def _flush_pending(self, conn: Connection) -> None:
        pending = self.pending.get(conn.system_id)
        while pending:
            self.send_receipt(pending.popleft())

    # ------------------------------------------------------------------ MO

    def send_mo(
        self,
        source: str,
        dest: str,
        text: str,
        parts_method: str | None = None,
        system_id: str | None = None,
        data_coding: int | None = None,
        order: Sequence[int] | None = None,
    ) -> MoRecord | None:
        """Send a mobile-originated message to one bound receiver (of ``system_id``, or any
        when None); None when no receiver is bound. ``order`` lists the 0-based parts to send,
        in that order (repeats send a part again: out-of-order and duplicated parts)."""
        conn = self.receiver(system_id, any_system=system_id is None)
        if conn is None:
            self.recorder.counters["mo_skipped"] += 1
            return None
        messages = mo_messages(
            source, dest, text, parts_method, next(self._mo_refs) & 0xFFFF, data_coding
        )
        indexes = list(range(len(messages))) if order is None else list(order)
        if any(not 0 <= i < len(messages) for i in indexes):
            raise ValueError(f"order {indexes}: the message has parts 0..{len(messages) - 1}")
        record = MoRecord(source, dest, text, parts_method, conn.record.id, conn.system_id)
        record.bodies = messages
        for i in indexes:
            seq = conn.deliver(messages[i], record)
            record.sequences.append(seq)
            record.part_of[seq] = i
        self.recorder.mo.append(record)
        self.recorder.counters["mo_sent"] += 1
        self.flush()
        return record

    def resend_mo(self, index: int, system_id: str | None = None) -> list[int]:
        """Send again, as an SMSC does after a temporary error, the parts of the ``index``-th
        recorded MO whose last deliver_sm_resp was not ESME_ROK (or never came); the new
        sequence numbers (empty when every part was acknowledged or no receiver is bound). It
        goes on the MO's own connection while that is bound, else on any receiver."""
        record = list(self.recorder.mo)[index]
        last: dict[int, int | None] = {i: None for i in range(len(record.bodies))}
        for seq in record.sequences:
            last[record.part_of[seq]] = record.responses.get(seq)
        todo = [i for i, status in last.items() if status != 0]
        # the same connection when it is still bound: sequence numbers are per connection
        same = [
            c for conns in self.receivers.values() for c in conns if c.record.id == record.bind_id
        ]
        conn = same[0] if same else self.receiver(system_id, any_system=system_id is None)
        if not todo or conn is None:
            return []
        sent = []
        for i in todo:
            seq = conn.deliver(record.bodies[i], record)
            record.sequences.append(seq)
            record.part_of[seq] = i
            sent.append(seq)
        self.flush()
        return sent

    def unbind_all(self, system_id: str | None = None, bind_type: str | None = None) -> int:
        """Send unbind to every bound connection (of ``system_id`` and ``bind_type``, or all)."""
        targets = [
            c
            for c in self.connections
            if c.bound
            and (system_id is None or c.system_id == system_id)
            and (bind_type is None or c.record.bind_type == bind_type)
        ]
        for conn in targets:
            conn.unbind()
        self.flush()
        return len(targets)

    def close(self) -> None:
        for s in self.scenarios:
            s.stop()
        self.timers.clear()
        for conn in list(self.connections):
            conn.drop(abort=True)
