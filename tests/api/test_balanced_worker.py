"""The balanced gthread worker's board, accept decision and lingering rule, on real sockets (the
whole worker runs under a real gunicorn in test_gunicorn.py)."""

from __future__ import annotations

import io
import socket
from types import SimpleNamespace
from typing import cast

import pytest

from api.balanced_worker import (
    DEFER_SECONDS,
    MAX_DEFER_SECONDS,
    BalancedThreadWorker,
    ConnectionBoard,
)
from api.framing import Limits


def test_the_board_reports_the_least_loaded_other_worker():
    board = ConnectionBoard(slots=8)
    assert board.least_other(0) is None  # alone
    board.publish(0, pid=100, connections=5)
    board.publish(1, pid=101, connections=3)
    board.publish(2, pid=102, connections=0)
    assert board.least_other(0) == 0
    assert board.least_other(2) == 3
    board.withdraw(2)  # stopping: no longer a candidate
    assert board.least_other(0) == 3


def _claimed(board: ConnectionBoard) -> int:
    """A slot the board hands out (it has a free one)."""
    slot = board.claim()
    assert slot is not None, "the board has no free slot"
    return slot


def test_the_master_never_hands_out_a_slot_twice_and_frees_it_after_the_worker():
    board = ConnectionBoard(slots=3)
    slots = [_claimed(board) for _ in range(3)]
    assert sorted(slots) == [0, 1, 2] and board.claim() is None  # full: no balancing, no clash
    board.publish(1, pid=7, connections=4)
    board.free(1)  # the worker was reaped (even after SIGKILL)
    assert board.least_other(0) is None
    assert board.claim() == 1


def test_a_claimed_slot_is_not_on_the_board_until_its_worker_serves():
    board = ConnectionBoard(slots=4)
    booting = _claimed(board)
    assert board.least_other(booting + 1) is None  # siblings do not wait for it


def _worker(board: ConnectionBoard | None, slot: int, connections: int) -> BalancedThreadWorker:
    """A stand-in with only what _should_defer reads (cast: it is not a real worker)."""
    stub = SimpleNamespace(
        board=board,
        board_slot=slot if board else None,
        nr_conns=connections,
        _deferring_since=None,
        _last_deferred=0.0,
    )
    return cast(BalancedThreadWorker, stub)


def test_a_worker_defers_only_while_a_sibling_holds_fewer_connections():
    board = ConnectionBoard(slots=4)
    board.publish(1, pid=2, connections=3)
    should_defer = BalancedThreadWorker._should_defer
    assert not should_defer(_worker(board, 0, 3), now=0.0)  # equal: take it
    busy = _worker(board, 0, 4)
    assert should_defer(busy, now=10.0)  # a sibling has fewer: leave it
    board.publish(1, pid=2, connections=4)
    assert not should_defer(busy, now=10.001)  # the sibling took one: take the next
    assert busy._deferring_since is None


def test_deferring_is_bounded_when_the_sibling_does_not_accept():
    board = ConnectionBoard(slots=4)
    board.publish(1, pid=2, connections=0)  # a hung sibling that never accepts
    busy = _worker(board, 0, 6)
    should_defer = BalancedThreadWorker._should_defer
    now = 10.0
    while now < 10.0 + MAX_DEFER_SECONDS:  # asked again after each pause
        assert should_defer(busy, now=now)
        now += DEFER_SECONDS
    assert not should_defer(busy, now=now)


def test_a_later_connection_starts_a_new_bounded_stretch():
    """A sibling took the last connection while we paused (so accept() never ran here): the
    next connection, a while later, is deferred again rather than counted as the same stretch."""
    board = ConnectionBoard(slots=4)
    board.publish(1, pid=2, connections=3)
    busy = _worker(board, 0, 5)
    should_defer = BalancedThreadWorker._should_defer
    assert should_defer(busy, now=0.0)
    board.publish(1, pid=2, connections=4)  # the sibling accepted it
    assert should_defer(busy, now=10.0)


def test_without_a_board_the_worker_never_defers():
    assert not BalancedThreadWorker._should_defer(_worker(None, 0, 100), now=0.0)


