"""The session against an unhappy SMSC: throttling, full queues, refusals, drops, malformed
PDUs, refused binds, unbind from the SMSC, and enquire_link answered or not."""

from __future__ import annotations

import time

import pytest

from smpp.codec import pdu, status
from smpp.session.client import SessionState, SubmitRequest
from smpp.simulator import (
    DropAfter,
    Malformed,
    QueueFull,
    RefuseBinds,
    RejectPrefix,
    Throttle,
)
from tests.harness.procs import wait_until
from tests.smpp.session.scripted import ScriptedSmsc

RTHROTTLED, RMSGQFUL, RINVDSTADR, RBINDFAIL, RINVPASWD = 0x58, 0x14, 0x0B, 0x0D, 0x0E


def _requests(n: int, prefix: str = "4915550") -> list[SubmitRequest]:
    return [SubmitRequest("12345", f"{prefix}{i:04d}", b"message %d" % i, tag=i) for i in range(n)]


def _send_until_ok(session, requests, rounds: int = 50):
    """What the delivery worker does: resend retryable / unwritten ones (bounded)."""
    pending, done = list(requests), {}
    for _ in range(rounds):
        outcomes = [(r, session.submit(r)) for r in pending]
        pending = []
        for request, future in outcomes:
            outcome = future.result(timeout=15)
            if outcome.kind == "ok":
                done[request.tag] = outcome
            else:
                assert outcome.kind in ("retryable", "not_sent", "timeout"), outcome
                pending.append(request)
        if not pending:
            return done
    raise AssertionError(f"{len(pending)} still not accepted after {rounds} rounds")


def test_throttled_submits_are_retryable_and_the_session_backs_off(sim, session):
    sim.set_scenarios(Throttle(tps=1000, burst=5))
    s, _ = session(sim.port, window=50, throttle_backoff=0.3)
    resolved_at = []  # the session thread's time of each resolution
    futures = [s.submit(r) for r in _requests(50)]
    for f in futures:
        f.add_done_callback(lambda _f: resolved_at.append(time.monotonic()))
    first = [f.result(timeout=10) for f in futures]
    wait_until(lambda: len(resolved_at) == 50, message="every done callback")
    throttled_at = max(resolved_at)
    refused = [o for o in first if o.kind != "ok"]
    assert refused and {(o.kind, o.status) for o in refused} == {("retryable", RTHROTTLED)}
    assert "ESME_RTHROTTLED" in refused[0].error
    assert s.snapshot().counters.throttled == len(refused)
    # Nothing more goes out until the back-off has passed (a lower bound: safe when loaded).
    assert s.submit(_requests(1, "4915559")[0]).result(timeout=10).kind == "ok"
    assert time.monotonic() - throttled_at >= 0.3 * 0.9
    done = _send_until_ok(
        s, [r for r, o in zip(_requests(50), first, strict=True) if o.kind != "ok"]
    )
    assert len(sim.messages) == 51 and len(done) == len(refused)


def test_queue_full_is_retryable_and_invalid_destination_is_permanent(sim, session):
    sim.set_scenarios(RejectPrefix(prefixes=("49155500000",)), QueueFull(every=4, burst=2))
    s, _ = session(sim.port, window=1)
    outcomes = [s.submit(r).result(timeout=10) for r in _requests(8)]
    assert (outcomes[0].kind, outcomes[0].status) == ("permanent", RINVDSTADR)
    assert [(o.kind, o.status) for o in outcomes[1:]] == [("ok", 0)] * 4 + [
        ("retryable", RMSGQFUL)
    ] * 2 + [("ok", 0)]
    assert s.snapshot().counters.errors == {RINVDSTADR: 1, RMSGQFUL: 2}


def test_connection_drops_reconnect_and_every_future_resolves(sim, session):
    sim.set_scenarios(DropAfter(pdus=20))  # the SMSC hangs up after 20 PDUs, every time
    s, _ = session(sim.port, window=10)
    done = _send_until_ok(s, _requests(60))
    assert len(done) == 60
    assert {m.destination_addr for m in sim.messages} == {f"4915550{i:04d}" for i in range(60)}
    snap = s.snapshot()
    assert snap.counters.reconnects >= 3 and len(sim.binds) == snap.counters.reconnects + 1
    assert any(
        why in snap.last_error
        for why in ("closed the connection", "write to SMSC failed", "read from SMSC failed")
    )


