"""The webhook HTTP client: kept-alive connections (urllib3's ``HTTPConnection`` and
``HTTPSConnection``) to the checked, pinned address of each target, with Host and TLS
SNI/certificate checks on the URL's name.

Idle connections are kept per (scheme, name, port, address), at most ``pool_size`` each, the
least recently used targets' closed past ``max_pools``. A request takes an idle connection
(one the receiver closed meanwhile is reconnected), sends with ``request`` and reads with
``getresponse`` on it: urllib3's connection layer without its pool's ``urlopen`` machinery
(retries, redirects, URL parsing, timeouts objects), which cost most of a delivery's CPU.
Redirects are never followed (a 3xx could point anywhere, including inward). A response body is
read to ``BODY_CAP`` bytes and thrown away; a longer or chunked one closes its connection
instead of being drained. A receiver that answers and closes while the request is still being
sent (EPIPE, ECONNRESET) has answered: that answer is read and stands, as through the pool.
A reused connection that the receiver closed just as it was reused (a reset, a broken pipe or a
close before any byte of an answer) is no answer: the POST is sent once more at once on a new
connection (webhooks are at-least-once under a stable ``webhook-id``); a new connection failing
so is a DeliveryError like any.

``total_timeout`` is a deadline for the whole exchange, counted from the start of the request:
the TCP connect waits at most ``connect_timeout`` (and never past the deadline), the send and
every read of the answer (status line, headers, body) at most what is left of it, so a receiver
trickling its answer a byte at a time cannot hold a sender slot for longer. Once the status
has arrived it is the receiver's answer: a body still incomplete at the deadline closes the
connection and the answer stands. The TLS handshake of a new https connection is the one
exception: ssl reads it internally, each read waiting at most ``min(connect_timeout, time
left)``, so a peer trickling its handshake can overrun the deadline (the next step then fails
at once); kept-alive connections make handshakes rare.
"""

from __future__ import annotations

import email.utils
import errno
import http.client
import io
import socket
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import cast

from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.exceptions import HTTPError as Urllib3Error
from urllib3.util.ssl_match_hostname import CertificateError  # a ValueError, not an OSError

from bridge.webhooks.ssrf import Target

BODY_CAP = 4096  # bytes of a response body read (and discarded)
USER_AGENT = "smpp-bridge-webhooks/1"
MAX_INTERIM_ANSWERS = 10  # 102/103 answers skipped before the final one (then: broken answer)

_Key = tuple[str, str, int, str]  # scheme, host name, port, pinned address


class DeliveryError(Exception):
    """The request got no HTTP answer (connect error, timeout, reset, TLS); retryable."""


class _ClosedUnanswered(DeliveryError):
    """The receiver closed the connection before any byte of an answer (reset, broken pipe,
    closed without a response); on a reused connection, ``post`` tries once more at once."""


# Errors of a connection the receiver closed (RemoteDisconnected is a ConnectionResetError).
_CLOSED_ERRORS = (ConnectionResetError, BrokenPipeError, ConnectionAbortedError)


@dataclass(frozen=True)
class Answer:
    status: int
    retry_after: float | None  # seconds the receiver asked us to wait (Retry-After), or None