# --- lingering: whether a thread serves its connection's next request itself --------------
class _Conn:
    def __init__(self, sock, buffered: bytes = b"") -> None:
        self.sock, self.is_http2 = sock, False
        self.parser = SimpleNamespace(unreader=SimpleNamespace(buf=io.BytesIO(buffered)))


def _lingerer(connections: int = 2, threads: int = 4, queued: bool = False):
    return SimpleNamespace(
        alive=True,
        nr_conns=connections,
        cfg=SimpleNamespace(threads=threads),
        frame_limits=Limits(),
        _requests_queued=lambda: queued,
    )


WHOLE = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"


@pytest.fixture
def sockets():
    ours, client = socket.socketpair()
    yield ours, client
    ours.close()
    client.close()


def test_a_whole_request_already_read_ahead_is_served_at_once(sockets):
    conn = _Conn(sockets[0], buffered=WHOLE)
    assert BalancedThreadWorker._next_request_soon(_lingerer(connections=99), conn)


def test_a_request_arriving_while_the_thread_lingers_is_served_by_it(sockets):
    ours, client = sockets
    client.sendall(WHOLE)
    conn = _Conn(ours)
    assert BalancedThreadWorker._next_request_soon(_lingerer(), conn)
    assert conn.parser.unreader.buf.getvalue() == WHOLE  # read for the parser, not lost


def test_an_idle_connection_goes_back_after_the_linger(sockets):
    assert not BalancedThreadWorker._next_request_soon(_lingerer(), _Conn(sockets[0]))


def test_a_request_not_whole_within_the_linger_goes_back_to_the_loop(sockets):
    """Half a request (read ahead, or arriving while the thread lingers) is not waited on by
    the thread: the main loop reads the rest (api/intake.py), with the bytes kept."""
    ours, client = sockets
    conn = _Conn(ours, buffered=WHOLE[:5])
    client.sendall(WHOLE[5:-2])
    assert not BalancedThreadWorker._next_request_soon(_lingerer(), conn)
    assert conn.parser.unreader.buf.getvalue() == WHOLE[:-2]
    half_read_ahead = _Conn(ours, buffered=WHOLE[:5])
    assert not BalancedThreadWorker._next_request_soon(_lingerer(connections=99), half_read_ahead)


@pytest.mark.parametrize(
    "worker",
    [
        _lingerer(connections=5, threads=4),  # more connections than threads
        _lingerer(queued=True),  # a request waits for a thread
        SimpleNamespace(**{**vars(_lingerer()), "alive": False}),  # stopping
    ],
    ids=["more-connections-than-threads", "request-queued", "stopping"],
)
def test_no_lingering_when_another_connection_could_need_the_thread(sockets, worker):
    ours, client = sockets
    client.sendall(WHOLE)  # even with a request ready
    assert not BalancedThreadWorker._next_request_soon(worker, _Conn(ours))


def test_a_read_ahead_request_waits_its_turn_when_others_are_queued(sockets):
    conn = _Conn(sockets[0], buffered=WHOLE)
    assert not BalancedThreadWorker._next_request_soon(_lingerer(queued=True), conn)


def _bare_worker(monkeypatch, answers):
    """A BalancedThreadWorker whose gthread handle() returns ``answers`` in turn."""
    from gunicorn.workers.gthread import ThreadWorker

    calls = []

    def handle(self, conn):
        calls.append(conn)
        return answers(len(calls))

    monkeypatch.setattr(ThreadWorker, "handle", handle)
    worker = object.__new__(BalancedThreadWorker)
    monkeypatch.setattr(worker, "_next_request_soon", lambda conn: True, raising=False)
    return worker, calls


def test_a_thread_serves_at_most_linger_requests_in_a_row(monkeypatch):
    from api.balanced_worker import LINGER_REQUESTS

    worker, calls = _bare_worker(monkeypatch, lambda n: True)
    assert worker.handle("conn") is True  # then back to the main loop, kept alive
    assert len(calls) == 1 + LINGER_REQUESTS


@pytest.mark.parametrize("answer", [False, "deferred"], ids=["closed", "deferred"])
def test_a_closed_or_deferred_connection_is_not_lingered_on(monkeypatch, answer):
    worker, calls = _bare_worker(monkeypatch, lambda n: answer)
    assert worker.handle("conn") == answer and len(calls) == 1
