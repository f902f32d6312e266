"""SMPP 3.4 PDUs as pure functions over bytes: header, framing, C-octet strings, TLVs and the
bodies of the commands the bridge and the simulated SMSC exchange.

No sockets and no state: the session and the simulator own sequence numbers and sockets. Every
malformed input raises :class:`PduError` (never IndexError or struct.error), carrying the SMPP
status a peer should be answered with. Strings are C-octet strings read and written as latin-1
(a byte-for-byte mapping, so nothing the wire carries is lost); encoders reject values longer than
the field allows. Kept lean: the simulator's >= 30,000 submit_sm/s and the session's submit path
run through these functions.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import NamedTuple

# The statuses the codec itself reports, from the one table.
from smpp.codec.status import (
    ESME_RINVCMDLEN,
    ESME_RINVDSTADR,
    ESME_RINVMSGLEN,
    ESME_RINVOPTPARSTREAM,
    ESME_RINVPASWD,
    ESME_RINVSRCADR,
    ESME_RINVSYSID,
)
from smpp.codec.tlv import TAG_SC_INTERFACE_VERSION

HEADER = struct.Struct(">IIII")
HEADER_LENGTH = 16
#: Longest PDU accepted by :func:`split_frames` (a submit_sm with a full message_payload fits).
MAX_PDU_LENGTH = 65_536
RESPONSE_BIT = 0x80000000

# --- command ids (SMPP 3.4, section 5.1.2.1) ---
GENERIC_NACK = 0x80000000
BIND_RECEIVER = 0x00000001
BIND_RECEIVER_RESP = 0x80000001
BIND_TRANSMITTER = 0x00000002
BIND_TRANSMITTER_RESP = 0x80000002
QUERY_SM = 0x00000003
QUERY_SM_RESP = 0x80000003
SUBMIT_SM = 0x00000004
SUBMIT_SM_RESP = 0x80000004
DELIVER_SM = 0x00000005
DELIVER_SM_RESP = 0x80000005
UNBIND = 0x00000006
UNBIND_RESP = 0x80000006
REPLACE_SM = 0x00000007
REPLACE_SM_RESP = 0x80000007
CANCEL_SM = 0x00000008
CANCEL_SM_RESP = 0x80000008
BIND_TRANSCEIVER = 0x00000009
BIND_TRANSCEIVER_RESP = 0x80000009
OUTBIND = 0x0000000B
ENQUIRE_LINK = 0x00000015
ENQUIRE_LINK_RESP = 0x80000015
SUBMIT_MULTI = 0x00000021
SUBMIT_MULTI_RESP = 0x80000021
ALERT_NOTIFICATION = 0x00000102
DATA_SM = 0x00000103
DATA_SM_RESP = 0x80000103

#: Every command id above by its lower-case name (the imported ESME_*/TAG_* names are not).
COMMAND_NAMES: dict[int, str] = {
    value: name.lower()
    for name, value in globals().items()
    if name.isupper()
    and isinstance(value, int)
    and not name.startswith(("ESME_", "TAG_"))
    and name not in ("HEADER_LENGTH", "MAX_PDU_LENGTH", "RESPONSE_BIT")
}
BIND_COMMANDS = (BIND_TRANSMITTER, BIND_RECEIVER, BIND_TRANSCEIVER)

ESM_CLASS_DELIVERY_RECEIPT = 0x04  # deliver_sm carries an SMSC delivery receipt
ESM_CLASS_UDHI = 0x40  # short_message starts with a User Data Header
INTERFACE_VERSION = 0x34  # SMPP 3.4
MAX_SHORT_MESSAGE = 254  # longer texts go in message_payload


class PduError(ValueError):
    """Malformed or unencodable PDU. ``status`` is the SMPP status to answer it with;
    ``command_id``/``sequence`` are known when the header could be read."""

    def __init__(
        self,
        message: str,
        status: int = ESME_RINVCMDLEN,
        command_id: int | None = None,
        sequence: int | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.command_id = command_id
        self.sequence = sequence


class Header(NamedTuple):
    command_length: int
    command_id: int
    command_status: int
    sequence_number: int


class Pdu(NamedTuple):
    """A decoded PDU: header fields and ``body`` (a dataclass, a message_id str, raw bytes for
    commands this module does not decode, or None for header-only commands)."""

    command_id: int
    command_status: int
    sequence_number: int
    body: object


def command_name(command_id: int) -> str:
    """'submit_sm' for 0x00000004; unknown ids as '0x000000ff'."""
    return COMMAND_NAMES.get(command_id) or f"0x{command_id:08x}"


# --------------------------------------------------------------------------- header & frames


def decode_header(data: bytes) -> Header:
    """The 16-octet header at the start of ``data``."""
    if len(data) < HEADER_LENGTH:
        raise PduError(f"PDU header needs 16 octets, got {len(data)}")
    return Header._make(HEADER.unpack_from(data))


def encode_pdu(command_id: int, status: int, sequence: int, body: bytes = b"") -> bytes:
    """Header + body; command_length is computed."""
    return HEADER.pack(HEADER_LENGTH + len(body), command_id, status, sequence) + body


def split_frames(buffer: bytes, max_length: int = MAX_PDU_LENGTH) -> tuple[list[bytes], bytes]:
    """Cut a stream buffer into whole PDUs: (frames, the incomplete rest to keep for later).

    A command_length below 16 or above ``max_length`` means the stream can no longer be framed:
    PduError (status ESME_RINVCMDLEN, with the command id and sequence when readable); the
    caller answers generic_nack and closes the connection.
    """
    frames = []
    pos, size = 0, len(buffer)
    unpack = HEADER.unpack_from
    while size - pos >= 4:
        if size - pos >= HEADER_LENGTH:
            length, command_id, _status, sequence = unpack(buffer, pos)
        else:
            length, command_id, sequence = int.from_bytes(buffer[pos : pos + 4], "big"), None, None
        if length < HEADER_LENGTH or length > max_length:
            raise PduError(
                f"command_length {length} outside 16..{max_length}: the stream "
                "is out of step; close the connection",
                ESME_RINVCMDLEN,
                command_id,
                sequence,
            )
        if size - pos < length:
            break
        frames.append(buffer[pos : pos + length])
        pos += length
    return frames, buffer[pos:]


# --------------------------------------------------------------------------- strings & TLVs


def read_cstring(
    data: bytes, pos: int, max_octets: int, name: str = "string", status: int = ESME_RINVCMDLEN
) -> tuple[str, int]:
    """(value, position after its NUL) of the C-octet string at ``pos``; ``max_octets``
    counts the NUL, as the specification's field sizes do."""
    end = data.find(b"\0", pos, pos + max_octets)
    if end < 0:
        if len(data) < pos + max_octets:
            raise PduError(f"{name}: the PDU ends before its NUL terminator", ESME_RINVCMDLEN)
        raise PduError(
            f"{name}: no NUL terminator within {max_octets} octets at offset {pos}", status
        )
    return data[pos:end].decode("latin-1"), end + 1


