"""A gthread worker that spreads connections over the workers and keeps a busy one on its thread.

gunicorn's workers share one listening socket and whichever one calls accept() first wins. A
client that opens its keep-alive connections in a burst (a load balancer, an SDK's pool) can
land them all in one worker: that worker is then bound by its GIL while the others idle, and
with 8 connections on 2 workers we measured splits of 8:0 and half the throughput
(docs/benchmarks.md). Connections, not requests, are what gthread pins to a process, so this
worker balances connections.

Each worker publishes its open connection count on a :class:`ConnectionBoard` (shared memory
created in the gunicorn master, inherited by every forked worker). Before accepting, a worker
that holds more connections than the least loaded live sibling stops listening for a moment
(``DEFER_SECONDS``) so a sibling takes the connection. The wait is bounded: after
``MAX_DEFER_SECONDS`` of deferring (a sibling hung or full) it accepts anyway. With one worker,
or without a board, it accepts like gunicorn's gthread worker.

**Lingering.** gthread hands a kept-alive connection back to its main loop after every
response: a pipe write to wake it, epoll registration, a wake-up when the next request
arrives, epoll removal, a thread-pool hand-off. For a client that sends its next request a
moment later, that round trip is most of a small request's server overhead. So a thread that
has just answered waits up to ``LINGER_SECONDS`` for the next request on the same connection
and serves it itself — but only while the worker has at least as many threads as connections
and no request is queued for a thread, so lingering never makes another connection wait
(with more connections than threads it is gthread as before). At most ``LINGER_REQUESTS``
requests in a row, then the connection goes back to the main loop. The thread serves the next
request only once it is whole (api/framing.py): one still arriving when the linger ends goes
back to the main loop, which reads the rest (api/intake.py), so a slow client never holds the
thread.
"""

from __future__ import annotations

import io
import multiprocessing
import select
import socket
import time

from api import framing
from api.intake import READ_BYTES, IntakeThreadWorker

DEFER_SECONDS = 0.002  # how long a loaded worker stops listening before it looks again
MAX_DEFER_SECONDS = 0.05  # after this much deferring, accept anyway
LINGER_SECONDS = 0.002  # how long a thread waits on its connection for the next request
LINGER_REQUESTS = 100  # requests one thread serves in a row before handing the connection back


class ConnectionBoard:
    """Open connections per accepting worker, in shared memory: slot -> (pid, connections).

    The master hands out the slots (``claim``, when gunicorn builds a worker object, before the
    fork; ``free`` from the child_exit hook), so two live workers never share one. A worker
    fills its slot once it serves (a booting worker is not on the board: it cannot accept yet)
    and clears it as soon as it stops accepting, so siblings never wait for one that will not
    take the connection.
    """

    def __init__(self, slots: int = 256) -> None:
        self.slots = slots
        self._cells = multiprocessing.RawArray("q", 2 * slots)  # shared after fork
        self._taken: set[int] = set()  # master's own bookkeeping

    def claim(self) -> int | None:
        """A free slot for a new worker (in the master); None when all are taken."""
        for slot in range(self.slots):
            if slot not in self._taken:
                self._taken.add(slot)
                return slot
        return None

    def free(self, slot: int) -> None:
        """In the master, after the slot's worker was reaped (however it died)."""
        self._taken.discard(slot)
        self._cells[2 * slot] = 0
        self._cells[2 * slot + 1] = 0

    def publish(self, slot: int, pid: int, connections: int) -> None:
        self._cells[2 * slot + 1] = connections
        self._cells[2 * slot] = pid

    def withdraw(self, slot: int) -> None:
        """Take a worker that no longer accepts off the board (its slot stays claimed)."""
        self._cells[2 * slot] = 0

    def least_other(self, slot: int) -> int | None:
        """The fewest connections any other accepting worker holds (None: no other worker)."""
        cells = self._cells
        least = None
        for i in range(self.slots):
            if i != slot and cells[2 * i]:
                count = cells[2 * i + 1]
                if least is None or count < least:
                    least = count
        return least


BOARD = ConnectionBoard()  # created in the master when gunicorn loads this worker class


