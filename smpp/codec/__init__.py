"""Text encoding, segmentation and concatenation for SMPP: the one public entry point.

The code lives in small modules (`smpp.codec.gsm` for the GSM 03.38 alphabet, `smpp.codec.text` for the
encoding choice, segmentation and decoding, `smpp.codec.concat` for UDH/SAR/payload concatenation);
callers import everything from here so those modules can be rearranged freely. All pure.
"""

from __future__ import annotations

from smpp.codec.concat import (
    ESM_UDHI,
    IEI_CONCAT_8BIT,
    IEI_CONCAT_16BIT,
    MAX_PARTS,
    METHODS,
    ConcatInfo,
    SubmitPart,
    build_submit_parts,
    concat_udh,
    parse_concat,
    sar_tlvs,
)
from smpp.codec.gsm import GSM_CHARS, decode_gsm, encode_gsm, is_gsm, septet_count
from smpp.codec.text import (
    DATA_CODING,
    GSM,
    UCS2,
    UDH_LENGTH_8BIT,
    UDH_LENGTH_16BIT,
    Segments,
    capacity,
    choose_encoding,
    count_parts,
    decode,
    decode_ucs2,
    encode,
    encode_ucs2,
    segment,
    ucs2_units,
)
from smpp.codec.tlv import (
    TAG_MESSAGE_PAYLOAD,
    TAG_SAR_MSG_REF_NUM,
    TAG_SAR_SEGMENT_SEQNUM,
    TAG_SAR_TOTAL_SEGMENTS,
)

__all__ = [
    "DATA_CODING",
    "ESM_UDHI",
    "GSM",
    "GSM_CHARS",
    "IEI_CONCAT_8BIT",
    "IEI_CONCAT_16BIT",
    "MAX_PARTS",
    "METHODS",
    "TAG_MESSAGE_PAYLOAD",
    "TAG_SAR_MSG_REF_NUM",
    "TAG_SAR_SEGMENT_SEQNUM",
    "TAG_SAR_TOTAL_SEGMENTS",
    "UCS2",
    "UDH_LENGTH_8BIT",
    "UDH_LENGTH_16BIT",
    "ConcatInfo",
    "Segments",
    "SubmitPart",
    "build_submit_parts",
    "capacity",
    "choose_encoding",
    "concat_udh",
    "count_parts",
    "decode",
    "decode_gsm",
    "decode_ucs2",
    "encode",
    "encode_gsm",
    "encode_ucs2",
    "is_gsm",
    "parse_concat",
    "sar_tlvs",
    "segment",
    "septet_count",
    "ucs2_units",
]
