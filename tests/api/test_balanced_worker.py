"""The balanced gthread worker's board, accept decision and lingering rule, on real sockets (the
whole worker runs under a real gunicorn in test_gunicorn.py)."""
from __future__ import annotations

import io
import socket
from types import SimpleNamespace

import pytest

from api.balanced_worker import MAX_DEFER_SECONDS, BalancedThreadWorker, ConnectionBoard


def test_the_board_reports_the_least_loaded_other_worker():
    board = ConnectionBoard(slots=8)
    assert board.least_other(0) is None  # alone
    board.publish(0, pid=100, connections=5)
    board.publish(1, pid=101, connections=3)
    board.publish(2, pid=102, connections=0)
    assert board.least_other(0) == 0
    assert board.least_other(2) == 3
    board.release(2, pid=102)
    assert board.least_other(0) == 3


def test_a_slot_is_only_released_by_its_owner():
    board = ConnectionBoard(slots=4)
    board.publish(board.slot_for(5), pid=200, connections=2)  # age 5 -> slot 1
    board.release(board.slot_for(1), pid=150)  # an older worker that had slot 1: no-op
    assert board.least_other(0) == 2
    board.release(board.slot_for(5), pid=200)
    assert board.least_other(0) is None


def _worker(board: ConnectionBoard, slot: int, connections: int) -> SimpleNamespace:
    return SimpleNamespace(board=board, _slot=slot, nr_conns=connections,
                           _deferring_since=None)


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
    assert should_defer(busy, now=10.0)
    assert should_defer(busy, now=10.0 + MAX_DEFER_SECONDS / 2)
    assert not should_defer(busy, now=10.0 + MAX_DEFER_SECONDS)


def test_without_a_board_the_worker_never_defers():
    assert not BalancedThreadWorker._should_defer(_worker(None, 0, 100), now=0.0)


# --- lingering: whether a thread serves its connection's next request itself --------------
class _Conn:
    def __init__(self, sock, buffered: bytes = b"") -> None:
        self.sock, self.is_http2 = sock, False
        self.parser = SimpleNamespace(unreader=SimpleNamespace(buf=io.BytesIO(buffered)))


def _lingerer(connections: int = 2, threads: int = 4, queued: bool = False):
    return SimpleNamespace(alive=True, nr_conns=connections, cfg=SimpleNamespace(threads=threads),
                           _requests_queued=lambda: queued)


@pytest.fixture
def sockets():
    ours, client = socket.socketpair()
    yield ours, client
    ours.close()
    client.close()


def test_a_request_already_read_ahead_is_served_at_once(sockets):
    conn = _Conn(sockets[0], buffered=b"GET / HTTP/1.1\r\n")
    assert BalancedThreadWorker._next_request_soon(_lingerer(connections=99), conn)


def test_a_request_arriving_while_the_thread_lingers_is_served_by_it(sockets):
    ours, client = sockets
    client.sendall(b"GET / HTTP/1.1\r\n\r\n")
    assert BalancedThreadWorker._next_request_soon(_lingerer(), _Conn(ours))


def test_an_idle_connection_goes_back_after_the_linger(sockets):
    assert not BalancedThreadWorker._next_request_soon(_lingerer(), _Conn(sockets[0]))


@pytest.mark.parametrize("worker", [
    _lingerer(connections=5, threads=4),  # more connections than threads
    _lingerer(queued=True),  # a request waits for a thread
    SimpleNamespace(**{**vars(_lingerer()), "alive": False}),  # stopping
], ids=["more-connections-than-threads", "request-queued", "stopping"])
def test_no_lingering_when_another_connection_could_need_the_thread(sockets, worker):
    ours, client = sockets
    client.sendall(b"GET / HTTP/1.1\r\n\r\n")  # even with a request ready
    assert not BalancedThreadWorker._next_request_soon(worker, _Conn(ours))