def cstring(value: str, max_octets: int, name: str = "string") -> bytes:
    """``value`` as a C-octet string, at most ``max_octets`` octets with its NUL."""
    try:
        raw = value.encode("latin-1")
    except (UnicodeEncodeError, AttributeError) as exc:
        raise PduError(f"{name} must be a latin-1 str, got {value!r}") from exc
    if len(raw) >= max_octets or b"\0" in raw:
        raise PduError(f"{name} {value!r} longer than {max_octets - 1} octets or holds a NUL")
    return raw + b"\0"


def decode_tlvs(data: bytes, pos: int = 0) -> dict[int, bytes]:
    """TLVs from ``pos`` to the end of ``data`` as {tag: value}; a later duplicate wins."""
    tlvs: dict[int, bytes] = {}
    size = len(data)
    while pos < size:
        if size - pos < 4:
            raise PduError(f"truncated TLV header at offset {pos}", ESME_RINVOPTPARSTREAM)
        tag, length = _TLV_HEAD.unpack_from(data, pos)
        pos += 4
        if pos + length > size:
            raise PduError(
                f"TLV 0x{tag:04x} length {length} runs past the PDU", ESME_RINVOPTPARSTREAM
            )
        tlvs[tag] = bytes(data[pos : pos + length])
        pos += length
    return tlvs


