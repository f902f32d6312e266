"""Concatenation bytes: UDH (8/16-bit ref), SAR TLVs, message_payload, and parsing them back."""

from __future__ import annotations

import pytest

from smpp.codec import ConcatInfo, SubmitPart, build_submit_parts, parse_concat

LONG_GSM = "a" * 153 + "b" * 8  # 161 septets: two parts, the second is "bbbbbbbb"
LONG_UCS2 = "Ж" * 67 + "Я" * 4  # 71 code units: two parts


def test_single_part_text_has_no_udh_or_tlv_for_concat_methods():
    for method in ("udh", "udh16", "sar"):
        assert build_submit_parts("hi", method=method, ref=7) == [
            SubmitPart(b"hi", 0x00, 0x00, (), 1, 1)
        ]


def test_udh_8bit_bytes():
    parts = build_submit_parts(LONG_GSM, method="udh", ref=0x2A)
    assert [(p.part, p.total, p.esm_class, p.data_coding, p.tlvs) for p in parts] == [
        (1, 2, 0x40, 0x00, ()),
        (2, 2, 0x40, 0x00, ()),
    ]
    # 05 00 03 ref=0x2A total=2 seq=1, then 153 'a' septets
    assert parts[0].short_message == b"\x05\x00\x03\x2a\x02\x01" + b"a" * 153
    # 05 00 03 ref=0x2A total=2 seq=2, then 8 'b'
    assert parts[1].short_message == b"\x05\x00\x03\x2a\x02\x02" + b"b" * 8


def test_udh_8bit_ref_wraps_modulo_256():
    parts = build_submit_parts(LONG_GSM, method="udh", ref=0x12A)
    assert parts[0].short_message[:6] == b"\x05\x00\x03\x2a\x02\x01"  # 0x12A -> 0x2A


def test_udh_16bit_bytes_and_capacity():
    parts = build_submit_parts("a" * 161, method="udh16", ref=0xBEEF)
    # 06 08 04 ref=0xBE 0xEF total=2 seq=1, then 152 'a' (7-octet UDH leaves 152 septets)
    assert parts[0].short_message == b"\x06\x08\x04\xbe\xef\x02\x01" + b"a" * 152
    assert parts[1].short_message == b"\x06\x08\x04\xbe\xef\x02\x02" + b"a" * 9


def test_ucs2_udh_parts():
    parts = build_submit_parts(LONG_UCS2, method="udh", ref=1)
    assert parts[0].data_coding == 0x08
    # 05 00 03 ref=1 total=2 seq=1, then 67 x U+0416 as UTF-16-BE
    assert parts[0].short_message == b"\x05\x00\x03\x01\x02\x01" + b"\x04\x16" * 67
    assert parts[1].short_message == b"\x05\x00\x03\x01\x02\x02" + b"\x04\x2f" * 4  # U+042F


def test_sar_tlv_bytes():
    parts = build_submit_parts(LONG_GSM, method="sar", ref=0x1234)
    assert parts[1] == SubmitPart(
        short_message=b"b" * 8,  # no UDH
        esm_class=0x00,
        data_coding=0x00,
        tlvs=(
            (0x020C, b"\x12\x34"),  # sar_msg_ref_num, 2 octets
            (0x020E, b"\x02"),  # sar_total_segments
            (0x020F, b"\x02"),  # sar_segment_seqnum
        ),
        part=2,
        total=2,
    )


def test_payload_is_one_pdu_with_the_whole_text():
    assert build_submit_parts(LONG_GSM + "€", method="payload") == [
        SubmitPart(
            b"",
            0x00,
            0x00,
            ((0x0424, b"a" * 153 + b"b" * 8 + b"\x1b\x65"),),  # message_payload: unpacked septets
            1,
            1,
        )
    ]
    assert build_submit_parts("hi", method="payload")[0].tlvs == ((0x0424, b"hi"),)


