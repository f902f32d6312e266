"""Concatenated SMS: building submit_sm parts (UDH, SAR or message_payload) and reading
the concatenation info of an incoming deliver_sm. Pure functions over bytes.

Public names are re-exported by `smpp.codec`; import them from there.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from smpp.codec.pdu import ESM_CLASS_UDHI
from smpp.codec.text import UDH_LENGTH_8BIT, UDH_LENGTH_16BIT, encode, segment
from smpp.codec.tlv import (
    TAG_MESSAGE_PAYLOAD,
    TAG_SAR_MSG_REF_NUM,
    TAG_SAR_SEGMENT_SEQNUM,
    TAG_SAR_TOTAL_SEGMENTS,
)

#: esm_class bit: short_message starts with a User Data Header.
ESM_UDHI = ESM_CLASS_UDHI
#: UDH information element ids: concatenation with an 8-bit and a 16-bit reference.
IEI_CONCAT_8BIT = 0x00
IEI_CONCAT_16BIT = 0x08

METHODS = ("udh", "udh16", "sar", "payload")
#: The sequence number and total are one octet each: 255 parts at most.
MAX_PARTS = 255
#: The TLV length field is 2 octets.
MAX_PAYLOAD_OCTETS = 0xFFFF


@dataclass(frozen=True)
class SubmitPart:
    """One submit_sm's worth of a text: the fields that depend on concatenation.

    esm_class holds only the UDHI bit (0x40) or 0; the session may OR in other bits.
    tlvs are (tag, value) pairs to send as optional parameters. part/total number the PDUs.
    """

    short_message: bytes
    esm_class: int
    data_coding: int
    tlvs: tuple[tuple[int, bytes], ...]
    part: int
    total: int


@dataclass(frozen=True)
class ConcatInfo:
    """Where an incoming part belongs: reference, number of parts, and this part's number (1-)."""

    ref: int
    total: int
    seq: int


def concat_udh(ref: int, total: int, seq: int, *, ref_bits: int = 8) -> bytes:
    """The UDH (with its length octet) for part `seq` of `total`, reference `ref`."""
    if ref_bits == 8:
        return bytes((5, IEI_CONCAT_8BIT, 3, ref & 0xFF, total, seq))
    return bytes((6, IEI_CONCAT_16BIT, 4, (ref >> 8) & 0xFF, ref & 0xFF, total, seq))


def sar_tlvs(ref: int, total: int, seq: int) -> tuple[tuple[int, bytes], ...]:
    """The three SAR TLVs (sar_msg_ref_num is 2 octets, the others 1)."""
    return (
        (TAG_SAR_MSG_REF_NUM, (ref & 0xFFFF).to_bytes(2, "big")),
        (TAG_SAR_TOTAL_SEGMENTS, bytes((total,))),
        (TAG_SAR_SEGMENT_SEQNUM, bytes((seq,))),
    )


def build_submit_parts(text: str, *, method: str = "udh", ref: int = 0) -> list[SubmitPart]:
    """The submit_sm parts for `text` with concatenation `method`.

    "udh": 6-octet UDH, 8-bit ref (ref mod 256), esm_class 0x40, 153 septets / 67 units a part.
    "udh16": 7-octet UDH, 16-bit ref (ref mod 65536), 152 / 66 a part.
    "sar": no UDH; sar_* TLVs (ref mod 65536); the SMSC builds the UDH, so 153 / 67 a part.
    "payload": one PDU, empty short_message, the whole text in message_payload.
    A text that fits one SMS gets no UDH or SAR TLVs (only "payload" always uses its TLV).
    Raises ValueError for an unknown method, a negative ref, more than 255 parts or a payload
    above 65535 octets.
    """
    if method not in METHODS:
        raise ValueError(f"unknown concatenation method {method!r}; use one of {METHODS}")
    if ref < 0:
        raise ValueError(f"concatenation ref must be >= 0, got {ref}")
    seg = segment(text, udh_length=UDH_LENGTH_16BIT if method == "udh16" else UDH_LENGTH_8BIT)
    if method == "payload":
        return [_payload_part(text, seg.encoding, seg.data_coding)]
    if seg.parts == 1:
        return [SubmitPart(encode(text, seg.encoding), 0, seg.data_coding, (), 1, 1)]
    if seg.parts > MAX_PARTS:
        raise ValueError(
            f"text needs {seg.parts} parts, more than the {MAX_PARTS} concatenation allows; "
            "shorten it or send it with method='payload'"
        )
    return [
        _concat_part(body, seg.encoding, seg.data_coding, method, ref, seq, seg.parts)
        for seq, body in enumerate(seg.texts, start=1)
    ]


