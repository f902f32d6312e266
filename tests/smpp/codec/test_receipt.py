"""Delivery receipt parsing: literal receipts as SMSCs send them, TLVs, every stat value."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta, timezone

import pytest

from smpp.codec import receipt
from smpp.codec.receipt import (
    FINAL_STATES,
    STATES,
    Receipt,
    parse_receipt,
    parse_receipt_date,
    parse_receipt_text,
)

# receipted_message_id (C-octet string), message_state, network_error_code
RMID, MSTATE, NETERR = 0x001E, 0x0427, 0x0423


def test_spec_receipt_with_10_digit_dates():
    text = (
        "id:0123456789 sub:001 dlvrd:001 submit date:2406011200 done date:2406011201 "
        "stat:DELIVRD err:000 text:Hello world"
    )
    assert parse_receipt(text.encode()) == Receipt(
        message_id="0123456789",
        stat="DELIVRD",
        state="delivered",
        final=True,
        err="000",
        sub="001",
        dlvrd="001",
        submit_date=datetime(2024, 6, 1, 12, 0),
        done_date=datetime(2024, 6, 1, 12, 1),
        text="Hello world",
    )


def test_uuid_id_12_digit_dates_and_empty_text():
    r = parse_receipt(
        b"id:7220c1f9-1a7e-4b2e-9d0e-56a1e1c7f2a3 sub:001 dlvrd:000 "
        b"submit date:240601120005 done date:240601120107 stat:UNDELIV err:001 text:"
    )
    assert r is not None
    assert (r.message_id, r.stat, r.state, r.final, r.err, r.text) == (
        "7220c1f9-1a7e-4b2e-9d0e-56a1e1c7f2a3",
        "UNDELIV",
        "undelivered",
        True,
        "001",
        "",
    )
    assert (r.submit_date, r.done_date) == (
        datetime(2024, 6, 1, 12, 0, 5),
        datetime(2024, 6, 1, 12, 1, 7),
    )


def test_upper_case_keys_extra_spaces_lower_case_stat_and_colons_in_text():
    r = parse_receipt(
        "ID:1A2B3C  SUB:001   DLVRD:000 SUBMIT DATE:2406011200  Done Date:2406011201"
        " STAT:expired ERR:0 Text:meet at 10:30: ok? stat:DELIVRD"
    )
    assert r is not None
    assert (r.message_id, r.stat, r.state, r.err, r.sub, r.dlvrd) == (
        "1A2B3C",
        "EXPIRED",
        "expired",
        "0",
        "001",
        "000",
    )
    assert r.text == "meet at 10:30: ok? stat:DELIVRD"  # text is last and holds anything
    assert r.done_date == datetime(2024, 6, 1, 12, 1)


def test_missing_fields_and_underscore_date_keys():
    r = parse_receipt(b"id:42 submit_date:2406011200 done_date:2406011201 stat:REJECTD")
    assert r is not None
    assert (r.message_id, r.state, r.final, r.err, r.sub, r.dlvrd, r.text) == (
        "42",
        "rejected",
        True,
        None,
        None,
        None,
        None,
    )
    assert r.submit_date == datetime(2024, 6, 1, 12, 0)


def test_tlv_only_receipt():
    r = parse_receipt(b"", {RMID: b"1A2B3C\x00", MSTATE: b"\x02", NETERR: b"\x03\x00\x01"})
    assert r is not None
    assert (r.message_id, r.stat, r.state, r.final) == ("1A2B3C", "DELIVRD", "delivered", True)
    assert (r.message_state, r.network_error) == (2, b"\x03\x00\x01")
    assert r.err is None and r.submit_date is None


def test_tlv_id_and_state_override_the_text():
    text = b"id:1715004 sub:001 dlvrd:001 submit date:2406011200 done date:2406011201 stat:DELIVRD"
    r = parse_receipt(text, {RMID: b"1A2B3C\x00", MSTATE: 5})  # 5 = UNDELIVERABLE
    assert r is not None
    assert (r.message_id, r.stat, r.state, r.message_state) == (
        "1A2B3C",
        "UNDELIV",
        "undelivered",
        5,
    )
    assert r.submit_date == datetime(2024, 6, 1, 12, 0)  # the rest still comes from the text


def test_tlv_values_as_str_as_smpplib_hands_them_over():
    r = parse_receipt("stat:DELIVRD", {RMID: "abc\x00"})
    assert r is not None
    assert (r.message_id, r.stat) == ("abc", "DELIVRD")


@pytest.mark.parametrize(
    "body, tlvs",
    [
        (b"", {}),
        (b"Hello, see you at 10:30", {}),
        (b"id:12345", {}),  # an id but no state
        (b"stat:DELIVRD err:000", {}),  # a state but no id
        (b"", {MSTATE: b"\x02"}),  # TLV state without any id
        (b"", {RMID: b"\x00"}),  # empty id
    ],
)
def test_not_a_receipt(body, tlvs):
    assert parse_receipt(body, tlvs) is None


@pytest.mark.parametrize(
    "stat, state, final",
    [
        ("DELIVRD", "delivered", True),
        ("UNDELIV", "undelivered", True),
        ("EXPIRED", "expired", True),
        ("DELETED", "undelivered", True),
        ("REJECTD", "rejected", True),
        ("ENROUTE", "enroute", False),
        ("ACCEPTD", "accepted", False),
        ("UNKNOWN", "unknown", False),
        ("DELIVERED", "delivered", True),
        ("undeliverable", "undelivered", True),
        ("REJECTED", "rejected", True),
        ("ACCEPTED", "accepted", False),
        ("WEIRD", "unknown", False),  # unrecognised: not final
    ],
)
def test_every_stat_value(stat, state, final):
    r = parse_receipt(f"id:1 stat:{stat} err:000".encode())
    assert r is not None
    assert (r.state, r.final) == (state, final)


@pytest.mark.parametrize(
    "value, stat",
    [
        (1, "ENROUTE"),
        (2, "DELIVRD"),
        (3, "EXPIRED"),
        (4, "DELETED"),
        (5, "UNDELIV"),
        (6, "ACCEPTD"),
        (7, "UNKNOWN"),
        (8, "REJECTD"),
    ],
)
def test_every_message_state_tlv(value, stat):
    r = parse_receipt(b"", {RMID: b"x\x00", MSTATE: bytes((value,))})
    assert r is not None
    assert (r.stat, r.state, r.final) == (stat, *STATES[stat])


def test_final_states_are_our_settling_states():
    assert FINAL_STATES == {"delivered", "undelivered", "expired", "rejected"}


def test_ucs2_body_detected_or_decoded_by_data_coding():
    body = "id:77 stat:DELIVRD text:Привет".encode("utf-16-be")
    detected, decoded = parse_receipt(body), parse_receipt(body, data_coding=8)
    assert detected is not None and decoded is not None
    assert detected.text == "Привет"
    assert decoded.message_id == "77"


def test_gsm_body_by_data_coding():
    body = b"id:5 stat:DELIVRD text:a\x00b"  # GSM '@' is septet 0x00
    r = parse_receipt(body, data_coding=0)
    assert r is not None
    assert r.text == "a@b"


def test_dates_with_tz_are_aware():
    zone = timezone(timedelta(hours=3))
    r = parse_receipt("id:1 submit date:2406011200 stat:DELIVRD", tz=zone)
    assert r is not None
    assert r.submit_date == datetime(2024, 6, 1, 9, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    "value, expected",
    [
        ("2406011200", datetime(2024, 6, 1, 12, 0)),
        ("240601120059", datetime(2024, 6, 1, 12, 0, 59)),
        ("20240601120059", datetime(2024, 6, 1, 12, 0, 59)),
        ("2413011200", None),  # month 13
        ("2402301200", None),  # 30 February
        ("24060112", None),  # too short
        ("", None),
        (None, None),
        ("24060112OO", None),
    ],
)
def test_parse_receipt_date(value, expected):
    assert parse_receipt_date(value) == expected


def test_parse_receipt_text_keys():
    assert parse_receipt_text(
        "id:a sub:1 dlvrd:2 submit date:3 done date:4 stat:S err:5 text:t: u"
    ) == {
        "id": "a",
        "sub": "1",
        "dlvrd": "2",
        "submit_date": "3",
        "done_date": "4",
        "stat": "S",
        "err": "5",
        "text": "t: u",
    }
    assert parse_receipt_text("noid:1 valid:2") == {}  # keys must start a word
    assert parse_receipt_text("id:1 id:2 stat:X") == {"id": "1", "stat": "X"}


def test_ascii_texts_are_read_as_the_key_regex_reads_them():
    """The colon-by-colon reading of ASCII texts finds exactly the keys (and ends) _KEY_RE
    finds: 50,000 texts of key words, their neighbours, whitespace and colons."""
    tokens = [
        *("id", "ID", "sub", "dlvrd", "stat", "err", "text", "Text", "xid", "date", "_", "-"),
        *("submit date", "submit_date", "submitdate", "Submit Date", "done  date", "done_date"),
        *(":", " ", "  ", "\t", "\x1c", "\n", "abc", "123", "DELIVRD", "id:", " : "),
    ]
    rng = random.Random(13)
    for _ in range(50_000):
        text = "".join(rng.choice(tokens) for _ in range(rng.randrange(0, 14)))
        by_regex = [(m.start(), m.end()) for m in receipt._KEY_RE.finditer(text)]
        assert [(start, end) for start, end, _name in receipt._keys(text)] == by_regex, text