class WebhookClient:
    """POSTs to pinned targets; thread-safe."""

    def __init__(
        self,
        connect_timeout: float,
        total_timeout: float,
        pool_size: int = 4,
        max_pools: int = 512,
        ca_certs: str | None = None,
    ) -> None:
        self._connect_timeout = min(connect_timeout, total_timeout)
        self._total = total_timeout
        self._pool_size = pool_size
        self._max_pools = max_pools
        self._ca_certs = ca_certs
        self._idle: OrderedDict[_Key, list[_DeadlineConnection]] = OrderedDict()
        self._lock = threading.Lock()

    def post(self, target: Target, body: bytes, headers: dict[str, str]) -> Answer:
        """POST ``body`` to ``target`` (its first address); DeliveryError without an answer.
        A kept-alive connection the receiver closed as it was reused (no byte of an answer)
        is followed at once by one more try on a new connection."""
        key = (target.scheme, target.host, target.port, target.addresses[0])
        deadline = time.monotonic() + self._total
        conn = self._take(key, target)
        if conn.sock is not None:  # reused: the receiver may close it just as we send
            try:
                return self._exchange(key, conn, target, body, headers, deadline)
            except _ClosedUnanswered:
                conn = self._new_connection(target)  # the event has a stable id: safe to resend
        return self._exchange(key, conn, target, body, headers, deadline)

    def _exchange(
        self,
        key: _Key,
        conn: _DeadlineConnection,
        target: Target,
        body: bytes,
        headers: dict[str, str],
        deadline: float,
    ) -> Answer:
        """One request and its answer on ``conn``, which is given back for reuse or closed."""
        try:
            if conn.sock is None:
                conn.timeout = min(self._connect_timeout, _left(deadline))
                conn.connect()
            conn.timeout = _left(deadline)  # request() and getresponse() apply it to the socket
            conn.deadline, conn.received = deadline, 0
            sent = _send(conn, target, body, headers)
            resp = conn.getresponse()
        except (Urllib3Error, OSError, http.client.HTTPException, CertificateError) as exc:
            conn.close()
            if conn.received == 0 and isinstance(exc, _CLOSED_ERRORS):
                raise _ClosedUnanswered(_describe(exc)) from None
            raise DeliveryError(_describe(exc)) from None
        answer = Answer(resp.status, retry_after(resp.headers.get("Retry-After")))
        reuse = False
        try:
            resp.read(BODY_CAP, decode_content=False)
            # reused unless cut while sent, longer than read, or chunked
            reuse = sent and resp.length_remaining == 0 and conn.sock is not None
        except (Urllib3Error, OSError, http.client.HTTPException):
            pass  # slow or cut body: the status was the answer
        if reuse:
            self._give_back(key, conn)
        else:
            resp.close()
            conn.close()
        return answer

    def close(self) -> None:
        with self._lock:
            idle, self._idle = list(self._idle.values()), OrderedDict()
        for conns in idle:
            for conn in conns:
                conn.close()

    def _take(self, key: _Key, target: Target) -> _DeadlineConnection:
        """An idle connection of ``key`` (reconnected if the receiver closed it), or a new one."""
        with self._lock:
            conns = self._idle.get(key)
            conn = conns.pop() if conns else None
        if conn is None:
            return self._new_connection(target)
        if conn.sock is not None and not conn.is_connected:  # closed by the receiver
            conn.close()
        return conn

    def _give_back(self, key: _Key, conn: _DeadlineConnection) -> None:
        old: list[_DeadlineConnection] = []
        with self._lock:
            conns = self._idle.get(key)
            if conns is None:
                conns = self._idle[key] = []
                if len(self._idle) > self._max_pools:
                    old = self._idle.popitem(last=False)[1]
            else:
                self._idle.move_to_end(key)
            if len(conns) < self._pool_size:
                conns.append(conn)
            else:
                old.append(conn)
        for extra in old:
            extra.close()

    def _new_connection(self, target: Target) -> _DeadlineConnection:
        address = target.addresses[0]
        if target.scheme == "https":
            return _DeadlineTLSConnection(
                address,
                target.port,
                cert_reqs="CERT_REQUIRED",
                ca_certs=self._ca_certs,
                assert_hostname=target.host,
                server_hostname=target.host,
            )
        return _DeadlineConnection(address, target.port)


# A send that fails with these may have an answer behind it: the receiver answered and closed
# without reading the whole body (a 413, or a 2xx that acknowledges at once).
_CLOSED_WHILE_SENDING = (errno.EPIPE, errno.ECONNRESET, errno.EPROTOTYPE)


