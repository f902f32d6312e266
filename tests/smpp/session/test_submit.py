"""Submitting through a session against the simulated SMSC: the window, timeouts, stop, the
rate cap, concatenation methods, bind modes and what happens to work while there is no bind."""

from __future__ import annotations

import time

import pytest

from smpp.codec import decode, parse_concat, pdu, status, tlv
from smpp.codec.smpp_time import absolute_time, parse_relative_time
from smpp.codec.status import ESME_RINVEXPIRY
from smpp.session.client import Session, SessionState, SubmitRequest
from smpp.session.submit import validity_field
from smpp.simulator import Latency, Silent
from tests.harness.procs import free_port, wait_until
from tests.smpp.session.conftest import session_config
from tests.smpp.session.scripted import scripted_session


def _requests(n: int, prefix: str = "4915550") -> list[SubmitRequest]:
    return [SubmitRequest("12345", f"{prefix}{i:04d}", b"message %d" % i, tag=i) for i in range(n)]


def _results(futures, timeout: float = 15.0):
    return [f.result(timeout=timeout) for f in futures]


def test_happy_path_every_submit_gets_its_own_id_and_the_smsc_got_each_once(sim, session):
    s, _ = session(sim.port, window=50)
    outcomes = _results([s.submit(r) for r in _requests(300)])
    assert {o.kind for o in outcomes} == {"ok"}
    assert [o.tag for o in outcomes] == list(range(300))
    by_id = {m.message_id: m for m in sim.messages}
    # Each future carries the id the SMSC issued for *that* PDU (matched by sequence number).
    assert [by_id[o.message_id].destination_addr for o in outcomes] == [
        f"4915550{i:04d}" for i in range(300)
    ]
    snap = s.snapshot()
    assert (snap.state, snap.counters.submitted, snap.counters.acked) == (
        SessionState.BOUND,
        300,
        300,
    )
    assert (snap.in_flight, snap.queued) == (0, 0)
    submits = sim.pdus("submit_sm")
    assert len({p["sequence"] for p in submits}) == 300
    body = submits[0]["body"]
    assert (
        body.source_addr_ton,
        body.source_addr_npi,
        body.dest_addr_ton,
        body.dest_addr_npi,
        body.registered_delivery,
    ) == (1, 1, 1, 1, 1)


def test_window_caps_in_flight_and_stop_resolves_the_rest(sim, session):
    sim.set_scenarios(Silent())  # never answers a submit
    s, _ = session(sim.port, window=3, response_timeout=30.0)
    futures = [s.submit(r) for r in _requests(5)]
    wait_until(lambda: len(sim.pdus("submit_sm")) == 3, message="3 submits at the SMSC")
    snap = s.snapshot()
    assert (snap.in_flight, snap.queued) == (3, 2)
    assert len(sim.pdus("submit_sm")) == 3  # the window held the other two back
    assert s.stop(timeout=1.0)
    outcomes = _results(futures, timeout=1)
    assert [(o.kind, o.written) for o in outcomes] == [("timeout", True)] * 3 + [
        ("not_sent", False)
    ] * 2
    assert len(sim.pdus("unbind")) == 1  # stopped gracefully
    assert s.state == SessionState.DOWN and s.snapshot().stopped
    late = s.submit(_requests(1)[0]).result(timeout=1)
    assert (late.kind, late.written) == ("not_sent", False)


@pytest.mark.parametrize("window", [1, 10])
def test_unanswered_submit_times_out_and_is_not_retried(sim, session, window):
    """At window 1 the next submit goes only once the timed-out one has freed its slot."""
    sim.set_scenarios(Silent(every=2))  # every 2nd submit is never answered
    s, _ = session(sim.port, window=window, response_timeout=0.3)
    outcomes = _results([s.submit(r) for r in _requests(6)])
    assert [o.kind for o in outcomes] == ["ok", "timeout"] * 3
    assert all(o.written for o in outcomes)
    assert "no submit_sm_resp within 0.3s" in outcomes[1].error
    assert len(sim.pdus("submit_sm")) == 6  # reported, never silently sent again
    assert s.snapshot().counters.timeouts == 3
    assert s.state == SessionState.BOUND


def test_latency_with_jitter_answers_out_of_order_and_each_matches(sim, session):
    sim.set_scenarios(Latency(ms=5, jitter_ms=30))
    s, _ = session(sim.port, window=20)
    outcomes = _results([s.submit(r) for r in _requests(100)])
    by_id = {m.message_id: m.destination_addr for m in sim.messages}
    assert [by_id[o.message_id] for o in outcomes] == [f"4915550{i:04d}" for i in range(100)]


def test_rate_cap_spaces_submits(sim, session):
    """A loose real-socket check (the ±3 % over 10 s property is tested on the limiter with an
    exact clock): 120 submits at tps=200 cannot all be written in less than ~0.5 s."""
    s, _ = session(sim.port, window=50, tps=200)
    start = time.monotonic()
    outcomes = _results([s.submit(r) for r in _requests(120)])
    elapsed = time.monotonic() - start
    assert {o.kind for o in outcomes} == {"ok"}
    burst = 10  # 50 ms worth at 200/s
    assert elapsed >= (120 - burst) / 200 * 0.97


