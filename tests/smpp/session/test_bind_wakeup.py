"""The session thread's wake-up socket never loses a wake-up.

A submitter on another thread appends to the queue and, unless a wake-up is already pending,
sets the flag and writes one byte to the socket the session thread select()s on. If the thread
cleared the flag *before* draining the socket, a submitter running in between had its byte
swallowed while the flag stayed set; later submitters then sent nothing and their work waited
for the next select timeout (a second). Invariant checked here: once _drain_wake returns,
either the flag is clear or a byte is waiting.
"""

import select
import time

from smpp.session.bind import BindLoop
from smpp.session.client import SessionConfig


class _RacingSocket:
    """Wraps the read end: the first recv() lets a 'submitter' call _wake() first."""

    def __init__(self, sock, engine):
        self._sock, self._engine, self._raced = sock, engine, False

    def recv(self, n):
        if not self._raced:
            self._raced = True
            self._engine._wake()  # a submitter on another thread, mid-drain
        return self._sock.recv(n)

    def __getattr__(self, name):
        return getattr(self._sock, name)


def _engine():
    config = SessionConfig(host="127.0.0.1", port=1, system_id="x", password="y")
    return BindLoop(config, lambda r, i: None, None, None, time.monotonic, time.time, None)


def _byte_waiting(engine) -> bool:
    return bool(select.select([engine._wake_r], [], [], 0)[0])


def test_a_wake_up_during_the_drain_is_not_lost():
    engine = _engine()
    try:
        engine._wake()  # an earlier submitter: flag set, one byte pending
        real = engine._wake_r
        engine._wake_r = _RacingSocket(real, engine)
        engine._drain_wake()
        engine._wake_r = real
        assert not engine._wake_pending or _byte_waiting(engine)
        engine._wake()  # the next submitter must be able to wake the thread
        assert _byte_waiting(engine)
    finally:
        engine._wake_r.close()
        engine._wake_w.close()