def encode_tlvs(tlvs: Mapping[int, bytes] | None) -> bytes:
    """{tag: value bytes} as TLVs, in the mapping's order (see :func:`tlv_int`/:func:`tlv_cstring`)."""
    if not tlvs:
        return b""
    try:
        return b"".join(_TLV_HEAD.pack(tag, len(value)) + value for tag, value in tlvs.items())
    except (struct.error, TypeError) as exc:
        raise PduError(f"TLVs must be {{tag: bytes}} with values under 64 KiB: {exc}") from exc


def tlv_int(value: int, size: int = 1) -> bytes:
    """An integer TLV value of ``size`` octets, big-endian."""
    return value.to_bytes(size, "big")


def tlv_cstring(value: str) -> bytes:
    """A C-octet string TLV value (NUL included, as receipted_message_id wants)."""
    return value.encode("latin-1") + b"\0"


def tlv_to_int(value: bytes) -> int:
    return int.from_bytes(value, "big")


def tlv_to_str(value: bytes) -> str:
    return value.rstrip(b"\0").decode("latin-1")


_TLV_HEAD = struct.Struct(">HH")


def _truncated(what: str) -> PduError:
    return PduError(f"{what} body is truncated", ESME_RINVCMDLEN)


# --------------------------------------------------------------------------- bind


@dataclass(slots=True)
class Bind:
    """bind_transmitter / bind_receiver / bind_transceiver parameters."""

    system_id: str = ""
    password: str = ""
    system_type: str = ""
    interface_version: int = INTERFACE_VERSION
    addr_ton: int = 0
    addr_npi: int = 0
    address_range: str = ""


def encode_bind(command_id: int, sequence: int, bind: Bind) -> bytes:
    """A bind request; ``command_id`` is BIND_TRANSMITTER, BIND_RECEIVER or BIND_TRANSCEIVER."""
    try:
        body = b"".join(
            (
                cstring(bind.system_id, 16, "system_id"),
                cstring(bind.password, 9, "password"),
                cstring(bind.system_type, 13, "system_type"),
                bytes((bind.interface_version, bind.addr_ton, bind.addr_npi)),
                cstring(bind.address_range, 41, "address_range"),
            )
        )
    except (ValueError, TypeError) as exc:
        raise exc if isinstance(exc, PduError) else PduError(f"bind: {exc}") from exc
    return encode_pdu(command_id, 0, sequence, body)


def decode_bind(body: bytes) -> Bind:
    try:
        system_id, p = read_cstring(body, 0, 16, "system_id", ESME_RINVSYSID)
        password, p = read_cstring(body, p, 9, "password", ESME_RINVPASWD)
        system_type, p = read_cstring(body, p, 13, "system_type")
        version, ton, npi = body[p], body[p + 1], body[p + 2]
        address_range, p = read_cstring(body, p + 3, 41, "address_range")
    except IndexError:
        raise _truncated("bind") from None
    return Bind(system_id, password, system_type, version, ton, npi, address_range)


def encode_bind_resp(
    command_id: int,
    sequence: int,
    system_id: str,
    status: int = 0,
    sc_interface_version: int | None = INTERFACE_VERSION,
) -> bytes:
    """A bind_*_resp; ``command_id`` may be the request's or the response's id."""
    body = cstring(system_id, 16, "system_id")
    if sc_interface_version is not None and status == 0:
        body += _TLV_HEAD.pack(TAG_SC_INTERFACE_VERSION, 1) + bytes((sc_interface_version,))
    return encode_pdu(command_id | RESPONSE_BIT, status, sequence, body)


