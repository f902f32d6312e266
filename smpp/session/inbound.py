"""What the session does with deliver_sm and data_sm from the SMSC: tell delivery receipts from
mobile-originated messages, parse or reassemble them, hand them to the caller's callbacks, and
choose the status to answer with (0, or ESME_RX_T_APPN when a callback failed so the SMSC
sends the PDU again later).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass

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
    ) -> None:
        self.info = info
        self.on_receipt = on_receipt
        self.on_mo = on_mo
        self.reassembler = reassembler
        self.counters = counters

    def deliver_sm(self, body: bytes, now: float) -> int:
        """The status to answer a deliver_sm with. Raises pdu.PduError when it is malformed."""
        m = pdu.decode_short_message(body)
        message = m.short_message or m.tlvs.get(TAG_MESSAGE_PAYLOAD, b"")
        return self._message(
            m.source_addr, m.destination_addr, message, m.esm_class, m.data_coding, m.tlvs, now
        )

    def data_sm(self, body: bytes, now: float) -> int:
        """The status to answer a data_sm with (its text is in message_payload)."""
        d = pdu.decode_data_sm(body)
        message = d.tlvs.get(TAG_MESSAGE_PAYLOAD, b"")
        return self._message(
            d.source_addr, d.destination_addr, message, d.esm_class, d.data_coding, d.tlvs, now
        )

    def _message(
        self,
        source: str,
        dest: str,
        message: bytes,
        esm_class: int,
        data_coding: int,
        tlvs: Mapping[int, bytes],
        now: float,
    ) -> int:
        if esm_class & ESM_MESSAGE_TYPE or TAG_RECEIPTED_MESSAGE_ID in tlvs:
            return self._receipt(source, message, data_coding, tlvs)
        return self._mo(source, dest, message, esm_class, data_coding, tlvs, now)

    def _receipt(
        self, source: str, message: bytes, data_coding: int, tlvs: Mapping[int, bytes]
    ) -> int:
        receipt = parse_receipt(message, tlvs, data_coding=data_coding)
        if receipt is None:
            # Answering an error would make the SMSC resend it forever; it cannot get better.
            log.warning(
                "%s: unreadable delivery receipt from %s acknowledged and dropped: %r",
                self.info.name,
                source,
                bytes(message[:160]),
            )
            return ESME_ROK
        try:
            self.on_receipt(receipt, self.info)
        except Exception:
            self.counters.callback_errors += 1
            log.exception(
                "%s: on_receipt failed; answering ESME_RX_T_APPN so the SMSC "
                "sends the receipt again",
                self.info.name,
            )
            return ESME_RX_T_APPN
        self.counters.receipts += 1
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