class BalancedThreadWorker(IntakeThreadWorker):
    """gunicorn's gthread worker, reading requests in its loop (api/intake.py) and accepting
    only while it is among the least loaded."""

    board: ConnectionBoard | None = BOARD

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)  # in the master, before the fork
        self.board_slot = self.board.claim() if self.board is not None else None
        self._published: int | None = None
        self._defer_until = 0.0  # listening paused until then
        self._deferring_since: float | None = None
        self._last_deferred = 0.0

    def run(self) -> None:
        self._publish()  # the app is loaded: from now on this worker accepts
        self.log.info("Worker %s accepting (connection board slot %s)", self.pid, self.board_slot)
        super().run()

    # --- the board -----------------------------------------------------------------------
    def _publish(self) -> None:
        board = self.board
        if self.board_slot is None or board is None:  # a slot is only claimed from a board
            return
        if not self.alive:  # stopping: siblings must not leave connections to it
            if self._published is not None:
                board.withdraw(self.board_slot)
                self._published = None
        elif self.nr_conns != self._published:
            self._published = self.nr_conns
            board.publish(self.board_slot, self.pid, self.nr_conns)

    def _should_defer(self, now: float) -> bool:
        if self.board_slot is None or self.board is None:
            return False
        least = self.board.least_other(self.board_slot)
        if least is None or self.nr_conns <= least:
            self._deferring_since = None
            return False
        if self._deferring_since is None or now - self._last_deferred > 2 * DEFER_SECONDS:
            self._deferring_since = now  # a new stretch of deferring, not the last one's tail
        self._last_deferred = now
        return now - self._deferring_since < MAX_DEFER_SECONDS

    # --- lingering -------------------------------------------------------------------------
    def handle(self, conn):
        result = super().handle(conn)
        for _ in range(LINGER_REQUESTS):
            if result is not True or not self._next_request_soon(conn):
                break
            result = super().handle(conn)
        return result

    def _next_request_soon(self, conn) -> bool:
        """Whether this thread should serve ``conn``'s next request itself: it is already
        buffered whole, or arrives whole within LINGER_SECONDS while no other connection needs
        a thread. Bytes read meanwhile stay in the parser's buffer for whoever serves it."""
        if not self.alive or conn.is_http2 or self._requests_queued():
            return False
        buf = conn.parser.unreader.buf
        frame = framing.RequestFrame(self.frame_limits)
        if _ready(frame.update(buf.getvalue())):
            return True  # read ahead with the last request
        if self.nr_conns > self.cfg.threads:
            return False
        deadline = time.monotonic() + LINGER_SECONDS
        poller = select.poll()
        poller.register(conn.sock.fileno(), select.POLLIN)
        while (left := deadline - time.monotonic()) > 0 and poller.poll(left * 1000):
            try:
                data = conn.sock.recv(READ_BYTES, socket.MSG_DONTWAIT)
            except (BlockingIOError, InterruptedError):
                continue
            except OSError:
                return False  # the main loop finds the socket readable and closes it
            if not data:
                return False  # closed: likewise
            buf.seek(0, io.SEEK_END)
            buf.write(data)
            if _ready(frame.update(buf.getvalue())):
                return True
        return False

    def _requests_queued(self) -> bool:
        """Whether a request waits for a free thread (unknown: assume so, do not linger)."""
        queue = getattr(self.tpool, "_work_queue", None)  # ThreadPoolExecutor's, since 3.2
        return queue is None or not queue.empty()

    # --- gthread hooks ---------------------------------------------------------------------
    def accept(self, listener) -> None:
        now = time.monotonic()
        if self._should_defer(now):
            self._defer_until = now + DEFER_SECONDS
            super().set_accept_enabled(False)
            return
        self._deferring_since = None
        super().accept(listener)  # published after the dispatch (wait_for_and_dispatch_events)

    def set_accept_enabled(self, enabled: bool) -> None:
        if enabled and time.monotonic() < self._defer_until:
            return  # paused: run() re-enables once the pause is over
        super().set_accept_enabled(enabled)

    def wait_for_and_dispatch_events(self, timeout: float) -> None:
        if not self._accepting and self.alive:
            pause = self._defer_until - time.monotonic()
            if pause > 0:
                timeout = min(timeout, pause)
        super().wait_for_and_dispatch_events(timeout)
        self._publish()  # finish_request and the keep-alive reaper run in here

    def murder_keepalived(self, force: bool = False) -> None:
        super().murder_keepalived(force)
        self._publish()

    def murder_pending(self) -> None:
        super().murder_pending()
        self._publish()


def _ready(stage: framing.Stage) -> bool:
    """Whether gunicorn's parser can take the request without waiting on the socket."""
    return stage is framing.Stage.COMPLETE or stage is framing.Stage.MALFORMED


def release_slot(worker) -> None:
    """In the master, once a worker was reaped (gunicorn's child_exit hook): free its slot."""
    slot = getattr(worker, "board_slot", None)
    if slot is not None and BOARD is not None:
        BOARD.free(slot)
