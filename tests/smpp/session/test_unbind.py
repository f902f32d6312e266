"""Unbind started by the SMSC (issue 12 item 2): every bind answers its unbind with unbind_resp
before the session closes it, for a transmitter + receiver pair as for a transceiver, and the
session then binds again and submits."""

from __future__ import annotations

import time

import pytest

from smpp.session.client import SessionState, SubmitRequest
from tests.harness.procs import wait_until

ROLES = {"pair": ["transmitter", "receiver"], "transceiver": ["transceiver"]}


def _bound_again(sim, first: int, roles: list[str]):
    """The binds opened after the first ``first``, once all of ``roles`` are bound."""
    wait_until(
        lambda: sorted(b.bind_type for b in sim.binds[first:] if b.bound) == sorted(roles),
        message=f"bound again as {roles}",
    )
    return sim.binds[first:]


@pytest.mark.parametrize("bind_mode", ["pair", "transceiver"])
def test_every_bind_answers_the_smscs_unbind(sim, session, bind_mode):
    roles = ROLES[bind_mode]
    s, sink = session(sim.port, bind_mode=bind_mode)
    wait_until(lambda: s.state == SessionState.BOUND, message="bound")
    assert sorted(b.bind_type for b in sim.bound) == sorted(roles)
    assert sim.unbind() == len(roles)
    _bound_again(sim, len(roles), roles)
    first = sim.binds[: len(roles)]
    assert [(b.bind_type, b.unbound_by, b.unbind_answered, b.open) for b in first] == [
        (role, "smsc", True, False) for role in (b.bind_type for b in first)
    ]
    for b in first:  # answered, and the session did not start an unbind of its own there
        assert [p["command"] for p in b.pdus if "unbind" in p["command"]] == ["unbind_resp"]
    assert SessionState.UNBINDING in sink.states
    assert s.submit(SubmitRequest("12345", "4915550001", b"after")).result(timeout=5).kind == "ok"


@pytest.mark.parametrize(
    "unbound, ours", [("receiver", "transmitter"), ("transmitter", "receiver")]
)
def test_one_bind_of_a_pair_unbound_the_session_unbinds_the_other(sim, session, unbound, ours):
    """The pair works only whole: the SMSC's unbind is answered, the other bind gets
    unbind_grace for the SMSC's own unbind, then the session unbinds it and binds both again."""
    s, _ = session(sim.port, bind_mode="pair", unbind_grace=0.1)
    wait_until(lambda: s.state == SessionState.BOUND, message="bound")
    assert sim.unbind(bind_type=unbound) == 1
    _bound_again(sim, 2, ROLES["pair"])
    first = {b.bind_type: b for b in sim.binds[:2]}
    assert (first[unbound].unbound_by, first[unbound].unbind_answered) == ("smsc", True)
    assert [p["command"] for p in first[unbound].pdus if "unbind" in p["command"]] == [
        "unbind_resp"
    ]
    assert first[ours].unbound_by == "esme"  # the session's own unbind, answered by the SMSC
    assert [p["command"] for p in first[ours].pdus if "unbind" in p["command"]] == ["unbind"]
    assert s.submit(SubmitRequest("12345", "4915550001", b"after")).result(timeout=5).kind == "ok"


def test_submits_in_flight_at_the_smscs_unbind_resolve_at_once_and_queued_ones_go_later(
    make_sim, session
):
    """The SMSC holds 3 answers (latency 10 s) and unbinds: they resolve "timeout" (written:
    it may have accepted them) when the bind closes, not after response_timeout; the 4th,
    waiting for a slot, goes on the new bind."""
    sim = make_sim(scenarios=["latency:ms=10000"])
    s, _ = session(sim.port, window=3, response_timeout=30.0)
    wait_until(lambda: s.state == SessionState.BOUND, message="bound")
    futures = [
        s.submit(SubmitRequest("12345", f"491555000{i}", b"in flight", tag=i)) for i in range(4)
    ]
    wait_until(lambda: len(sim.pdus("submit_sm")) == 3, message="3 submits in flight")
    started = time.monotonic()
    assert sim.unbind() == 1
    held = [f.result(timeout=5) for f in futures[:3]]
    assert time.monotonic() - started < 5
    assert [(o.kind, o.written) for o in held] == [("timeout", True)] * 3
    assert all("the SMSC unbound" in o.error for o in held)
    sim.set_scenarios()  # the new bind is answered at once
    assert futures[3].result(timeout=10).kind == "ok"
    assert sim.binds[0].unbind_answered and len(sim.binds) == 2
