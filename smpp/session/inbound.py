"""What the session does with deliver_sm and data_sm from the SMSC: tell delivery receipts from
mobile-originated messages, parse or reassemble them, hand them to the caller's callbacks, and
choose the status to answer with (0, or ESME_RX_T_APPN when a callback failed so the SMSC
sends the PDU again later).

Receipts can be handed over in batches: :meth:`Inbound.take` parses one PDU and returns its
receipt without calling anything; :meth:`Inbound.hand_over` gives every receipt of one read to
``on_receipts`` in ONE call (a caller that must make each receipt durable before it is answered
pays one round trip per read, not per receipt) and returns the status to answer each with.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from smpp.codec import pdu
from smpp.codec.receipt import Receipt, parse_receipt

# ESME_RX_T_APPN, "ESME receiver temporary app error": the SMSC should send it again later.
from smpp.codec.status import ESME_ROK, ESME_RX_T_APPN
from smpp.codec.tlv import TAG_MESSAGE_PAYLOAD, TAG_RECEIPTED_MESSAGE_ID
from smpp.session.mo import MoMessage, Reassembler
from smpp.session.state import Counters

log = logging.getLogger(__name__)

#: esm_class bits 2-5, message type: 0x04 SMSC delivery receipt, 0x08 SME delivery
#: acknowledgement, 0x10 SME manual/user acknowledgement, 0x20 intermediate notification.
ESM_MESSAGE_TYPE = 0x3C


@dataclass(frozen=True)
class SessionInfo:
    """Which bind a receipt came in on, for the caller to correlate (``name`` is
    SessionConfig.name)."""

    name: str
    system_id: str
    host: str
    port: int


class Inbound:
    """Turns incoming message PDUs into callback calls; used only by the session thread."""

    def __init__(
        self,
        info: SessionInfo,
        on_receipt: Callable[[Receipt, SessionInfo], None],
        on_mo: Callable[[MoMessage], None] | None,
        reassembler: Reassembler,
        counters: Counters,
        on_receipts: Callable[[list[Receipt], SessionInfo], None] | None = None,
    ) -> None:
        """``on_receipts``, when given, takes the receipts of a read in one call (instead of
        ``on_receipt`` once each); if it raises, every one of them is answered
        ESME_RX_T_APPN."""
        self.info = info
        self.on_receipt = on_receipt
        self.on_receipts = on_receipts
        self.on_mo = on_mo
        self.reassembler = reassembler
        self.counters = counters

    def take(self, command: int, body: bytes, now: float) -> Receipt | int:
        """A deliver_sm's or data_sm's receipt, to :meth:`hand_over` with the rest of the read;
        or, for an MO or an unreadable receipt, the status to answer it with (its callback
        already called). Raises pdu.PduError when it is malformed."""
        m: pdu.DataSm | pdu.ShortMessage
        if command == pdu.DATA_SM:
            m = pdu.decode_data_sm(body)
            message = m.tlvs.get(TAG_MESSAGE_PAYLOAD, b"")
        else:
            m = pdu.decode_short_message(body)
            message = m.short_message or m.tlvs.get(TAG_MESSAGE_PAYLOAD, b"")
        source, esm_class, coding, tlvs = m.source_addr, m.esm_class, m.data_coding, m.tlvs
        if not (esm_class & ESM_MESSAGE_TYPE or TAG_RECEIPTED_MESSAGE_ID in tlvs):
            return self._mo(source, m.destination_addr, message, esm_class, coding, tlvs, now)
        receipt = parse_receipt(message, tlvs, data_coding=coding)
        if receipt is None:
            return self._unreadable(source, message)
        return receipt

    def hand_over(self, receipts: list[Receipt]) -> list[int]:
        """Give the receipts of one read to the callback; the status to answer each with."""
        batch = self.on_receipts
        if batch is None:
            return [self._call(self.on_receipt, r, 1) for r in receipts]
        return [self._call(batch, receipts, len(receipts))] * len(receipts) if receipts else []

    def _call(self, callback: Callable[[Any, SessionInfo], None], argument: Any, count: int) -> int:
        """ESME_ROK once the callback returned; ESME_RX_T_APPN (the SMSC sends the receipts
        again later) when it raised."""
        try:
            callback(argument, self.info)
        except Exception:
            self.counters.callback_errors += 1
            log.exception(
                "%s: receipt callback failed for %d receipt(s); answering ESME_RX_T_APPN so "
                "the SMSC sends them again",
                self.info.name,
                count,
            )
            return ESME_RX_T_APPN
        self.counters.receipts += count
        return ESME_ROK

    def deliver_sm(self, body: bytes, now: float) -> int:
        """The status to answer a deliver_sm with. Raises pdu.PduError when it is malformed."""
        return self._answer(self.take(pdu.DELIVER_SM, body, now))

    def data_sm(self, body: bytes, now: float) -> int:
        """The status to answer a data_sm with (its text is in message_payload)."""
        return self._answer(self.take(pdu.DATA_SM, body, now))

    def _answer(self, taken: Receipt | int) -> int:
        return taken if isinstance(taken, int) else self.hand_over([taken])[0]

    def _unreadable(self, source: str, message: bytes) -> int:
        # Answering an error would make the SMSC resend it forever; it cannot get better.
        log.warning(
            "%s: unreadable delivery receipt from %s acknowledged and dropped: %r",
            self.info.name,
            source,
            bytes(message[:160]),
        )
        return ESME_ROK

    def _mo(
        self,
        source: str,
        dest: str,
        message: bytes,
        esm_class: int,
        data_coding: int,
        tlvs: Mapping[int, bytes],
        now: float,
    ) -> int:
        whole = self.reassembler.add(source, dest, message, esm_class, data_coding, tlvs, now)
        if whole is None:
            return ESME_ROK  # a part kept for later, or a duplicate
        if self.on_mo is None:
            log.info("%s: MO message from %s dropped: no on_mo callback", self.info.name, source)
            return ESME_ROK
        try:
            self.on_mo(whole)
        except Exception:
            self.counters.callback_errors += 1
            self.reassembler.undo_last()
            log.exception(
                "%s: on_mo failed; answering ESME_RX_T_APPN so the SMSC sends the part again",
                self.info.name,
            )
            return ESME_RX_T_APPN
        self.counters.mo += 1
        return ESME_ROK