def decode_bind_resp(body: bytes) -> tuple[str, dict[int, bytes]]:
    """(system_id, TLVs); an error response may have an empty body: ("", {})."""
    if not body:
        return "", {}
    system_id, p = read_cstring(body, 0, 16, "system_id")
    return system_id, decode_tlvs(body, p)


# --------------------------------------------------------------------------- submit_sm / deliver_sm


@dataclass(slots=True)
class ShortMessage:
    """The body of submit_sm and deliver_sm (identical layouts), fields in wire order."""

    service_type: str = ""
    source_addr_ton: int = 0
    source_addr_npi: int = 0
    source_addr: str = ""
    dest_addr_ton: int = 0
    dest_addr_npi: int = 0
    destination_addr: str = ""
    esm_class: int = 0
    protocol_id: int = 0
    priority_flag: int = 0
    schedule_delivery_time: str = ""
    validity_period: str = ""
    registered_delivery: int = 0
    replace_if_present_flag: int = 0
    data_coding: int = 0
    sm_default_msg_id: int = 0
    short_message: bytes = b""
    tlvs: dict[int, bytes] = field(default_factory=dict)


def encode_short_message(command_id: int, sequence: int, m: ShortMessage) -> bytes:
    """submit_sm or deliver_sm (``command_id``) carrying ``m``."""
    return encode_pdu(command_id, 0, sequence, short_message_body(m))


def short_message_body(m: ShortMessage) -> bytes:
    """The body of a submit_sm or deliver_sm carrying ``m`` (add the header with
    :func:`encode_pdu` once the sequence number is known)."""
    sm = m.short_message
    if len(sm) > MAX_SHORT_MESSAGE:
        raise PduError(
            f"short_message is {len(sm)} octets, over {MAX_SHORT_MESSAGE}: "
            "send it in the message_payload TLV",
            ESME_RINVMSGLEN,
        )
    try:
        body = b"".join(
            (
                cstring(m.service_type, 6, "service_type"),
                bytes((m.source_addr_ton, m.source_addr_npi)),
                cstring(m.source_addr, 21, "source_addr"),
                bytes((m.dest_addr_ton, m.dest_addr_npi)),
                cstring(m.destination_addr, 21, "destination_addr"),
                bytes((m.esm_class, m.protocol_id, m.priority_flag)),
                cstring(m.schedule_delivery_time, 17, "schedule_delivery_time"),
                cstring(m.validity_period, 17, "validity_period"),
                bytes(
                    (
                        m.registered_delivery,
                        m.replace_if_present_flag,
                        m.data_coding,
                        m.sm_default_msg_id,
                        len(sm),
                    )
                ),
                sm,
                encode_tlvs(m.tlvs),
            )
        )
    except (ValueError, TypeError) as exc:
        raise exc if isinstance(exc, PduError) else PduError(f"short message: {exc}") from exc
    return body


def encode_submit_sm(sequence: int, message: ShortMessage) -> bytes:
    return encode_short_message(SUBMIT_SM, sequence, message)


def encode_deliver_sm(sequence: int, message: ShortMessage) -> bytes:
    return encode_short_message(DELIVER_SM, sequence, message)


