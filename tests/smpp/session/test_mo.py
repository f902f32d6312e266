"""MO reassembly (smpp.session.mo): parts from the codec's own splitter, fed in every order."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smpp.codec import build_submit_parts
from smpp.session.mo import Reassembler

LONG_GSM = "Ünïcode-free but long: " + "0123456789{}[]~€ " * 20
LONG_UCS2 = "Привет 👋🏽 " * 40  # surrogate pairs and combining emoji across part borders


def _feed(reassembler, parts, now=0.0, source="491700000001", dest="12345"):
    done = []
    for part in parts:
        tlvs = dict(part.tlvs)
        message = part.short_message or tlvs.get(0x0424, b"")
        whole = reassembler.add(source, dest, message, part.esm_class, part.data_coding, tlvs, now)
        if whole is not None:
            done.append(whole)
    return done


@pytest.mark.parametrize("method", ["udh", "udh16", "sar", "payload"])
@pytest.mark.parametrize("text", [LONG_GSM, LONG_UCS2, "short"])
def test_parts_in_any_order_with_duplicates_give_the_text_once(method, text):
    """A single-part message has no reference, so a resent one cannot be told from a new
    one; parts of a concatenated one can."""
    parts = build_submit_parts(text, method=method, ref=300)
    shuffled = list(parts)
    random.Random(len(text)).shuffle(shuffled)
    if len(parts) > 1:  # a resent part (lost deliver_sm_resp) before the group completes
        shuffled.insert(1, shuffled[0])
    reassembler = Reassembler(timeout=60)
    done = _feed(reassembler, shuffled)
    assert [m.text for m in done] == [text]
    assert done[0].parts == len(parts)
    assert reassembler.pending == 0


@settings(max_examples=40, deadline=None)
@given(st.text(min_size=1, max_size=700), st.integers(0, 65535), st.randoms())
def test_any_text_survives_split_shuffle_reassemble(text, ref, rng):
    parts = build_submit_parts(text, method="udh16", ref=ref)
    rng.shuffle(parts)
    assert [m.text for m in _feed(Reassembler(timeout=60), parts)] == [text]


def test_interleaved_messages_from_two_handsets_stay_apart():
    a = build_submit_parts(LONG_GSM, method="udh", ref=5)
    b = build_submit_parts(LONG_UCS2, method="udh", ref=5)  # same ref, other source
    reassembler = Reassembler(timeout=60)
    done = []
    for pa, pb in zip(a, b, strict=False):
        done += _feed(reassembler, [pa], source="a")
        done += _feed(reassembler, [pb], source="b")
    done += _feed(reassembler, a[len(b) :], source="a") + _feed(
        reassembler, b[len(a) :], source="b"
    )
    assert sorted((m.source, m.text) for m in done) == [("a", LONG_GSM), ("b", LONG_UCS2)]


def test_incomplete_group_expires_and_is_counted():
    parts = build_submit_parts(LONG_GSM, method="sar", ref=9)
    reassembler = Reassembler(timeout=30)
    assert _feed(reassembler, parts[:-1], now=100.0) == []
    assert reassembler.next_expiry() == 130.0
    assert reassembler.expire(129.9) == 0
    assert reassembler.expire(130.0) == 1
    assert (reassembler.pending, reassembler.expired) == (0, 1)
    # The late last part starts a new group that can never complete on its own.
    assert _feed(reassembler, parts[-1:], now=131.0) == []


def test_undo_last_lets_a_resent_final_part_complete_again():
    parts = build_submit_parts(LONG_GSM, method="udh", ref=1)
    reassembler = Reassembler(timeout=60)
    assert len(_feed(reassembler, parts)) == 1
    reassembler.undo_last()  # the callback failed; the SMSC will resend the last part
    assert [m.text for m in _feed(reassembler, parts[-1:])] == [LONG_GSM]


def test_group_limit_drops_the_oldest():
    reassembler = Reassembler(timeout=60, max_groups=2)
    for ref in range(3):
        _feed(reassembler, build_submit_parts(LONG_GSM, method="udh", ref=ref)[:1], now=ref)
    assert (reassembler.pending, reassembler.expired) == (2, 1)
