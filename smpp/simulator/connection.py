"""One ESME connection to the simulated SMSC: frames the byte stream, enforces bind states,
answers every PDU, and queues outgoing bytes so each read is answered with one write."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from smpp.codec import pdu
from smpp.codec.status import ESME_RALYBND, ESME_RINVBNDSTS, ESME_RINVCMDID, ESME_ROK
from smpp.simulator.recording import BindRecord

if TYPE_CHECKING:  # pragma: no cover
    from smpp.simulator.smsc import Smsc

BIND_TYPES = {
    pdu.BIND_TRANSMITTER: "transmitter",
    pdu.BIND_RECEIVER: "receiver",
    pdu.BIND_TRANSCEIVER: "transceiver",
}
UNBIND_TIMEOUT = 5.0  # seconds we wait for the ESME's unbind_resp before closing anyway
STRAY_SEQUENCE = 0x7FFFFFFE  # the stray-resp kind's sequence number
MALFORMED = {  # what the malformed scenario sends (the sequence number is filled in)
    "truncated": lambda seq: pdu.encode_pdu(pdu.DELIVER_SM, 0, seq, b"\x00\x01"),
    "unknown-command": lambda seq: pdu.encode_pdu(0x00000999, 0, seq),
    "bad-length": lambda seq: pdu.HEADER.pack(8, pdu.DELIVER_SM, 0, seq),
    # a header promising 2 GiB that never come: a client that waits for them hangs
    "huge-length": lambda seq: pdu.HEADER.pack(0x7FFFFFFF, pdu.DELIVER_SM, 0, seq),
    # an answer to a submit the ESME never made (its sequence numbers stay far below)
    "stray-resp": lambda seq: pdu.encode_submit_sm_resp(STRAY_SEQUENCE, "STRAY"),
}


class _Unbinding:
    """Stands in ``awaiting`` for our own unbind: its response closes the connection."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def answered(self, sequence: int, status: int) -> None:
        self.conn.record.unbind_answered = True
        self.conn.drop()


