"""Byte-level encoding and decoding: GSM septets, UCS-2, data_coding dispatch."""

from __future__ import annotations

import pytest

from smpp.codec import decode, decode_gsm, decode_ucs2, encode_gsm, encode_ucs2


@pytest.mark.parametrize(
    "text, octets",
    [
        ("@", b"\x00"),  # '@' is septet 0x00
        ("€", b"\x1b\x65"),  # ESC, extension 0x65
        ("Hi!", b"\x48\x69\x21"),  # ASCII letters keep their values
        ("$", b"\x02"),  # '$' is 0x02, not 0x24 (that is '¤')
        ("¤", b"\x24"),
        ("_", b"\x11"),  # '_' is 0x11
        ("§¿à", b"\x5f\x60\x7f"),  # 0x5F '§', 0x60 '¿', 0x7F 'à'
        (
            "^{}\\[~]|\f",
            b"\x1b\x14\x1b\x28\x1b\x29\x1b\x2f\x1b\x3c\x1b\x3d\x1b\x3e\x1b\x40\x1b\x0a",
        ),
        ("a\nb\rc", b"\x61\x0a\x62\x0d\x63"),
    ],
)
def test_gsm_encode_decode(text, octets):
    assert encode_gsm(text) == octets
    assert decode_gsm(octets) == text


def test_encode_gsm_refuses_text_outside_the_alphabet_and_names_the_char():
    with pytest.raises(ValueError, match=r"U\+0060"):
        encode_gsm("a`b")


@pytest.mark.parametrize(
    "octets, text",
    [
        (b"\x1b\x41", "A"),  # undefined extension code: show the basic-table character
        (b"\x41\x1b", "A "),  # trailing ESC: a space
        (b"\x1b\x1b\x41", " A"),  # ESC ESC: a space
        (b"\x41\x80\xff", "A\ufffd\ufffd"),  # octets above 0x7F are not septets
    ],
)
def test_decode_gsm_never_raises_on_garbage(octets, text):
    assert decode_gsm(octets) == text


def test_ucs2_is_utf16_be_with_surrogate_pairs():
    assert encode_ucs2("Ж") == b"\x04\x16"  # U+0416
    assert encode_ucs2("\U0001f600") == b"\xd8\x3d\xde\x00"  # high D83D, low DE00
    assert decode_ucs2(b"\xd8\x3d\xde\x00\x04\x16") == "\U0001f600Ж"


@pytest.mark.parametrize(
    "octets, text",
    [
        (b"\x04\x16\x00", "Ж\ufffd"),  # odd trailing byte
        (b"\xd8\x3d\x00\x41", "\ufffdA"),  # high surrogate without its low half
        (b"\xde\x00", "\ufffd"),  # lone low surrogate
    ],
)
def test_decode_ucs2_replaces_garbage(octets, text):
    assert decode_ucs2(octets) == text
    assert decode(octets, 0x08) == text


@pytest.mark.parametrize(
    "octets, data_coding, text",
    [
        (b"\x00\x1b\x65", 0x00, "@€"),  # GSM default alphabet
        (b"Hello", 0x01, "Hello"),  # IA5 / ASCII
        (b"Hi\xff", 0x01, "Hi\ufffd"),  # not ASCII: replaced
        (b"caf\xe9", 0x03, "café"),  # Latin-1
        (b"\x00\xff\x10", 0x02, "\x00\xff\x10"),  # binary: one char per byte
        (b"\x00\xff\x10", 0x04, "\x00\xff\x10"),
        (b"\x04\x16", 0x08, "Ж"),  # UCS-2
        (b"\xb4", 0x06, "Д"),  # ISO-8859-5 Cyrillic
        (b"\x00\x41", 0xF0, "@A"),  # message class group, GSM alphabet
        (b"\x00\x41", 0xF4, "\x00A"),  # message class group, 8-bit
        (b"\x04\x16", 0x18, "Ж"),  # general group, UCS-2 (bits 3-2 = 10)
        (b"\xe9", 0x7B, "é"),  # reserved: Latin-1
    ],
)
def test_decode_by_data_coding(octets, data_coding, text):
    assert decode(octets, data_coding) == text
