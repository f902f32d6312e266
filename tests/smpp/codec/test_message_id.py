"""Message-id normalisation: hex/decimal/leading zeros/case, and the documented ambiguity."""

from __future__ import annotations

import pytest

from smpp.codec.receipt import canonical_id, id_forms


@pytest.mark.parametrize(
    "resp_id, receipt_id",
    [
        ("1A2B3C", "1715004"),  # hex in submit_sm_resp, decimal in the receipt
        ("1715004", "1a2b3c"),  # and the other way round
        ("0001A2B3C", "1a2b3c"),  # leading zeros, case
        ("00042", "42"),
        ("7220C1F9-1A7E", "7220c1f9-1a7e"),  # opaque ids: case only
        ("abc\x00", " ABC "),  # C-octet NUL, whitespace
    ],
)
def test_the_two_forms_of_one_id_intersect(resp_id, receipt_id):
    assert id_forms(resp_id) & id_forms(receipt_id)


def test_id_forms_contents():
    assert id_forms("1A2B3C") == {"1a2b3c", "1715004"}
    assert id_forms("1715004") == {"1715004", "1a2b3c", str(0x1715004)}
    assert id_forms("uuid-like-Id") == {"uuid-like-id"}
    assert id_forms("000") == {"0"}
    assert id_forms("") == frozenset() and id_forms("\x00") == frozenset()


def test_different_ids_do_not_intersect_in_the_usual_case():
    assert not id_forms("1A2B3C") & id_forms("1715005")
    assert not id_forms("abc-1") & id_forms("abc-2")


def test_documented_ambiguity_all_digit_ids_can_collide():
    assert id_forms("10") & id_forms("16")  # "10" as hex is 16: why canonical_id exists


def test_canonical_id_maps_both_sides_to_one_key():
    assert canonical_id("1A2B3C", "hex") == canonical_id("1715004", "dec") == "1715004"
    assert canonical_id("0042", "dec") == "42"
    assert canonical_id("ABC-Def", "str") == "abc-def"
    assert canonical_id("0042", "str") == "0042"
    assert canonical_id("10", "dec") != canonical_id("16", "dec")  # no ambiguity here


def test_canonical_id_falls_back_to_str_and_rejects_unknown_forms():
    assert canonical_id("not-hex", "hex") == "not-hex"
    assert canonical_id("1A", "dec") == "1a"
    with pytest.raises(ValueError, match="use one of"):
        canonical_id("1", "octal")


def test_huge_ids_do_not_hit_the_int_conversion_limit():
    big = "9" * 5000
    assert id_forms(big) == {big}
    assert canonical_id(big, "dec") == big
