"""Property tests: the receipt parser never raises, and recovers well-formed receipts."""

from __future__ import annotations

from datetime import datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from smpp.codec.receipt import STATES, Receipt, canonical_id, id_forms, parse_receipt

PROFILE = settings(max_examples=200, deadline=None)

tlv_values = st.one_of(
    st.binary(max_size=12), st.text(max_size=12), st.integers(-2, 300), st.none()
)
tlv_maps = st.dictionaries(
    st.sampled_from([0x001E, 0x0423, 0x0427, 0x0424]), tlv_values, max_size=4
)
receiptish = st.lists(
    st.one_of(
        st.sampled_from(
            [
                "id:",
                "stat:",
                "text:",
                "submit date:",
                "done date:",
                "err:",
                " ",
                "DELIVRD",
                "99999999999999",
                "\x00",
            ]
        ),
        st.text(max_size=8),
    ),
    max_size=12,
).map("".join)


@PROFILE
@given(
    st.one_of(st.text(), st.binary(), receiptish, receiptish.map(str.encode)),
    tlv_maps,
    st.one_of(st.none(), st.integers(0, 255)),
)
def test_parse_receipt_never_raises(body, tlvs, data_coding):
    result = parse_receipt(body, tlvs, data_coding=data_coding)
    assert result is None or (isinstance(result, Receipt) and result.message_id)


ids = st.one_of(
    st.integers(0, 2**64).map(str),
    st.integers(0, 2**64).map(lambda n: format(n, "X")),
    st.uuids().map(str),
)
dates = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2099, 12, 31))


@PROFILE
@given(
    ids,
    st.sampled_from(sorted(STATES)),
    st.integers(0, 999),
    st.integers(0, 999),
    dates,
    dates,
    st.booleans(),
    st.text(alphabet="0123456789", min_size=1, max_size=3),
    st.text(max_size=40),
    st.sampled_from([str.lower, str.upper, str.title]),
)
def test_round_trip_of_generated_receipts(
    message_id, stat, sub, dlvrd, submitted, done, seconds, err, text, key_case
):
    fmt = "%y%m%d%H%M%S" if seconds else "%y%m%d%H%M"
    keys = [
        key_case(k)
        for k in ("id", "sub", "dlvrd", "submit date", "done date", "stat", "err", "text")
    ]
    values = [
        message_id,
        f"{sub:03d}",
        f"{dlvrd:03d}",
        submitted.strftime(fmt),
        done.strftime(fmt),
        stat,
        err,
        text,
    ]
    body = " ".join(f"{k}:{v}" for k, v in zip(keys, values, strict=True))
    r = parse_receipt(body)
    assert r is not None
    trunc = (
        (lambda d: d.replace(microsecond=0))
        if seconds
        else (lambda d: d.replace(second=0, microsecond=0))
    )
    assert (r.message_id, r.stat, r.sub, r.dlvrd, r.err) == (
        message_id,
        stat,
        f"{sub:03d}",
        f"{dlvrd:03d}",
        err,
    )
    assert (r.state, r.final) == STATES[stat]
    assert (r.submit_date, r.done_date) == (trunc(submitted), trunc(done))
    assert r.text == text.strip()


@PROFILE
@given(st.integers(0, 2**64), st.integers(0, 6))
def test_hex_and_decimal_spellings_of_one_number_always_match(number, zeros):
    resp, receipt = "0" * zeros + format(number, "X"), str(number)
    assert id_forms(resp) & id_forms(receipt)
    assert canonical_id(resp, "hex") == canonical_id(receipt, "dec")


@PROFILE
@given(st.text(max_size=80), st.sampled_from(["str", "dec", "hex"]))
def test_id_helpers_never_raise(message_id, form):
    assert isinstance(id_forms(message_id), frozenset)
    assert isinstance(canonical_id(message_id, form), str)