def decode_short_message(body: bytes) -> ShortMessage:
    """The body of a submit_sm or deliver_sm (the frame without its 16-octet header)."""
    try:
        service_type, p = read_cstring(body, 0, 6, "service_type")
        ston, snpi = body[p], body[p + 1]
        source, p = read_cstring(body, p + 2, 21, "source_addr", ESME_RINVSRCADR)
        dton, dnpi = body[p], body[p + 1]
        dest, p = read_cstring(body, p + 2, 21, "destination_addr", ESME_RINVDSTADR)
        esm, pid, priority = body[p], body[p + 1], body[p + 2]
        schedule, p = read_cstring(body, p + 3, 17, "schedule_delivery_time")
        validity, p = read_cstring(body, p, 17, "validity_period")
        rd, rip, dc, default_id, length = (
            body[p],
            body[p + 1],
            body[p + 2],
            body[p + 3],
            body[p + 4],
        )
    except IndexError:
        raise _truncated("short message") from None
    p += 5
    end = p + length
    if end > len(body):
        raise PduError(f"sm_length {length} runs past the PDU", ESME_RINVMSGLEN)
    tlvs = decode_tlvs(body, end) if end < len(body) else {}
    return ShortMessage(
        service_type,
        ston,
        snpi,
        source,
        dton,
        dnpi,
        dest,
        esm,
        pid,
        priority,
        schedule,
        validity,
        rd,
        rip,
        dc,
        default_id,
        body[p:end],
        tlvs,
    )


decode_submit_sm = decode_short_message
decode_deliver_sm = decode_short_message


def encode_message_id_resp(
    command_id: int,
    sequence: int,
    message_id: str,
    status: int = 0,
    tlvs: Mapping[int, bytes] | None = None,
) -> bytes:
    """submit_sm_resp / data_sm_resp / deliver_sm_resp. On an error status the body is left
    out, as section 4.4.2 says."""
    if status:
        return encode_pdu(command_id, status, sequence)
    return encode_pdu(
        command_id, 0, sequence, cstring(message_id, 65, "message_id") + encode_tlvs(tlvs)
    )


def encode_submit_sm_resp(sequence: int, message_id: str, status: int = 0) -> bytes:
    return encode_message_id_resp(SUBMIT_SM_RESP, sequence, message_id, status)


def encode_deliver_sm_resp(sequence: int, status: int = 0) -> bytes:
    """deliver_sm_resp; its message_id is unused and sent empty."""
    return encode_message_id_resp(DELIVER_SM_RESP, sequence, "", status)


def decode_message_id_resp(body: bytes) -> tuple[str, dict[int, bytes]]:
    """(message_id, TLVs) of a submit_sm_resp / data_sm_resp / deliver_sm_resp; ("", {}) when
    the body is empty (an error response)."""
    if not body:
        return "", {}
    message_id, p = read_cstring(body, 0, 65, "message_id")
    return message_id, (decode_tlvs(body, p) if p < len(body) else {})


def decode_submit_sm_resp(body: bytes) -> str:
    """The message id of a submit_sm_resp body ("" for an empty, error, body)."""
    if not body:
        return ""
    return read_cstring(body, 0, 65, "message_id")[0]


# --------------------------------------------------------------------------- data_sm


@dataclass(slots=True)
class DataSm:
    """The body of data_sm; the text travels in the message_payload TLV."""

    service_type: str = ""
    source_addr_ton: int = 0
    source_addr_npi: int = 0
    source_addr: str = ""
    dest_addr_ton: int = 0
    dest_addr_npi: int = 0
    destination_addr: str = ""
    esm_class: int = 0
    registered_delivery: int = 0
    data_coding: int = 0
    tlvs: dict[int, bytes] = field(default_factory=dict)


def encode_data_sm(sequence: int, m: DataSm) -> bytes:
    try:
        body = b"".join(
            (
                cstring(m.service_type, 6, "service_type"),
                bytes((m.source_addr_ton, m.source_addr_npi)),
                cstring(m.source_addr, 65, "source_addr"),
                bytes((m.dest_addr_ton, m.dest_addr_npi)),
                cstring(m.destination_addr, 65, "destination_addr"),
                bytes((m.esm_class, m.registered_delivery, m.data_coding)),
                encode_tlvs(m.tlvs),
            )
        )
    except (ValueError, TypeError) as exc:
        raise exc if isinstance(exc, PduError) else PduError(f"data_sm: {exc}") from exc
    return encode_pdu(DATA_SM, 0, sequence, body)