@pytest.mark.parametrize("method", ["udh", "udh16", "sar", "payload"])
def test_long_texts_arrive_whole_with_each_concat_method(sim, session, method):
    s, _ = session(sim.port, concat_method=method)
    texts = ["Ünïcode-free but long: " + "0123456789{}[]~€ " * 12, "Привет 👋🏽 " * 30, "short"]
    futures = [f for i, t in enumerate(texts) for f in s.submit_text("Shop", "4915551", t, ref=i)]
    assert {o.kind for o in _results(futures)} == {"ok"}
    assert [m.text for m in sim.messages] == texts
    expected = {"udh": "udh", "udh16": "udh", "sar": "sar", "payload": "payload"}[method]
    assert [m.concat for m in sim.messages][:2] == [expected, expected]


@pytest.mark.parametrize("method", ["udh", "udh16", "sar", "payload"])
def test_no_part_on_the_wire_ends_inside_an_escape_or_a_surrogate_pair(sim, session, method):
    """Texts of two-unit characters offset by one and by two, so that for any part capacity
    (153/152 septets, 67/66 code units) a GSM ESC pair or a UTF-16 surrogate pair straddles
    a boundary: every submit_sm's own user data decodes on its own (an SMSC or handset that
    decodes part by part sees no lone ESC and no lone surrogate) and the parts join whole."""
    s, _ = session(sim.port, concat_method=method)
    texts = [
        lead + char * 120 for char, one in (("€", "a"), ("😀", "Ж")) for lead in (one, one * 2)
    ]
    futures = [f for i, t in enumerate(texts) for f in s.submit_text("Shop", "4915551", t, ref=i)]
    assert {o.kind for o in _results(futures)} == {"ok"}
    assert [m.text for m in sim.messages] == texts
    parts = []
    for p in sim.pdus("submit_sm"):
        body = p["body"]
        _info, data = parse_concat(body.short_message, body.esm_class, body.tlvs)
        parts.append((body.data_coding, data or body.tlvs.get(tlv.TAG_MESSAGE_PAYLOAD, b"")))
    assert len(parts) == (4 if method == "payload" else 2 * 2 + 2 * 4)
    for coding, data in parts:
        if coding == 0:
            assert data and not data.endswith(b"\x1b"), data[-4:]
        else:
            assert len(data) % 2 == 0 and "\ufffd" not in decode(data, coding), data[-4:]


def test_per_request_source_ton_and_registered_delivery_override(sim, session):
    s, _ = session(sim.port)
    request = SubmitRequest(
        "ACME", "4915551", b"hi", source_ton=5, source_npi=0, registered_delivery=0
    )
    assert s.submit(request).result(timeout=5).kind == "ok"
    body = sim.pdus("submit_sm")[0]["body"]
    assert (
        body.source_addr,
        body.source_addr_ton,
        body.source_addr_npi,
        body.registered_delivery,
    ) == ("ACME", 5, 0, 0)


def test_validity_is_written_when_the_body_is_built_in_either_form(sim, session):
    s, _ = session(sim.port)
    until = time.time() + 600
    absolute = SubmitRequest("1", "4915551", b"abs", validity_until=until)
    relative = SubmitRequest("1", "4915552", b"rel", validity_until=until, relative_validity=True)
    assert validity_field(relative, now=until - 90.5) == "000000000130000R"  # 1m30s, rounded down
    assert validity_field(relative, now=until + 5) == "000000000001000R"  # passed: 1 s
    assert validity_field(SubmitRequest("1", "2", b"", validity_period="x")) == "x"
    assert [s.submit(r).result(timeout=5).kind for r in (absolute, relative)] == ["ok", "ok"]
    sent = {m.destination_addr: m for m in sim.messages}
    assert sent["4915551"].validity_period == absolute_time(until)
    rel = sent["4915552"]
    assert rel.validity_period.endswith("000R")
    left = parse_relative_time(rel.validity_period).total_seconds()
    assert 595 <= left <= 600  # the time left when submit() encoded it, not a fixed 600
    # the SMSC reads both as (about) the same end
    ends = [sent[n].validity_end.timestamp() for n in ("4915551", "4915552")]
    assert abs(ends[0] - until) < 0.1 and until - 6 <= ends[1] <= until + 1


def test_the_smsc_refuses_a_validity_in_neither_form(sim, session):
    s, _ = session(sim.port)
    outcome = s.submit(SubmitRequest("1", "4915551", b"x", validity_period="tomorrow")).result(
        timeout=5
    )
    assert (outcome.kind, outcome.status) == ("permanent", ESME_RINVEXPIRY)
    assert sim.messages == []


def test_unencodable_request_is_permanent_and_not_written(sim, session):
    s, _ = session(sim.port)
    outcome = s.submit(SubmitRequest("1", "4915551", b"x" * 300)).result(timeout=5)
    assert (outcome.kind, outcome.written, outcome.status) == ("permanent", False, 0x01)
    assert sim.pdus("submit_sm") == []