def _send(conn: _DeadlineConnection, target: Target, body: bytes, headers: dict[str, str]) -> bool:
    """Send the POST on ``conn``; False when the receiver closed the connection while it was
    sent: its answer, if it gave one, is still read (as urllib3's pool does), so a final status
    is not retried and a 2xx not delivered again; the connection is not reused."""
    try:
        conn.request(
            "POST",
            target.path,
            body=body,
            headers={
                "Host": target.host_header,
                "Content-Type": "application/json",
                "User-Agent": USER_AGENT,
                **headers,
            },
            preload_content=False,
            decode_content=False,
        )
    except OSError as exc:
        if exc.errno not in _CLOSED_WHILE_SENDING:
            raise
        return False
    return True


def _left(deadline: float) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError("timed out: the request was not sent within the timeout")
    return left


class _DeadlineReader(io.RawIOBase):
    """The socket as a readable stream whose every read waits at most until ``deadline``; the
    bytes it reads are counted on ``conn.received``."""

    def __init__(self, sock: socket.socket, conn: _DeadlineConnection, deadline: float) -> None:
        super().__init__()
        self._sock = sock
        self._conn = conn
        self._deadline = deadline

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        left = self._deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("timed out: the answer was not complete within the timeout")
        self._sock.settimeout(left)
        n = self._sock.recv_into(buffer)
        self._conn.received += n
        return n


class _DeadlineSocket:
    """What http.client's response is built on: it only calls ``makefile("rb")``."""

    def __init__(self, sock: socket.socket, conn: _DeadlineConnection, deadline: float) -> None:
        self._sock = sock
        self._conn = conn
        self._deadline = deadline

    def makefile(self, mode: str = "rb") -> io.BufferedReader:
        return io.BufferedReader(_DeadlineReader(self._sock, self._conn, self._deadline))


class _FinalResponse(http.client.HTTPResponse):
    """The final answer: http.client skips only ``100 Continue``, so the other interim answers
    a receiver (or a proxy in front of it) may send first, ``102 Processing`` and ``103 Early
    Hints``, would be taken as the answer (a 103 is no 2xx: the event would be dead-lettered).
    They are read and skipped too, at most MAX_INTERIM_ANSWERS of them (then the exchange
    fails, like any broken answer). ``101 Switching Protocols`` stays an answer (a refusal)."""

    def _read_status(self):
        for _ in range(MAX_INTERIM_ANSWERS):
            version, status, reason = super()._read_status()  # type: ignore[misc]
            if not 101 < status < 200:  # 100 is begin()'s own to skip
                return version, status, reason
            http.client.parse_headers(self.fp)  # the interim answer's headers, discarded
        raise http.client.HTTPException(f"more than {MAX_INTERIM_ANSWERS} interim answers")


class _DeadlineConnection(HTTPConnection):
    """Reads each answer against the request's deadline (set by ``WebhookClient.post``)."""

    deadline: float | None = None
    received = 0  # bytes of the current answer read so far

    def response_class(self, sock, *args, **kwargs):  # type: ignore[override]
        if self.deadline is None:  # not sent through WebhookClient.post: plain reads
            return _FinalResponse(sock, *args, **kwargs)
        wrapped = cast(socket.socket, _DeadlineSocket(sock, self, self.deadline))  # only makefile
        return _FinalResponse(wrapped, *args, **kwargs)


class _DeadlineTLSConnection(_DeadlineConnection, HTTPSConnection):
    pass


def retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date); None if absent/bad."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def _describe(exc: BaseException) -> str:
    """One short line: the innermost reason (timeout, refused, reset...)."""
    reason = getattr(exc, "reason", None)
    if not isinstance(reason, BaseException):  # ssl.SSLError's reason is a word, not the cause
        reason = exc
    text = str(reason) or type(reason).__name__
    if "timed out" in text.lower() or "timeout" in type(reason).__name__.lower():
        return f"timeout: {text}"[:300]
    return f"{type(reason).__name__}: {text}"[:300]