def test_reset_connection_in_flight_resolves_timeout_written(sim, session):
    sim.set_scenarios("silent")
    s, _ = session(sim.port, window=5, response_timeout=30.0)
    futures = [s.submit(r) for r in _requests(3)]
    wait_until(lambda: len(sim.pdus("submit_sm")) == 3, message="3 submits in flight")
    assert sim.drop_connections() == 1
    outcomes = [f.result(timeout=5) for f in futures]
    assert {(o.kind, o.written) for o in outcomes} == {("timeout", True)}
    assert "connection lost" in outcomes[0].error
    wait_until(lambda: len(sim.bound) == 1 and s.state == SessionState.BOUND, message="bound again")
    assert s.snapshot().counters.lost_in_flight == 3


def test_unbind_from_the_smsc_is_answered_and_the_session_binds_again(sim, session):
    s, sink = session(sim.port)
    wait_until(lambda: s.state == SessionState.BOUND, message="bound")
    assert sim.unbind() == 1
    wait_until(lambda: len(sim.binds) == 2 and sim.binds[1].bound, message="second bind")
    first = sim.binds[0]
    assert first.unbound_by == "smsc"
    assert [p["command"] for p in first.pdus][-1] == "unbind_resp"
    assert SessionState.UNBINDING in sink.states
    assert s.submit(_requests(1)[0]).result(timeout=5).kind == "ok"


def test_malformed_deliver_sm_gets_generic_nack_then_a_fresh_connection(sim, session):
    sim.set_scenarios(Malformed(after=3, kind="truncated"))
    s, _ = session(sim.port, window=1)
    done = _send_until_ok(s, _requests(10))
    assert len(done) == 10
    first = sim.binds[0]
    nacks = [p for p in first.pdus if p["command"] == "generic_nack"]
    assert nacks and nacks[0]["status"] != 0
    assert not first.open and len(sim.binds) >= 2
    assert s.snapshot().counters.malformed >= 1


@pytest.mark.parametrize("kind", ["bad-length", "huge-length"])
def test_bad_command_length_costs_a_reconnect_not_the_process(sim, session, kind):
    """command_length 8 (too small) or 0x7FFFFFFF with no body (huge): never waited for."""
    sim.set_scenarios(Malformed(after=2, kind=kind))
    s, _ = session(sim.port, window=1)
    assert len(_send_until_ok(s, _requests(6))) == 6
    assert len(sim.binds) >= 2
    assert s.snapshot().counters.malformed >= 1


def test_unknown_command_gets_generic_nack_and_the_bind_stays(sim, session):
    sim.set_scenarios(Malformed(after=2, kind="unknown-command"))
    s, _ = session(sim.port, window=1)
    assert {o.kind for o in (s.submit(r).result(timeout=5) for r in _requests(5))} == {"ok"}
    wait_until(lambda: sim.pdus("generic_nack"), message="our generic_nack")
    assert sim.pdus("generic_nack")[0]["status"] == status.ESME_RINVCMDID
    assert len(sim.binds) == 1 and s.snapshot().counters.generic_nacks_sent == 1


def test_a_resp_for_a_sequence_never_used_settles_nothing_and_the_bind_stays(sim, session):
    sim.set_scenarios(Malformed(after=2, kind="stray-resp"))
    s, _ = session(sim.port, window=1)
    outcomes = [s.submit(r).result(timeout=5) for r in _requests(5)]
    assert {o.kind for o in outcomes} == {"ok"} and "STRAY" not in {o.message_id for o in outcomes}
    wait_until(lambda: s.snapshot().counters.late_responses == 1, message="the stray counted")
    assert len(sim.binds) == 1 and s.snapshot().counters.acked == 5


