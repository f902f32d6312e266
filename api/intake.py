"""A gthread worker whose event loop reads each request whole before a thread gets it.

gunicorn's gthread worker hands a connection to a thread as soon as it is readable, and the
thread's parser then blocks on the socket until the headers and the body are in: a client that
trickles its request holds a thread, and 8 of them (2 workers x 8 threads: 16) leave every other
client unanswered. Here the main loop reads a request's bytes (non-blocking, on the worker's
selector) into a per-connection buffer until :mod:`api.framing` says the request is complete,
and only then hands the connection to a thread, the buffer placed in front of gunicorn's parser:
a thread never waits on the network for a request.

Deadlines, from :class:`IntakeLimits` (``BRIDGE_HEADER_TIMEOUT``, ``BRIDGE_BODY_TIMEOUT``): the
header block must be complete ``header_timeout`` after the connection was accepted (for a
kept-alive connection: after the first byte of its next request; an idle one is the keepalive
setting's business), the body ``body_timeout`` after its headers. A request that misses one is
answered 408 and closed; a connection that sent nothing is closed without an answer (when the
worker stops, after ``STOP_KEEPALIVE_LINGER``, gthread's grace for kept-alive ones). A body
longer than ``max_body_bytes`` (``BRIDGE_MAX_BODY_BYTES``) is answered 413 from its
Content-Length or chunk sizes, before it is read; a request line past gunicorn's bound gets
414 and a header block past it 431, as gunicorn would answer them. Such an answer to a path
under ``/api/v2`` is made by the app, in a thread, from a minimal request (api/refusals.py): it
is counted and carries the rate-limit headers like every ``/api/v2`` answer. After such an
answer the connection is half-closed and what the client still sends is read and dropped for
``CLOSE_LINGER_SECONDS``, so the client sees the answer rather than a reset.

Plain HTTP/1.x only: with TLS, the PROXY protocol or HTTP/2 prior knowledge configured in
gunicorn (the API uses none; a reverse proxy terminates TLS), connections go to threads as in
gthread.
"""

from __future__ import annotations

import heapq
import itertools
import selectors
import socket
import time
from concurrent.futures import CancelledError
from dataclasses import dataclass
from functools import partial

from gunicorn.http.errors import ParseException
from gunicorn.http.message import Request
from gunicorn.workers.gthread import STOP_KEEPALIVE_LINGER, ThreadWorker

from api import framing, refusals
from api.gunicorn_errors import ADVICE, answering, json_error
from api.params import too_large_message

READ_BYTES = 65536  # largest single recv() of a request in the loop
CLOSE_LINGER_SECONDS = 2.0  # after a 408/413: how long what the client still sends is dropped
CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"


@dataclass(frozen=True)
class IntakeLimits:
    """The deadlines and the body limit (bridge.config checks them: positive seconds)."""

    header_timeout: float = 10.0  # seconds for a request's header block (see the docstring)
    body_timeout: float = 30.0  # seconds for its body, from the end of the headers
    max_body_bytes: int = 1_048_576  # longer bodies are answered 413 before they are read


class _Reading:
    """A connection whose request the loop is reading (or, ``closing``, whose answer it sent)."""

    __slots__ = ("conn", "buf", "frame", "deadline", "in_body", "closing", "registered")

    def __init__(self, conn, buf: bytearray, frame: framing.RequestFrame, deadline: float):
        self.conn, self.buf, self.frame, self.deadline = conn, buf, frame, deadline
        self.in_body = False  # the header block is complete: the body deadline runs
        self.closing = False  # answered (408, 413, 431): input is dropped until the close
        self.registered = False  # on the selector, its deadline in the heap


