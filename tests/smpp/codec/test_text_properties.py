"""Property tests: any text survives segmentation, concatenation and decoding unchanged."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from smpp.codec import (
    GSM,
    METHODS,
    build_submit_parts,
    capacity,
    count_parts,
    decode,
    decode_gsm,
    encode_gsm,
    parse_concat,
    segment,
    septet_count,
    ucs2_units,
)
from smpp.codec.gsm import BASIC_TABLE, EXTENSION_TABLE

GSM_ALPHABET = "".join(ch for ch in BASIC_TABLE if ch != "\x1b") + "".join(EXTENSION_TABLE)
# Mostly GSM (so long multipart GSM texts with extension characters are common), some emoji
# and non-GSM BMP characters, and any Unicode text at all.
gsm_text = st.text(alphabet=GSM_ALPHABET, max_size=700)
mixed_text = st.text(
    alphabet=st.one_of(st.sampled_from(GSM_ALPHABET), st.sampled_from("Ж€😀🇰🇪\U00010348ç")),
    max_size=400,
)
texts = st.one_of(gsm_text, mixed_text, st.text(max_size=400))

PROFILE = settings(max_examples=150, deadline=None)


def _units(text, encoding):
    return septet_count(text) if encoding == GSM else ucs2_units(text)


@PROFILE
@given(texts, st.sampled_from([6, 7]))
def test_parts_join_back_and_fit_their_capacity(text, udh_length):
    seg = segment(text, udh_length=udh_length)
    assert "".join(seg.texts) == text
    assert seg.parts >= 1
    if seg.parts == 1:
        assert _units(text, seg.encoding) <= capacity(seg.encoding)
    else:
        assert _units(text, seg.encoding) > capacity(seg.encoding)
        cap = capacity(seg.encoding, udh_length)
        assert all(0 < _units(t, seg.encoding) <= cap for t in seg.texts)
        # greedy: each part but the last is full up to one two-unit character
        assert all(_units(t, seg.encoding) >= cap - 1 for t in seg.texts[:-1])


def _reference_split(text, encoding, cap):
    """The obvious per-character greedy split, as an oracle for the optimised one."""
    parts, current, used = [], "", 0
    for ch in text:
        cost = _units(ch, encoding)
        if used + cost > cap:
            parts.append(current)
            current, used = "", 0
        current += ch
        used += cost
    return tuple(parts + [current])


@PROFILE
@given(texts, st.sampled_from([6, 7]))
def test_segment_matches_the_per_character_oracle(text, udh_length):
    seg = segment(text, udh_length=udh_length)
    if _units(text, seg.encoding) > capacity(seg.encoding):
        assert seg.texts == _reference_split(text, seg.encoding, capacity(seg.encoding, udh_length))


@PROFILE
@given(texts, st.sampled_from([6, 7]))
def test_count_parts_agrees_with_segment(text, udh_length):
    seg = segment(text, udh_length=udh_length)
    assert count_parts(text, udh_length=udh_length) == (seg.encoding, seg.parts)


@PROFILE
@given(texts, st.sampled_from(METHODS), st.integers(0, 0xFFFF))
def test_submit_parts_decode_back_to_the_text(text, method, ref):
    parts = build_submit_parts(text, method=method, ref=ref)
    assert [p.part for p in parts] == list(range(1, len(parts) + 1))
    assert all(p.total == len(parts) for p in parts)
    decoded = []
    for p in parts:
        tlvs = dict(p.tlvs)
        info, payload = parse_concat(p.short_message, p.esm_class, tlvs)
        if method == "payload":
            payload = tlvs[0x0424]
        assert (info is None) == (len(parts) == 1)
        if info is not None:
            assert (info.total, info.seq) == (p.total, p.part)
            assert info.ref == ref & (0xFF if method == "udh" else 0xFFFF)
        assert len(p.short_message) <= 254  # SMPP short_message limit
        decoded.append(decode(payload, p.data_coding))
    assert "".join(decoded) == text


@PROFILE
@given(gsm_text)
def test_gsm_round_trip(text):
    assert decode_gsm(encode_gsm(text)) == text
    assert len(encode_gsm(text)) == septet_count(text)


@PROFILE
@given(st.binary(max_size=300), st.integers(0, 0xFF))
def test_decode_never_raises(data, data_coding):
    assert isinstance(decode(data, data_coding), str)


@PROFILE
@given(
    st.binary(max_size=300),
    st.integers(0, 0xFF),
    st.dictionaries(
        st.sampled_from([0x020C, 0x020E, 0x020F, 0x0424]),
        st.one_of(st.binary(max_size=4), st.integers(0, 0xFFFF)),
        max_size=4,
    ),
)
def test_parse_concat_never_raises(data, esm_class, tlvs):
    info, payload = parse_concat(data, esm_class, tlvs)
    assert data.endswith(payload)
    assert info is None or 1 <= info.seq <= info.total
