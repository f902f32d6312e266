"""The webhook HTTP client: pooled keep-alive connections (urllib3) to the checked, pinned
address of each target, with Host and TLS SNI/certificate checks on the URL's name.

One pool per (scheme, name, port, address), at most ``pool_size`` idle connections each, the
least recently used pools closed past ``max_pools``. Redirects are never followed (a 3xx could
point anywhere, including inward). A response body is read to ``BODY_CAP`` bytes and thrown
away; a longer or chunked one closes its connection instead of being drained.

``total_timeout`` is a deadline for the whole exchange. urllib3's ``Timeout(total=...)`` bounds
each socket read, so a receiver trickling its answer a byte at a time could hold a sender slot
for as long as it liked; here every read of the answer (status line, headers, body) waits at
most what is left of the deadline. Once the status has arrived it is the receiver's answer: a
body still incomplete at the deadline closes the connection and the answer stands.
"""

from __future__ import annotations

import email.utils
import http.client
import io
import socket
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import cast

import urllib3
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.exceptions import HTTPError as Urllib3Error

from bridge.webhooks.ssrf import Target

BODY_CAP = 4096  # bytes of a response body read (and discarded)
USER_AGENT = "smpp-bridge-webhooks/1"


class DeliveryError(Exception):
    """The request got no HTTP answer (connect error, timeout, reset, TLS); retryable."""


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
        self._timeout = urllib3.Timeout(connect=connect_timeout, total=total_timeout)
        self._pool_size = pool_size
        self._max_pools = max_pools
        self._ca_certs = ca_certs
        self._pools: OrderedDict[tuple[str, str, int, str], urllib3.HTTPConnectionPool] = (
            OrderedDict()
        )
        self._lock = threading.Lock()

    def post(self, target: Target, body: bytes, headers: dict[str, str]) -> Answer:
        """POST ``body`` to ``target`` (its first address); DeliveryError without an answer."""
        pool = self._pool(target)
        all_headers = {
            "Host": target.host_header,
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            **headers,
        }
        try:  # the deadline of the answer's reads starts here (see _DeadlineConnection)
            resp = pool.urlopen(
                "POST",
                target.path,
                body=body,
                headers=all_headers,
                retries=False,
                redirect=False,
                preload_content=False,
                timeout=self._timeout,
                assert_same_host=False,
            )
        except (Urllib3Error, OSError) as exc:
            raise DeliveryError(_describe(exc)) from None
        answer = Answer(resp.status, retry_after(resp.headers.get("Retry-After")))
        try:
            resp.read(BODY_CAP, decode_content=False)
            if resp.length_remaining != 0:  # longer, chunked or unknown: do not drain
                resp.close()
        except (Urllib3Error, OSError):  # slow or cut body: the status was the answer
            resp.close()
        finally:
            resp.release_conn()
        return answer

    def close(self) -> None:
        with self._lock:
            pools, self._pools = list(self._pools.values()), OrderedDict()
        for pool in pools:
            pool.close()

    def _pool(self, target: Target) -> urllib3.HTTPConnectionPool:
        key = (target.scheme, target.host, target.port, target.addresses[0])
        with self._lock:
            pool = self._pools.get(key)
            if pool is not None:
                self._pools.move_to_end(key)
                return pool
            pool = self._new_pool(target)
            self._pools[key] = pool
            old = self._pools.popitem(last=False)[1] if len(self._pools) > self._max_pools else None
        if old is not None:
            old.close()
        return pool

    def _new_pool(self, target: Target) -> urllib3.HTTPConnectionPool:
        address = target.addresses[0]
        if target.scheme == "https":
            return _HTTPSPool(
                address,
                target.port,
                maxsize=self._pool_size,
                block=False,
                cert_reqs="CERT_REQUIRED",
                ca_certs=self._ca_certs,
                assert_hostname=target.host,
                server_hostname=target.host,
            )
        return _HTTPPool(address, target.port, maxsize=self._pool_size)


class _DeadlineReader(io.RawIOBase):
    """The socket as a readable stream whose every read waits at most until ``deadline``."""

    def __init__(self, sock: socket.socket, deadline: float) -> None:
        super().__init__()
        self._sock = sock
        self._deadline = deadline

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        left = self._deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("timed out: the answer was not complete within the timeout")
        self._sock.settimeout(left)
        return self._sock.recv_into(buffer)


class _DeadlineSocket:
    """What http.client's response is built on: it only calls ``makefile("rb")``."""

    def __init__(self, sock: socket.socket, deadline: float) -> None:
        self._sock = sock
        self._deadline = deadline

    def makefile(self, mode: str = "rb") -> io.BufferedReader:
        return io.BufferedReader(_DeadlineReader(self._sock, self._deadline))


class _DeadlineConnection(HTTPConnection):
    """Reads each answer against one deadline: what urllib3 left of the total timeout (its
    read timeout, set just before the response is read), counted from then on."""

    def response_class(self, sock, *args, **kwargs):  # type: ignore[override]
        if not isinstance(self.timeout, int | float):  # no timeout: plain reads
            return http.client.HTTPResponse(sock, *args, **kwargs)
        deadline = time.monotonic() + self.timeout
        wrapped = cast(socket.socket, _DeadlineSocket(sock, deadline))  # only makefile is used
        return http.client.HTTPResponse(wrapped, *args, **kwargs)


class _DeadlineTLSConnection(_DeadlineConnection, HTTPSConnection):
    pass


class _HTTPPool(urllib3.HTTPConnectionPool):
    ConnectionCls = _DeadlineConnection


class _HTTPSPool(urllib3.HTTPSConnectionPool):
    ConnectionCls = _DeadlineTLSConnection


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
    """One short line: the innermost reason urllib3 wraps (timeout, refused, reset...)."""
    reason = getattr(exc, "reason", None) or exc
    text = str(reason) or type(reason).__name__
    if "timed out" in text.lower() or "timeout" in type(reason).__name__.lower():
        return f"timeout: {text}"[:300]
    return f"{type(reason).__name__}: {text}"[:300]