def _payload_part(text: str, encoding: str, data_coding: int) -> SubmitPart:
    data = encode(text, encoding)
    if len(data) > MAX_PAYLOAD_OCTETS:
        raise ValueError(
            f"text encodes to {len(data)} octets, more than message_payload's "
            f"{MAX_PAYLOAD_OCTETS}; shorten it"
        )
    return SubmitPart(b"", 0, data_coding, ((TAG_MESSAGE_PAYLOAD, data),), 1, 1)


def _concat_part(
    body: str, encoding: str, data_coding: int, method: str, ref: int, seq: int, total: int
) -> SubmitPart:
    data = encode(body, encoding)
    if method == "sar":
        return SubmitPart(data, 0, data_coding, sar_tlvs(ref, total, seq), seq, total)
    udh = concat_udh(ref, total, seq, ref_bits=16 if method == "udh16" else 8)
    return SubmitPart(udh + data, ESM_UDHI, data_coding, (), seq, total)


def parse_concat(
    short_message: bytes, esm_class: int, tlvs: Mapping[int, bytes | int] | None = None
) -> tuple[ConcatInfo | None, bytes]:
    """(concatenation info or None, the user data without its UDH) of an incoming message.

    With UDHI (esm_class 0x40) the UDH is parsed: IEI 0x00 (8-bit ref) and 0x08 (16-bit ref)
    are read, other IEs skipped, and the UDH is stripped even when it holds no concatenation
    IE. A structurally broken UDH (lengths running past the data) gives (None, original bytes).
    Without a usable concatenation IE, the SAR TLVs are tried. A concat IE or SAR set with
    total 0, seq 0 or seq > total is ignored. TLV values may be big-endian bytes or ints
    (as smpplib hands them over). Never raises on malformed input.
    """
    data = bytes(short_message)
    info: ConcatInfo | None = None
    if esm_class & ESM_UDHI:
        parsed = _parse_udh(data)
        if parsed is None:
            return None, data
        info, data = parsed
    if info is None and tlvs:
        info = _parse_sar(tlvs)
    return info, data


def _valid(ref: int, total: int, seq: int) -> ConcatInfo | None:
    return ConcatInfo(ref, total, seq) if 1 <= seq <= total else None


def _parse_udh(data: bytes) -> tuple[ConcatInfo | None, bytes] | None:
    """(info, payload) from a UDH-prefixed message, or None when the UDH is malformed."""
    if not data or data[0] + 1 > len(data):
        return None
    header, payload = data[1 : data[0] + 1], data[data[0] + 1 :]
    info, i = None, 0
    while i < len(header):
        if i + 2 > len(header) or i + 2 + header[i + 1] > len(header):
            return None
        iei, value = header[i], header[i + 2 : i + 2 + header[i + 1]]
        if iei == IEI_CONCAT_8BIT and len(value) == 3:
            info = _valid(value[0], value[1], value[2]) or info
        elif iei == IEI_CONCAT_16BIT and len(value) == 4:
            info = _valid(value[0] << 8 | value[1], value[2], value[3]) or info
        i += 2 + len(value)
    return info, payload


def _tlv_int(tlvs: Mapping[int, bytes | int], tag: int) -> int | None:
    """A TLV's value as an unsigned int (bytes are big-endian), or None when absent/empty."""
    value = tlvs.get(tag)
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, (bytes, bytearray, memoryview)) and len(value) > 0:
        return int.from_bytes(bytes(value), "big")
    return None


def _parse_sar(tlvs: Mapping[int, bytes | int]) -> ConcatInfo | None:
    ref = _tlv_int(tlvs, TAG_SAR_MSG_REF_NUM)
    total = _tlv_int(tlvs, TAG_SAR_TOTAL_SEGMENTS)
    seq = _tlv_int(tlvs, TAG_SAR_SEGMENT_SEQNUM)
    if ref is None or total is None or seq is None:
        return None
    return _valid(ref, total, seq)