def decode_data_sm(body: bytes) -> DataSm:
    try:
        service_type, p = read_cstring(body, 0, 6, "service_type")
        ston, snpi = body[p], body[p + 1]
        source, p = read_cstring(body, p + 2, 65, "source_addr", ESME_RINVSRCADR)
        dton, dnpi = body[p], body[p + 1]
        dest, p = read_cstring(body, p + 2, 65, "destination_addr", ESME_RINVDSTADR)
        esm, rd, dc = body[p], body[p + 1], body[p + 2]
    except IndexError:
        raise _truncated("data_sm") from None
    return DataSm(
        service_type, ston, snpi, source, dton, dnpi, dest, esm, rd, dc, decode_tlvs(body, p + 3)
    )


def encode_data_sm_resp(
    sequence: int, message_id: str, status: int = 0, tlvs: Mapping[int, bytes] | None = None
) -> bytes:
    return encode_message_id_resp(DATA_SM_RESP, sequence, message_id, status, tlvs)


# --------------------------------------------------------------------------- the rest


def encode_generic_nack(sequence: int, status: int) -> bytes:
    return encode_pdu(GENERIC_NACK, status, sequence)


def encode_enquire_link(sequence: int) -> bytes:
    return encode_pdu(ENQUIRE_LINK, 0, sequence)


def encode_enquire_link_resp(sequence: int) -> bytes:
    return encode_pdu(ENQUIRE_LINK_RESP, 0, sequence)


def encode_unbind(sequence: int) -> bytes:
    return encode_pdu(UNBIND, 0, sequence)


def encode_unbind_resp(sequence: int, status: int = 0) -> bytes:
    return encode_pdu(UNBIND_RESP, status, sequence)


_BODY_DECODERS: dict[int, Callable[[bytes], object]] = {
    BIND_TRANSMITTER: decode_bind,
    BIND_RECEIVER: decode_bind,
    BIND_TRANSCEIVER: decode_bind,
    BIND_TRANSMITTER_RESP: decode_bind_resp,
    BIND_RECEIVER_RESP: decode_bind_resp,
    BIND_TRANSCEIVER_RESP: decode_bind_resp,
    SUBMIT_SM: decode_short_message,
    DELIVER_SM: decode_short_message,
    DATA_SM: decode_data_sm,
    SUBMIT_SM_RESP: decode_message_id_resp,
    DELIVER_SM_RESP: decode_message_id_resp,
    DATA_SM_RESP: decode_message_id_resp,
}
_HEADER_ONLY = frozenset((GENERIC_NACK, ENQUIRE_LINK, ENQUIRE_LINK_RESP, UNBIND, UNBIND_RESP))


def decode_pdu(frame: bytes) -> Pdu:
    """Any whole PDU. Bodies of commands without a decoder here stay raw bytes; a header-only
    command with a body, or a frame whose command_length disagrees with its size, is an error."""
    length, command_id, status, sequence = decode_header(frame)
    if length != len(frame):
        raise PduError(
            f"command_length {length} but the frame has {len(frame)} octets",
            ESME_RINVCMDLEN,
            command_id,
            sequence,
        )
    body = frame[HEADER_LENGTH:]
    decoder = _BODY_DECODERS.get(command_id)
    try:
        if decoder is not None:
            return Pdu(command_id, status, sequence, decoder(body))
    except PduError as exc:
        exc.command_id, exc.sequence = command_id, sequence
        raise
    if command_id in _HEADER_ONLY:
        if body:
            raise PduError(
                f"{command_name(command_id)} must have no body, got {len(body)} octets",
                ESME_RINVCMDLEN,
                command_id,
                sequence,
            )
        return Pdu(command_id, status, sequence, None)
    return Pdu(command_id, status, sequence, bytes(body))
