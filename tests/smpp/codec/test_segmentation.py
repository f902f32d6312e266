"""Segmentation boundaries: encoding choice, single vs multipart sizes, never cutting a pair."""

from __future__ import annotations

import pytest

from smpp.codec import GSM, UCS2, count_parts, segment, septet_count, ucs2_units

EURO = "€"  # GSM extension table: ESC 0x65, two septets
EMOJI = "\U0001f600"  # outside the BMP: a surrogate pair, two UTF-16 code units
UCS_CHAR = "Ж"  # not in GSM 03.38, one UTF-16 code unit


def _check(text, encoding, sizes, cap_single=None):
    seg = segment(text)
    assert seg.encoding == encoding
    assert seg.data_coding == (0x00 if encoding == GSM else 0x08)
    assert "".join(seg.texts) == text
    units = septet_count if encoding == GSM else ucs2_units
    assert [units(t) for t in seg.texts] == sizes
    assert seg.parts == len(sizes)
    assert count_parts(text) == (encoding, len(sizes))


def test_empty_text_is_one_empty_gsm_part():
    seg = segment("")
    assert (seg.encoding, seg.texts, seg.parts) == (GSM, ("",), 1)
    assert count_parts("") == (GSM, 1)


@pytest.mark.parametrize(
    "n, sizes",
    [
        (160, [160]),
        (161, [153, 8]),
        (153 * 2, [153, 153]),
        (153 * 2 + 1, [153, 153, 1]),
    ],
)
def test_gsm_boundaries(n, sizes):
    _check("a" * n, GSM, sizes)


def test_gsm_extension_chars_count_two_septets():
    _check(EURO * 80, GSM, [160])
    _check(EURO * 80 + "a", GSM, [152, 9])  # 76 euros = 152 septets (a 77th: 154); 4 euros + "a"


def test_extension_char_on_153rd_septet_moves_to_next_part():
    text = "a" * 152 + EURO + "b" * 10  # the euro's ESC would be septet 153, its code 154
    seg = segment(text)
    assert seg.texts[0] == "a" * 152
    assert seg.texts[1] == EURO + "b" * 10
    _check(text, GSM, [152, 12])


@pytest.mark.parametrize(
    "n, sizes",
    [
        (70, [70]),
        (71, [67, 4]),
        (67 * 2, [67, 67]),
        (67 * 3 + 1, [67, 67, 67, 1]),
    ],
)
def test_ucs2_boundaries(n, sizes):
    _check(UCS_CHAR * n, UCS2, sizes)


def test_one_non_gsm_char_makes_the_whole_text_ucs2():
    _check("a" * 69 + UCS_CHAR, UCS2, [70])
    _check("a" * 150 + UCS_CHAR, UCS2, [67, 67, 17])


def test_emoji_on_67th_code_unit_moves_to_next_part():
    text = UCS_CHAR * 66 + EMOJI + UCS_CHAR * 5  # the pair would be units 67 and 68
    seg = segment(text)
    assert seg.texts[0] == UCS_CHAR * 66
    assert seg.texts[1] == EMOJI + UCS_CHAR * 5
    _check(text, UCS2, [66, 7])


def test_emojis_fill_a_single_message_exactly():
    _check(EMOJI * 35, UCS2, [70])
    _check(EMOJI * 36, UCS2, [66, 6])  # 33 pairs = 66 units per part; a 34th would be 68


def test_udh16_capacity_is_152_septets_and_66_code_units():
    assert [len(t) for t in segment("a" * 305, udh_length=7).texts] == [152, 152, 1]
    assert [len(t) for t in segment(UCS_CHAR * 133, udh_length=7).texts] == [66, 66, 1]
    assert count_parts("a" * 305, udh_length=7) == (GSM, 3)
    assert count_parts("a" * 305) == (GSM, 2)


def test_gsm_specials_stay_gsm_and_lookalikes_do_not():
    assert segment("@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ ¤¡ÄÖÑÜ§¿äöñüà").encoding == GSM
    for ch in ("`", "ç", "á", "\x1b", "\t", "\x00"):
        assert segment("abc" + ch).encoding == UCS2, ch
