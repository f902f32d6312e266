"""The balanced gthread worker's board and accept decision (the whole worker runs under a real
gunicorn in test_gunicorn.py)."""
from __future__ import annotations

from types import SimpleNamespace

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
