"""Pure parts of the storage layer: ids, numbers, money formatting, stream entries."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bridge.accept.numbers import normalise, split_numbers, to_e164
from bridge.errors import InvalidInput
from bridge.ids import IdGenerator, timestamp_ms
from bridge.redis import outbox
from bridge.storage.ledger import money_str, parse_amount


def test_ids_are_26_crockford_chars_time_ordered_and_unique():
    now = [1_700_000_000.000]
    gen = IdGenerator(clock=lambda: now[0])
    first = [gen.new() for _ in range(50)]
    block = gen.many(1000)
    now[0] += 0.001
    later = gen.new()
    every = first + block + [later]
    assert all(len(i) == 26 and set(i) <= set("0123456789ABCDEFGHJKMNPQRSTVWXYZ") for i in every)
    assert every == sorted(every) and len(set(every)) == len(every)
    assert timestamp_ms(first[0]) == 1_700_000_000_000
    assert timestamp_ms(later) == 1_700_000_000_001


def test_ids_are_deterministic_with_injected_randomness():
    def make():
        return IdGenerator(clock=lambda: 1_700_000_000.5, randbytes=lambda n: b"\x00" * n)

    assert make().many(3) == make().many(3)
    assert make().new() == "01HF7YATFM" + "0" * 16  # 1_700_000_000_500 ms, zero randomness


def test_ids_clock_going_backwards_never_breaks_order():
    now = [1_700_000_000.0]
    gen = IdGenerator(clock=lambda: now[0])
    a = gen.new()
    now[0] -= 5
    assert gen.new() > a


@pytest.mark.parametrize(
    "raw", ["0701234567", "+254701234567", "254701234567", "0701 234 567", "(070) 123-4567"]
)
def test_one_kenyan_mobile_in_its_usual_spellings(raw):
    assert to_e164(raw, "KE") == "+254701234567"


@pytest.mark.parametrize(
    "raw",
    [
        "0201234567",  # Nairobi landline
        "+442071838750",  # London landline
        "12",
        "abc",
        "+2547012345678",
        "07012345678901234567890123456789012345678901",
        "'; DROP TABLE messages; --",
    ],
)
def test_landlines_and_garbage_are_not_mobiles(raw):
    assert to_e164(raw, "KE") is None


def test_foreign_mobiles_need_their_country_code():
    assert to_e164("+447911123456", "KE") == "+447911123456"
    assert to_e164("07911123456", "GB") == "+447911123456"


def test_split_and_normalise_collapse_duplicates_and_keep_raw_invalid():
    raw = split_numbers(" 0701234567 ,+254701234567,, 254701234567 , 0201234567,0711111111")
    assert raw == ["0701234567", "+254701234567", "254701234567", "0201234567", "0711111111"]
    result = normalise(raw, "KE")
    assert result.numbers == ["+254701234567", "+254711111111"]
    assert result.invalid == ["0201234567"]
    assert split_numbers(["0701234567", " ", 254701234567]) == ["0701234567", "254701234567"]
    assert split_numbers(None) == [] and split_numbers(" , ") == []
    assert split_numbers(254701234567) == ["254701234567"]


@pytest.mark.parametrize(
    "amount, text",
    [
        ("99.2", "99.20"),
        ("0.8000", "0.80"),
        ("0", "0.00"),
        ("0.125", "0.125"),
        ("1000000", "1000000.00"),
        ("-2.4", "-2.40"),
        ("0.00001", "0.00"),
    ],
)
def test_money_str_has_two_or_more_decimals(amount, text):
    assert money_str(Decimal(amount)) == text


@pytest.mark.parametrize(
    "raw, message",
    [
        ("abc", "amount must be a number like 100 or 99.50, got 'abc'."),
        ("-5", "amount must be greater than zero, got '-5'."),
        ("0", "amount must be greater than zero, got '0'."),
        ("1.00001", "amount has more than 4 decimals: '1.00001'."),
        ("100000000000000", "amount is too large: '100000000000000'."),
        ("1e3", "amount must be a number like 100 or 99.50 written in plain digits"),
        ("1E-2", "amount must be a number like 100 or 99.50 written in plain digits"),
        ("NaN", "amount must be a number like 100 or 99.50 written in plain digits"),
        ("-inf", "amount must be a number like 100 or 99.50 written in plain digits"),
        ("1_000", "amount must be a number like 100 or 99.50 written in plain digits"),
        ("\u0661\u0662", "amount must be a number like 100 or 99.50 written in plain digits"),
        (".5", "amount must be a number like 100 or 99.50 written in plain digits"),
        ("1.", "amount must be a number like 100 or 99.50 written in plain digits"),
    ],
)
def test_parse_amount_refuses_with_a_sentence(raw, message):
    with pytest.raises(InvalidInput) as err:
        parse_amount(raw)
    assert err.value.message.startswith(message)


def test_parse_amount_accepts_plain_decimals():
    assert parse_amount(" 99.50 ") == Decimal("99.50")
    assert parse_amount("0", allow_zero=True) == 0


def test_stream_entry_round_trip_through_bytes():
    msg = outbox.OutboundMessage(
        "01HF7YAT31",
        "01HF7YAT30",
        7,
        "+254701234567",
        "ACME",
        "héllo, 'x'; --",
        "ucs2",
        2,
        Decimal("1.60"),
        1_900_000_123.25,
    )
    fields = outbox.encode_entry(msg)
    as_bytes = {k.encode(): v.encode("utf-8") for k, v in fields.items()}
    assert outbox.decode_entry(as_bytes) == msg
    assert outbox.decode_entry(fields) == msg


def test_decode_entry_refuses_foreign_entries():
    with pytest.raises(ValueError, match="version"):
        outbox.decode_entry({b"v": b"99"})
    with pytest.raises(ValueError, match="lacks field 'm'"):
        outbox.decode_entry({"v": "1"})
    with pytest.raises(ValueError, match="lacks field 'text'"):
        outbox.decode_entry(
            {
                "v": "1",
                "m": '{"message_id": "x", "batch_id": "y",'
                ' "account_id": 1, "destination": "+1", "sender_id": "s"}',
            }
        )
    with pytest.raises(ValueError, match="not a message"):
        outbox.decode_entry({"v": "1", "m": "{not json"})


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="0123456789 +-()", max_size=20))
def test_normalising_is_idempotent_and_yields_e164(raw):
    e164 = to_e164(raw, "KE")
    if e164 is not None:
        assert e164.startswith("+") and e164[1:].isdigit() and len(e164) <= 16
        assert to_e164(e164, "KE") == e164


@settings(max_examples=200, deadline=None)
@given(st.decimals(min_value=-(10**9), max_value=10**9, allow_nan=False, places=4))
def test_money_str_round_trips_exactly(amount):
    text = money_str(amount)
    assert Decimal(text) == amount and len(text.split(".")[1]) >= 2