def test_build_submit_parts_rejects_bad_arguments():
    with pytest.raises(ValueError, match="unknown concatenation method"):
        build_submit_parts("x", method="smart")
    with pytest.raises(ValueError, match=">= 0"):
        build_submit_parts("x", ref=-1)
    with pytest.raises(ValueError, match="method='payload'"):
        build_submit_parts("a" * 153 * 255 + "a")  # 256 parts
    assert len(build_submit_parts("a" * 153 * 255)) == 255


@pytest.mark.parametrize(
    "message, esm_class, info, payload",
    [
        # 05 00 03 ref=0x2A total=3 seq=2 | "hi"
        (b"\x05\x00\x03\x2a\x03\x02hi", 0x40, ConcatInfo(0x2A, 3, 2), b"hi"),
        # 06 08 04 ref=0x0102 total=2 seq=1 | "x"
        (b"\x06\x08\x04\x01\x02\x02\x01x", 0x40, ConcatInfo(0x0102, 2, 1), b"x"),
        # UDHL 0B | 05 04 0B84 23F0 (port addressing, skipped) | 00 03 ref=7 total=2 seq=2 | "y"
        (b"\x0b\x05\x04\x0b\x84\x23\xf0\x00\x03\x07\x02\x02y", 0x43, ConcatInfo(7, 2, 2), b"y"),
        # 06 | 05 04 0B84 23F0: valid UDH without concat IE: stripped, no info
        (b"\x06\x05\x04\x0b\x84\x23\xf0z", 0x40, None, b"z"),
        # UDHI not set: the bytes are text, left alone
        (b"\x05\x00\x03\x2a\x03\x02hi", 0x00, None, b"\x05\x00\x03\x2a\x03\x02hi"),
        # seq 0 / seq > total: the IE is ignored but the UDH still stripped
        (b"\x05\x00\x03\x2a\x03\x00hi", 0x40, None, b"hi"),
        (b"\x05\x00\x03\x2a\x02\x03hi", 0x40, None, b"hi"),
    ],
)
def test_parse_concat_udh(message, esm_class, info, payload):
    assert parse_concat(message, esm_class, {}) == (info, payload)


@pytest.mark.parametrize(
    "message",
    [
        b"",  # UDHI with no data at all
        b"\x09\x00\x03\x2a\x03\x02hi",  # UDHL 9 runs past the 8 remaining octets
        b"\x05\x00\x07\x2a\x03\x02hi",  # IE length 7 runs past the 5-octet header
        b"\x01\x00hi",  # IE header cut after its id
    ],
)
def test_parse_concat_malformed_udh_returns_none_and_original(message):
    assert parse_concat(message, 0x40, {}) == (None, message)


def test_parse_concat_sar_tlvs_as_bytes_or_ints():
    tlvs = {0x020C: b"\x12\x34", 0x020E: b"\x03", 0x020F: b"\x01"}
    assert parse_concat(b"abc", 0, tlvs) == (ConcatInfo(0x1234, 3, 1), b"abc")
    ints = {0x020C: 0x1234, 0x020E: 3, 0x020F: 3}
    assert parse_concat(b"abc", 0, ints) == (ConcatInfo(0x1234, 3, 3), b"abc")
    assert parse_concat(b"abc", 0, {0x020C: b"\x01", 0x020E: b""}) == (None, b"abc")
    assert parse_concat(b"abc", 0, None) == (None, b"abc")


def test_parse_concat_reads_what_build_submit_parts_wrote():
    for method in ("udh", "udh16", "sar"):
        for p in build_submit_parts(LONG_GSM, method=method, ref=200):
            info, payload = parse_concat(p.short_message, p.esm_class, dict(p.tlvs))
            assert info == ConcatInfo(200, 2, p.part)
            first = 152 if method == "udh16" else 153
            expected = LONG_GSM[:first] if p.part == 1 else LONG_GSM[first:]
            assert payload == expected.encode()
