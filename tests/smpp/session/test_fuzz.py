"""Hypothesis throws raw bytes at the session — in place of the bind response, and after a
successful bind — over a real socket. Whatever arrives, the session thread must not die or
hang: stop() returns within its bound, every future resolves, and nothing is put down to an
internal error (a bug path), only to the SMSC."""

from __future__ import annotations

import struct
import threading

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from smpp.codec import pdu
from smpp.session.client import Session, SubmitRequest
from tests.smpp.session.conftest import session_config
from tests.smpp.session.scripted import ScriptedSmsc

COMMANDS = [
    pdu.GENERIC_NACK,
    pdu.SUBMIT_SM_RESP,
    pdu.DELIVER_SM,
    pdu.DATA_SM,
    pdu.UNBIND,
    pdu.UNBIND_RESP,
    pdu.ENQUIRE_LINK,
    pdu.ENQUIRE_LINK_RESP,
    pdu.ALERT_NOTIFICATION,
    pdu.BIND_TRANSCEIVER_RESP,
    pdu.SUBMIT_SM,
    0x00000999,
    0x80000999,
]
KINDS = {"ok", "retryable", "permanent", "timeout", "not_sent"}


@st.composite
def frames(draw) -> bytes:
    """A PDU-shaped frame: a real command id, a plausible sequence (the session's own are
    small), a random body, and a command_length that is usually right."""
    body = draw(st.binary(max_size=120))
    right = draw(st.sampled_from([True, True, True, False]))
    length = 16 + len(body) if right else draw(st.integers(0, 2**32 - 1))
    command = draw(st.one_of(st.sampled_from(COMMANDS), st.integers(0, 2**32 - 1)))
    status = draw(st.sampled_from([0, 0, 0x58, 0x14, 0x0B, 0xFFFFFFFF]))
    sequence = draw(st.integers(0, 12) | st.integers(0, 2**32 - 1))
    return struct.pack(">IIII", length, command, status, sequence) + body


payloads = st.lists(st.one_of(frames(), st.binary(max_size=64)), min_size=1, max_size=6).map(
    b"".join
)


class Thrower:
    """The scripted peer's behaviour for the current example."""

    def __init__(self) -> None:
        self.payload = b""
        self.sent = threading.Event()

    def after_bind(self, peer) -> None:
        """Send the payload, then behave: answer submits, enquire_links and unbind."""
        peer.send(self.payload)
        self.sent.set()
        while (entry := peer.read(timeout=5)) is not None:
            command, _, seq, _ = entry
            if command == pdu.SUBMIT_SM:
                peer.send(pdu.encode_submit_sm_resp(seq, "1"))
            elif command == pdu.ENQUIRE_LINK:
                peer.send(pdu.encode_enquire_link_resp(seq))
            elif command == pdu.UNBIND:
                peer.send(pdu.encode_unbind_resp(seq))
                return

    def instead_of_bind_resp(self, peer) -> None:
        peer.send(self.payload)
        self.sent.set()
        peer.drain(timeout=5)


def _run_example(smsc: ScriptedSmsc, thrower: Thrower, payload: bytes) -> None:
    thrower.payload, thrower.sent = payload, threading.Event()
    session = Session(
        session_config(
            smsc.port,
            window=3,
            response_timeout=0.5,
            connect_timeout=0.5,
            down_queue_timeout=0.5,
            reconnect_min=0.01,
            reconnect_max=0.05,
        ),
        on_receipt=lambda r, i: None,
        on_mo=lambda m: None,
    )
    session.start()
    futures = [session.submit(SubmitRequest("1", "4915550", b"x", tag=i)) for i in range(3)]
    try:
        assert thrower.sent.wait(5), f"the peer never got a connection: {smsc.errors}"
    finally:
        stopped = session.stop(timeout=3)
    assert stopped, "session thread hung"
    assert all(f.done() for f in futures)
    assert {f.result().kind for f in futures} <= KINDS
    error = session.snapshot().last_error or ""
    assert "internal error" not in error and "thread failed" not in error, error


_FUZZ = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def test_garbage_after_bind_never_kills_or_hangs_the_session():
    thrower = Thrower()
    with ScriptedSmsc(lambda peer: thrower.after_bind(peer)) as smsc:

        @_FUZZ
        @given(payloads)
        def check(payload):
            _run_example(smsc, thrower, payload)

        check()


def test_garbage_instead_of_bind_resp_never_kills_or_hangs_the_session():
    thrower = Thrower()
    with ScriptedSmsc(lambda peer: thrower.instead_of_bind_resp(peer), answer_bind=False) as smsc:

        @_FUZZ
        @given(payloads)
        def check(payload):
            _run_example(smsc, thrower, payload)

        check()
