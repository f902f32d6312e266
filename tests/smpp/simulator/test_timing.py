"""When the simulated SMSC answers: held responses never go out before they are due, and the
server loop's timed waits are not rounded up to whole milliseconds (Python's epoll does that,
which made a "5 ms" latency scenario answer at 5.0-6.0 ms).

Times are the simulator's own loop clock (or, over sockets, lower bounds that hold however
loaded the machine is). The one upper bound is "at least one of 30 waits came back sooner than
a rounded-up wait can", which fails only if every one of them was delayed."""

from __future__ import annotations

import asyncio
import socket
import time

import pytest

from smpp.codec import pdu
from smpp.simulator.selector import new_event_loop
from smpp.simulator.timers import Timers
from tests.harness.simulator import RawEsme

WAIT_LIMIT = 5.0  # s any loop below may run before the test gives up


@pytest.fixture
def loop():
    """A loop as the simulator's server thread makes it (here on the test's thread)."""
    made = new_event_loop()
    try:
        yield made
    finally:
        made.close()


def _run_until(loop: asyncio.AbstractEventLoop, done: asyncio.Future) -> None:
    loop.run_until_complete(asyncio.wait_for(done, WAIT_LIMIT))


def test_timers_never_run_a_call_before_it_is_due_and_run_in_due_order(loop):
    """Clusters of calls 0.1 ms apart: a drain may take everything due when it wakes, never
    what is due a moment later (the old drain took 0.5 ms ahead)."""
    drains, ran = [], []
    timers = Timers(loop, after_run=lambda: drains.append(loop.time()))
    done = loop.create_future()
    delays = [base + k * 0.0001 for base in (0.001, 0.002, 0.003) for k in range(5)]

    def record(due: float) -> None:
        ran.append((due, loop.time()))
        if len(ran) == len(delays) and not done.done():
            done.set_result(None)

    def schedule() -> None:
        now = loop.time()
        for delay in reversed(delays):  # pushed out of order on purpose
            timers.call_at(now + delay, record, now + delay)

    loop.call_soon(schedule)
    _run_until(loop, done)
    assert all(ran_at >= due for due, ran_at in ran), [
        (round((ran_at - due) * 1e6), "us") for due, ran_at in ran if ran_at < due
    ]
    assert [due for due, _ in ran] == sorted(due for due, _ in ran)
    assert len(timers) == 0 and drains


def test_timed_waits_are_not_rounded_up_to_whole_milliseconds(loop):
    """Timers 0.3 ms ahead, one after another: with epoll's whole-millisecond waits each one
    wakes >= 0.7 ms late; with the precise selector nearly all wake within ~0.1 ms."""
    timers = Timers(loop, after_run=lambda: None)
    lateness: list[float] = []
    done = loop.create_future()

    def fire(due: float) -> None:
        lateness.append(loop.time() - due)
        if len(lateness) == 30:
            done.set_result(None)
            return
        again = loop.time() + 0.0003
        timers.call_at(again, fire, again)

    first = loop.time() + 0.0003
    timers.call_at(first, fire, first)
    _run_until(loop, done)
    assert min(lateness) >= 0
    assert min(lateness) < 0.0005, sorted(round(x * 1e6) for x in lateness)


def test_latency_scenario_never_answers_a_submit_early(make_simulator):
    """Submits written 0.2 ms apart each come back no sooner than the latency after their own
    write (the old drain answered a later one with an earlier one, up to 0.5 ms early)."""
    latency = 0.02
    sim = make_simulator(scenarios=[f"latency:ms={latency * 1000:g}"])
    with RawEsme(sim.address) as client:
        client.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # no Nagle delays
        assert client.bind().command_status == 0
        written: dict[int, float] = {}
        for _ in range(12):
            frame = client.submit_frame()
            written[pdu.decode_header(frame).sequence_number] = time.monotonic()
            client.send(frame)
            time.sleep(0.0002)  # a gap between writes that releases the GIL to the simulator
        answered: dict[int, float] = {}
        while len(answered) < len(written):
            resp = client.read(timeout=WAIT_LIMIT)
            assert (resp.command_id, resp.command_status) == (pdu.SUBMIT_SM_RESP, 0)
            answered[resp.sequence_number] = time.monotonic()
    early = {seq: answered[seq] - at for seq, at in written.items() if answered[seq] - at < latency}
    assert not early, f"answered sooner than {latency * 1000:g} ms: {early}"


def test_a_simulator_holds_a_sub_millisecond_latency_for_less_than_a_millisecond(make_simulator):
    """End to end, through the simulator's own loop: a 0.3 ms hold that epoll rounded up would
    take >= 1 ms of round trip every time; at least one of 30 comes back sooner."""
    sim = make_simulator(scenarios=["latency:ms=0.3"])
    with RawEsme(sim.address) as client:
        assert client.bind().command_status == 0
        round_trips = []
        for _ in range(30):
            started = time.monotonic()
            assert client.submit().command_status == 0
            round_trips.append(time.monotonic() - started)
    assert min(round_trips) >= 0.0003
    assert min(round_trips) < 0.0009, sorted(round(x * 1e6) for x in round_trips)