def test_bad_credentials_stop_retrying_and_say_so(make_sim, session):
    sim = make_sim(password="other")
    s, sink = session(sim.port)
    wait_until(lambda: s.state == SessionState.BIND_REFUSED, message="bind_refused")
    snap = s.snapshot()
    assert "credentials" in snap.last_error and "ESME_RINVPASWD" in snap.last_error
    outcome = s.submit(_requests(1)[0]).result(timeout=1)
    assert (outcome.kind, outcome.written) == ("not_sent", False)
    assert "bind_refused" in outcome.error
    assert len(sim.binds) == 1 and sim.binds[0].bind_status == RINVPASWD
    assert sink.states == [SessionState.CONNECTING, SessionState.BIND_REFUSED]


def test_transient_bind_failure_is_retried_with_back_off(sim, session):
    sim.set_scenarios(RefuseBinds(count=3, status=RBINDFAIL))
    s, sink = session(sim.port, reconnect_min=0.02, reconnect_max=0.1)
    outcome = s.submit(_requests(1)[0]).result(timeout=10)
    assert outcome.kind == "ok"
    assert [b.bind_status for b in sim.binds] == [RBINDFAIL] * 3 + [0]
    assert s.snapshot().counters.bind_attempts == 4
    assert sink.states.count(SessionState.DOWN) == 3


def test_idle_session_sends_enquire_link_and_stays_bound(sim, session):
    s, _ = session(sim.port, enquire_link_interval=0.1)
    wait_until(lambda: len(sim.pdus("enquire_link")) >= 3, message="3 enquire_links")
    assert s.state == SessionState.BOUND and len(sim.binds) == 1
    snap = s.snapshot()  # the NOC sees the link's round trip and when it was last answered
    assert snap.enquire_link_rtt is not None and 0 <= snap.enquire_link_rtt < 5
    assert snap.enquire_link_at is not None and abs(time.time() - snap.enquire_link_at) < 30
    assert snap.last_error is None and snap.last_error_at is None


def test_unanswered_enquire_link_means_reconnect():
    def ignore_enquire_link(peer):
        peer.read()  # our enquire_link; never answered
        peer.drain()  # until the session gives up and hangs up

    with ScriptedSmsc(ignore_enquire_link) as smsc:
        from smpp.session.client import Session
        from tests.smpp.session.conftest import session_config

        s = Session(
            session_config(smsc.port, enquire_link_interval=0.1, response_timeout=0.3),
            on_receipt=lambda r, i: None,
        )
        s.start()
        try:
            wait_until(lambda: smsc.connections >= 2, message="a second connection")
            assert smsc.commands()[:2] == [pdu.BIND_TRANSCEIVER, pdu.ENQUIRE_LINK]
            snap = s.snapshot()
            assert snap.last_error is not None and "no enquire_link_resp" in snap.last_error
            assert snap.last_error_at is not None and abs(time.time() - snap.last_error_at) < 30
            assert snap.enquire_link_rtt is None  # never answered
        finally:
            assert s.stop(timeout=5)


def test_down_since_stays_at_the_first_failure_through_reconnect_attempts(sim, session):
    sim.set_scenarios(RefuseBinds(status=RBINDFAIL))  # every bind refused until told otherwise
    s, _ = session(sim.port, reconnect_min=0.02, reconnect_max=0.05)
    wait_until(lambda: s.snapshot().counters.bind_attempts >= 1 and s.snapshot().down_since)
    first = s.snapshot().down_since
    wait_until(lambda: s.snapshot().counters.bind_attempts >= 5, message="5 refused binds")
    snap = s.snapshot()
    assert snap.down_since == first and snap.since_wall > first  # since moves, down_since not

    sim.set_scenarios()  # binds accepted: bound, and no longer down
    wait_until(lambda: s.state == SessionState.BOUND, message="bound")
    assert s.snapshot().down_since is None

    sim.set_scenarios(RefuseBinds(status=RBINDFAIL))
    before_drop = time.time()
    assert sim.drop_connections() == 1
    wait_until(lambda: s.snapshot().down_since is not None, message="down")
    left = s.snapshot().down_since
    assert left is not None and left >= before_drop
    attempts = s.snapshot().counters.bind_attempts
    wait_until(lambda: s.snapshot().counters.bind_attempts >= attempts + 3, message="3 more")
    assert s.snapshot().down_since == left  # the time it left bound, not the latest attempt
