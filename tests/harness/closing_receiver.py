"""A receiver that keeps connections alive but closes each one, unanswered, when a second
request comes on it: what a receiver whose idle timeout fires just as the sender reuses the
connection looks like (the request is sent, the connection closed, no byte answered).

``answer_first=False`` answers nothing at all (every connection is closed at its first request).
Each request is recorded as (connection number, webhook-id, answered).
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator

from tests.harness.listener import Listener

ANSWER = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: keep-alive\r\n\r\n"
POLL = 0.1  # seconds between two looks at the stop flag


class ClosingReceiver(Listener):
    def __init__(self, answer_first: bool = True) -> None:
        self.answer_first = answer_first
        self.requests: list[tuple[int, str, bool]] = []
        self._lock = threading.Lock()
        super().__init__(POLL)

    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def serve(self, conn: socket.socket, number: int) -> None:
        with conn, contextlib.suppress(OSError):
            conn.settimeout(POLL)
            answer = self.answer_first
            while (request := self._read_request(conn)) is not None:
                with self._lock:
                    self.requests.append((number, _webhook_id(request), answer))
                if not answer:
                    return  # closed, unanswered
                conn.sendall(ANSWER)
                answer = False  # the next request on this connection finds it closing

    def _read_request(self, conn: socket.socket) -> bytes | None:
        """Headers and Content-Length body of one request; None once closed or stopping."""
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = self._recv(conn)
            if not chunk:
                return None
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        while len(body) < length:
            chunk = self._recv(conn)
            if not chunk:
                return None
            body += chunk
        return head

    def _recv(self, conn: socket.socket) -> bytes:
        while not self.stopping.is_set():
            with contextlib.suppress(TimeoutError):
                return conn.recv(65536)
        return b""


def _webhook_id(head: bytes) -> str:
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"webhook-id":
            return value.strip().decode()
    return ""


@contextlib.contextmanager
def closing_receiver(answer_first: bool = True) -> Iterator[ClosingReceiver]:
    server = ClosingReceiver(answer_first)
    try:
        yield server
    finally:
        server.stop()