class Connection(asyncio.Protocol):
    """asyncio protocol for one TCP connection; all state lives on the server thread."""

    def __init__(self, smsc: Smsc) -> None:
        self.smsc = smsc
        self.transport: asyncio.Transport  # set by connection_made, before any other call
        self.buffer = b""
        self.out: list[bytes] = []
        self.record: BindRecord  # set by connection_made too
        self.system_id: str | None = None
        self.bound = self.can_submit = self.can_receive = False
        self.unbinding = self.closed = False
        self.received = 0  # PDUs this connection sent us
        self.flags: set[str] = set()  # per-connection scenario state
        self.awaiting: dict[int, Any] = {}  # our sequence -> record told of the response
        self._seq = 0

    # ------------------------------------------------------------------ transport events

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if not isinstance(transport, asyncio.Transport):
            raise TypeError(f"the simulator serves TCP streams, not {transport!r}")
        self.transport = transport
        host, port = transport.get_extra_info("peername")[:2]
        self.record = self.smsc.recorder.new_bind(f"{host}:{port}")
        self.smsc.connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.out.clear()
        self._set_unbound()
        self.record.open = False
        self.smsc.connections.discard(self)

    def pause_writing(self) -> None:  # the ESME reads slower than we answer: stop reading
        self.transport.pause_reading()

    def resume_writing(self) -> None:
        if not self.closed:
            self.transport.resume_reading()

    def data_received(self, data: bytes) -> None:
        self.smsc.read_at = self.smsc.loop.time()  # every PDU in ``data`` arrived now
        try:
            frames, self.buffer = pdu.split_frames(self.buffer + data if self.buffer else data)
        except pdu.PduError as exc:
            self._framing_lost(exc)
            return
        for frame in frames:
            if self.closed:
                break
            self.handle(frame)
        self.smsc.flush()

    # ------------------------------------------------------------------ output

    def send(self, data: bytes) -> None:
        """Queue bytes; the SMSC writes them at the end of this read or timer run."""
        if self.closed:
            return
        if not self.out:
            self.smsc.dirty.append(self)
        self.out.append(data)

    def flush(self) -> None:
        if self.out and not self.closed:
            self.transport.write(b"".join(self.out))
        self.out.clear()

    def next_sequence(self) -> int:
        self._seq = self._seq % 0x7FFFFFFF + 1
        return self._seq

    def deliver(self, message: pdu.ShortMessage, record: Any) -> int:
        """Send a deliver_sm; ``record.answered(seq, status)`` hears its deliver_sm_resp."""
        seq = self.next_sequence()
        awaiting = self.awaiting
        if len(awaiting) >= max(self.smsc.config.record_limit, 1):
            del awaiting[next(iter(awaiting))]  # the ESME never answers: forget the oldest
        awaiting[seq] = record
        record.bind_id, record.sequence = self.record.id, seq
        self.send(pdu.encode_deliver_sm(seq, message))
        return seq

    def unbind(self) -> None:
        """SMSC-initiated unbind; the connection closes on the unbind_resp (or a timeout)."""
        if self.unbinding or self.closed:
            return
        self.unbinding, self.can_submit = True, False
        self.record.unbound_by = "smsc"
        seq = self.next_sequence()
        self.awaiting[seq] = _Unbinding(self)
        self.send(pdu.encode_unbind(seq))
        self.smsc.timers.call_later(UNBIND_TIMEOUT, self.drop)

    def send_malformed(self, kind: str) -> None:
        self.send(MALFORMED[kind](self.next_sequence()))

    def drop(self, abort: bool = False) -> None:
        """Close the connection (after writing what is queued, unless ``abort``)."""
        if self.closed:
            return
        self._set_unbound()
        if abort:
            self.out.clear()
            self.transport.abort()
        else:
            self.flush()
            self.transport.close()
        self.closed = True

    def _set_unbound(self) -> None:
        if self.bound:
            self.bound = self.can_submit = self.can_receive = False
            self.record.bound = False
            self.smsc.unbound(self)

    def _framing_lost(self, exc: pdu.PduError) -> None:
        seq = exc.sequence or 0
        self.smsc.recorder.pdu(self.record, exc.command_id or 0, 0, seq, None, exc.status)
        self.send(pdu.encode_generic_nack(seq, exc.status))
        self.drop()

    # ------------------------------------------------------------------ PDUs

    def handle(self, frame: bytes) -> None:
        _, command_id, status, seq = pdu.HEADER.unpack_from(frame)
        self.received += 1
        handler = _HANDLERS.get(command_id)
        if handler is None:
            handler = (
                Connection.on_response if command_id & pdu.RESPONSE_BIT else Connection.on_unknown
            )
        handler(self, command_id, status, seq, frame)
        for scenario in self.smsc.pdu_hooks:
            if self.closed:
                break
            scenario.after_pdu(self)

    def _refuse(self, command_id: int, seq: int, status: int, body: object = None) -> None:
        """Record the request and answer its response id with an error status."""
        self.smsc.recorder.pdu(self.record, command_id, 0, seq, body, status)
        self.send(pdu.encode_pdu(command_id | pdu.RESPONSE_BIT, status, seq))

    def on_unknown(self, command_id: int, status: int, seq: int, frame: bytes) -> None:
        self.smsc.recorder.pdu(self.record, command_id, status, seq, frame[16:], ESME_RINVCMDID)
        self.send(pdu.encode_generic_nack(seq, ESME_RINVCMDID))

    def on_bind(self, command_id: int, status: int, seq: int, frame: bytes) -> None:
        try:
            bind = pdu.decode_bind(frame[16:])
        except pdu.PduError as exc:
            self._refuse(command_id, seq, exc.status)
            return
        rec = self.record
        verdict = ESME_RALYBND if self.bound else self.smsc.authorize(bind)
        self.smsc.recorder.pdu(rec, command_id, status, seq, bind, verdict)
        self.send(pdu.encode_bind_resp(command_id, seq, self.smsc.config.smsc_system_id, verdict))
        if self.bound:
            return
        rec.system_id, rec.password = bind.system_id, bind.password
        rec.bind_type, rec.bind_status = BIND_TYPES[command_id], verdict
        if verdict == ESME_ROK:
            self.system_id, self.bound, rec.bound = bind.system_id, True, True
            self.can_submit = command_id != pdu.BIND_RECEIVER
            self.can_receive = command_id != pdu.BIND_TRANSMITTER
            self.smsc.bound(self)

    def on_submit_sm(self, command_id: int, status: int, seq: int, frame: bytes) -> None:
        if not self.can_submit:
            self._refuse(command_id, seq, ESME_RINVBNDSTS)
            return
        try:
            message = pdu.decode_short_message(frame[16:])
        except pdu.PduError as exc:
            self._refuse(command_id, seq, exc.status)
            return
        self.smsc.submit(self, command_id, seq, message, pdu.SUBMIT_SM_RESP)

    def on_data_sm(self, command_id: int, status: int, seq: int, frame: bytes) -> None:
        if not self.can_submit:
            self._refuse(command_id, seq, ESME_RINVBNDSTS)
            return
        try:
            d = pdu.decode_data_sm(frame[16:])
        except pdu.PduError as exc:
            self._refuse(command_id, seq, exc.status)
            return
        message = pdu.ShortMessage(
            d.service_type,
            d.source_addr_ton,
            d.source_addr_npi,
            d.source_addr,
            d.dest_addr_ton,
            d.dest_addr_npi,
            d.destination_addr,
            d.esm_class,
            0,
            0,
            "",
            "",
            d.registered_delivery,
            0,
            d.data_coding,
            0,
            b"",
            d.tlvs,
        )
        self.smsc.submit(self, command_id, seq, message, pdu.DATA_SM_RESP)

    def on_enquire_link(self, command_id: int, status: int, seq: int, frame: bytes) -> None:
        self.smsc.recorder.pdu(self.record, command_id, status, seq, None, 0)
        self.send(pdu.encode_enquire_link_resp(seq))

    def on_unbind(self, command_id: int, status: int, seq: int, frame: bytes) -> None:
        if not self.bound:
            self._refuse(command_id, seq, ESME_RINVBNDSTS)
            return
        self.smsc.recorder.pdu(self.record, command_id, status, seq, None, 0)
        self.record.unbound_by = "esme"
        self.send(pdu.encode_unbind_resp(seq))
        self.drop()

    def on_response(self, command_id: int, status: int, seq: int, frame: bytes) -> None:
        """deliver_sm_resp, unbind_resp, enquire_link_resp, generic_nack...: recorded, and
        the record waiting for this sequence number is told."""
        body = None
        if command_id == pdu.DELIVER_SM_RESP and len(frame) > 16:
            body = bytes(frame[16:])
        self.smsc.recorder.pdu(self.record, command_id, status, seq, body, None)
        waiting = self.awaiting.pop(seq, None)
        if waiting is not None:
            waiting.answered(seq, status)
            if status and command_id == pdu.DELIVER_SM_RESP:
                self.smsc.refused(waiting)


_HANDLERS: dict[int, Callable[..., None]] = {
    pdu.BIND_TRANSMITTER: Connection.on_bind,
    pdu.BIND_RECEIVER: Connection.on_bind,
    pdu.BIND_TRANSCEIVER: Connection.on_bind,
    pdu.SUBMIT_SM: Connection.on_submit_sm,
    pdu.DATA_SM: Connection.on_data_sm,
    pdu.ENQUIRE_LINK: Connection.on_enquire_link,
    pdu.UNBIND: Connection.on_unbind,
}