class IntakeThreadWorker(ThreadWorker):
    """gunicorn's gthread worker, with requests read whole by the main loop."""

    intake_limits = IntakeLimits()  # post_fork (api/gunicorn_conf.py) sets the configured ones

    def init_process(self) -> None:
        cfg = self.cfg
        self.reads_in_loop = not (
            cfg.is_ssl or cfg.proxy_protocol != "off" or cfg.http2_cleartext != "off"
        )
        self.frame_limits = framing.limits_for(cfg, self.intake_limits.max_body_bytes)
        self._reading: dict[object, _Reading] = {}
        self._deadlines: list[tuple[float, int, _Reading]] = []  # a heap; stale entries skipped
        self._order = itertools.count()
        self._idle_until: float | None = None  # stopping: when connections that sent nothing close
        super().init_process()  # runs the worker

    # --- gthread hooks: every way a connection reaches a thread passes here ---------------------
    def enqueue_req(self, conn) -> None:
        """Called for a new connection, a kept-alive one that became readable, and one whose
        last request left bytes behind: read its request in the loop first."""
        if not self.reads_in_loop or conn.is_http2:
            super().enqueue_req(conn)
            return
        held = conn.parser.unreader.take_buffered() if conn.parser is not None else b""
        frame = framing.RequestFrame(self.frame_limits)
        deadline = time.monotonic() + self.intake_limits.header_timeout
        reading = _Reading(conn, bytearray(held), frame, deadline)
        conn.sock.setblocking(False)
        self._reading[conn] = reading
        if held and self._advance(reading):
            return
        self._readable(reading, conn.sock)  # a kept-alive connection has bytes waiting already
        self._wait_for_bytes(reading)

    def handle_request(self, req, conn):
        if getattr(conn, "continue_sent", False):
            conn.continue_sent = False
            req._expected_100_continue = False  # the loop answered it: gunicorn must not again
        return super().handle_request(req, conn)

    def handle_error(self, req, client, addr, exc) -> None:
        """gunicorn's answer to a request its parser refused (in a thread): for a path under
        /api/v2, made by the app, counted against the client address (api/refusals.py)."""
        request = refusals.parsed_by_gunicorn(exc)
        if request is None:
            super().handle_error(req, client, addr, exc)
            return
        with answering(partial(refusals.answer, self.wsgi, request, addr)):
            super().handle_error(req, client, addr, exc)

    def _keepalive_after(self, conn, keepalive):
        """gthread drains a body the app did not read before it keeps the connection. A body
        found broken there (a bad chunk size, terminator or trailer) comes after the request's
        answer: the connection is closed, and no second answer is written after the first one
        (gunicorn's handle_error would write its 400, answering no request)."""
        try:
            return super()._keepalive_after(conn, keepalive)
        except ParseException as exc:
            address = conn.client[0] if isinstance(conn.client, tuple) else conn.client
            self.log.warning("Invalid request body from ip=%s, after its answer: %s", address, exc)
            return False

    def wait_for_and_dispatch_events(self, timeout: float) -> None:
        now = time.monotonic()
        if self._deadlines:
            timeout = max(0.0, min(timeout, self._deadlines[0][0] - now))
        if self._idle_until is not None and self._idle_until > now:
            timeout = min(timeout, self._idle_until - now)
        super().wait_for_and_dispatch_events(timeout)
        self._expire()

    # --- reading -----------------------------------------------------------------------------
    def _wait_for_bytes(self, reading: _Reading) -> None:
        """Have the selector call _readable for more (once), with the deadline in the heap."""
        if self._reading.get(reading.conn) is not reading or reading.registered:
            return  # handed over or closed already, or waiting already
        self.poller.register(
            reading.conn.sock, selectors.EVENT_READ, partial(self._readable, reading)
        )
        reading.registered = True
        self._push_deadline(reading)

    def _readable(self, reading: _Reading, sock) -> None:
        if self._reading.get(reading.conn) is not reading:
            return  # handed over or closed by an earlier event in this round
        try:
            data = sock.recv(READ_BYTES)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""  # reset by the peer: nothing to answer
        if not data:
            self._close(reading)
            return
        if reading.closing:
            return  # dropped: the answer is sent
        reading.buf += data
        self._advance(reading)

    def _advance(self, reading: _Reading) -> bool:
        """Act on what is buffered; True once the connection has left the loop's reading."""
        stage = reading.frame.update(reading.buf)
        if stage is framing.Stage.COMPLETE or stage is framing.Stage.MALFORMED:
            self._hand_over(reading)  # gunicorn answers a malformed one from the buffer
            return True
        if stage is framing.Stage.TOO_LARGE:
            limit = self.intake_limits.max_body_bytes
            text = too_large_message(limit)
            self._refuse(reading, 413, "Request Entity Too Large", text, headers_read=True)
            return True
        if stage is framing.Stage.HEADERS_TOO_LARGE:
            self._refuse(reading, 431, "Request Header Fields Too Large", ADVICE[431])
            return True
        if stage is framing.Stage.LINE_TOO_LONG:
            self._refuse(reading, 414, "URI Too Long", ADVICE[414])
            return True
        if stage is framing.Stage.BODY and not reading.in_body:
            reading.in_body = True
            reading.deadline = time.monotonic() + self.intake_limits.body_timeout
            if reading.registered:
                self._push_deadline(reading)
            if reading.frame.expects_continue:
                self._send(reading.conn.sock, CONTINUE)  # the client waits for it to send the body
                reading.conn.continue_sent = True
        return False

    def _hand_over(self, reading: _Reading) -> None:
        self._forget(reading)
        conn = reading.conn
        if conn.parser is None:
            conn.init()  # the plain HTTP/1 parser (no TLS, no HTTP/2 here)
        if conn.parser.mesg_class is Request:  # gunicorn's HTTP/1 parser: refusals read it
            conn.parser.mesg_class = refusals.RefusingRequest
        conn.parser.unreader.unread(bytes(reading.buf))
        conn.data_ready = True  # gthread's handle() must not wait for data
        super().enqueue_req(conn)

    # --- deadlines and refusals --------------------------------------------------------------
    def _push_deadline(self, reading: _Reading) -> None:
        heapq.heappush(self._deadlines, (reading.deadline, next(self._order), reading))

    def _expire(self) -> None:
        now = time.monotonic()
        while self._deadlines and self._deadlines[0][0] <= now:
            deadline, _, reading = heapq.heappop(self._deadlines)
            if self._reading.get(reading.conn) is reading and reading.deadline == deadline:
                self._time_out(reading)
        if not self.alive:
            # Stopping: a connection that has sent nothing yet gets as long as gthread gives a
            # kept-alive one (STOP_KEEPALIVE_LINGER) to send its request, which is then answered
            # with "Connection: close"; after that it is closed without an answer.
            if self._idle_until is None:
                self._idle_until = now + STOP_KEEPALIVE_LINGER
            if now >= self._idle_until:
                for reading in [r for r in self._reading.values() if not r.buf.strip(b"\r\n")]:
                    self._close(reading)

    def _time_out(self, reading: _Reading) -> None:
        if reading.closing or not reading.buf.strip(b"\r\n"):
            self._close(reading)  # lingered long enough, or never sent a request
        elif reading.in_body:
            text = (
                f"The request body did not arrive within {self.intake_limits.body_timeout:g} "
                "seconds of its headers; send the whole body without pausing."
            )
            self._refuse(reading, 408, "Request Timeout", text, headers_read=True)
        else:
            text = (
                f"The request headers did not arrive within "
                f"{self.intake_limits.header_timeout:g} seconds; send the whole request "
                "without pausing."
            )
            self._refuse(reading, 408, "Request Timeout", text)

    def _refuse(
        self, reading: _Reading, status: int, reason: str, text: str, headers_read: bool = False
    ) -> None:
        """Answer ``status`` and half-close. A request to a path under /api/v2 is answered by
        the app in a thread (counted, with the rate-limit headers; by its X-API-Key header
        only if ``headers_read``): the connection leaves the loop until that answer is made."""
        fallback = json_error(status, reason, text)
        try:
            request = refusals.minimal_request(reading.buf, headers_read)
        except Exception:  # never the loop's end: the plain answer
            self.log.exception("Could not read the request the worker refused")
            request = None
        if request is None:
            self._answer(reading, fallback)
            return
        client = reading.conn.client
        try:
            made = self.tpool.submit(refusals.answer, self.wsgi, request, client, status, text)
        except RuntimeError:  # the pool is shut down (the worker is leaving): the plain answer
            self._answer(reading, fallback)
            return
        self._forget(reading)
        made.add_done_callback(
            lambda done: self.method_queue.defer(self._app_answered, reading, done, fallback)
        )

    def _app_answered(self, reading: _Reading, made, fallback: bytes) -> None:
        try:
            answer = made.result()
        except (Exception, CancelledError):  # the worker's own answer, without the headers
            self.log.exception("The API could not answer a request the worker refused")
            answer = fallback
        self._reading[reading.conn] = reading
        self._answer(reading, answer)

    def _answer(self, reading: _Reading, answer: bytes) -> None:
        """Send ``answer`` and half-close; keep reading (and dropping) until the client closes
        or CLOSE_LINGER_SECONDS pass, so it sees the answer rather than a reset."""
        sock = reading.conn.sock
        self._send(sock, answer)
        try:
            sock.shutdown(socket.SHUT_WR)
        except OSError:
            self._close(reading)
            return
        reading.closing = True
        reading.buf = bytearray()
        reading.deadline = time.monotonic() + CLOSE_LINGER_SECONDS
        if reading.registered:
            self._push_deadline(reading)
        else:
            self._wait_for_bytes(reading)  # refused straight from enqueue_req

    @staticmethod
    def _send(sock, data: bytes) -> None:
        """One non-blocking send: these answers are small, a fresh socket buffer takes them."""
        try:
            sock.send(data)
        except OSError:
            pass  # the peer is gone or not reading: it loses an answer it stopped waiting for

    def _forget(self, reading: _Reading) -> None:
        self._reading.pop(reading.conn, None)
        if reading.registered:
            reading.registered = False
            try:
                self.poller.unregister(reading.conn.sock)
            except (KeyError, ValueError, OSError):
                pass  # closed under us

    def _close(self, reading: _Reading) -> None:
        self._forget(reading)
        self.nr_conns -= 1
        reading.conn.close()