def test_unencodable_request_is_refused_by_submit_itself(sim, session):
    s, _ = session(sim.port)
    future = s.submit(SubmitRequest("1", "4915551", b"x" * 300))
    assert future.done() and future.result().kind == "permanent"  # encoded on our thread


def test_next_submits_are_written_before_a_batch_of_responses_is_resolved(sim, session):
    """The SMSC's hold on the next submits starts when they leave, so the session refills the
    window from a batch of responses before it resolves their futures (and runs callbacks)."""
    sim.set_scenarios(Latency(ms=20))  # the first two come back together, in one read
    s, _ = session(sim.port, window=2)
    written_at_callback: list[int] = []  # submits written when each callback ran
    futures = [s.submit(r) for r in _requests(6)]
    for future in futures:
        future.add_done_callback(
            lambda _f: written_at_callback.append(s.snapshot().counters.submitted)
        )
    assert {o.kind for o in _results(futures)} == {"ok"}
    wait_until(lambda: len(written_at_callback) == 6, message="every done callback")
    assert written_at_callback[0] >= 3, written_at_callback  # the old order: exactly 2
    assert len(sim.pdus("submit_sm")) == 6


def test_pair_mode_binds_transmitter_and_receiver_and_gets_receipts(sim, session):
    s, sink = session(sim.port, bind_mode="pair")
    outcomes = _results([s.submit(r) for r in _requests(10)])
    assert {o.kind for o in outcomes} == {"ok"}
    assert sorted(b.bind_type for b in sim.bound) == ["receiver", "transmitter"]
    wait_until(lambda: len(sink.receipts) == 10, message="10 receipts on the receiver")
    assert s.stop(timeout=5)
    # Both connections were unbound (the SMSC may record the second a moment after we close).
    wait_until(lambda: len(sim.pdus("unbind")) == 2, message="two unbinds")
    assert {b.unbound_by for b in sim.binds} == {"esme"}


def test_queued_work_fails_fast_as_not_sent_while_no_smsc_answers(session):
    port = free_port()  # nothing listens here
    s, sink = session(port, down_queue_timeout=0.3)
    outcome = s.submit(_requests(1)[0]).result(timeout=5)
    assert (outcome.kind, outcome.written) == ("not_sent", False)
    assert "no bind for 0.3s" in outcome.error and "cannot connect" in outcome.error
    wait_until(lambda: s.snapshot().counters.bind_attempts >= 3, message="retries")
    assert SessionState.CONNECTING in sink.states and SessionState.DOWN in sink.states


def test_full_queue_refuses_at_once(sim, session):
    sim.set_scenarios(Silent())
    s, _ = session(sim.port, window=1, max_queued=2, response_timeout=30.0)
    futures = [s.submit(r) for r in _requests(4)]
    wait_until(lambda: futures[-1].done(), message="the over-limit submit resolved")
    outcome = futures[-1].result()
    assert outcome.kind == "not_sent" and "queue full" in outcome.error


def test_submit_before_start_is_a_programming_error():
    s = Session(session_config(1), on_receipt=lambda r, i: None)
    with pytest.raises(RuntimeError, match="start"):
        s.submit(_requests(1)[0])
    assert s.stop(timeout=1)


def test_config_mistakes_are_reported_together():
    with pytest.raises(ValueError, match="bind_mode.*window"):
        session_config(1, bind_mode="both", window=0)


def test_responses_out_of_order_unknown_and_repeated_settle_only_their_own_submit():
    """An SMSC answering in reverse order, with a submit_sm_resp for a sequence number never
    used and a second answer to one already answered: each future gets its own submit's id;
    the stray and the repeat are only counted (late_responses), never matched to a submit."""

    def answer_awkwardly(peer):
        seqs = [peer.expect(pdu.SUBMIT_SM)[2] for _ in range(3)]
        peer.send(pdu.encode_submit_sm_resp(0x7FFF0000, "STRAY"))  # no such sequence
        for seq in reversed(seqs):
            peer.send(pdu.encode_submit_sm_resp(seq, f"ID{seq}"))
        peer.send(pdu.encode_submit_sm_resp(seqs[0], "AGAIN", status.ESME_RTHROTTLED))
        peer.send(pdu.encode_submit_sm_resp(peer.expect(pdu.SUBMIT_SM)[2], "ID-LAST"))
        peer.drain()

    with scripted_session(answer_awkwardly, window=3) as (s, smsc):
        outcomes = _results([s.submit(r) for r in _requests(3)])
        seqs = [e[2] for e in smsc.received if e[0] == pdu.SUBMIT_SM]
        assert [(o.kind, o.message_id, o.tag) for o in outcomes] == [
            ("ok", f"ID{seq}", i) for i, seq in enumerate(seqs)
        ]
        assert s.submit(_requests(1)[0]).result(timeout=5).message_id == "ID-LAST"
        counters = s.snapshot().counters
        assert (counters.late_responses, counters.acked, counters.throttled) == (2, 4, 0)
        assert s.state == SessionState.BOUND and smsc.connections == 1
