"""A real webhook receiver for tests and the bench: a threaded HTTP/1.1 server (keep-alive) on
127.0.0.1 that records every request and answers as told.

``answers`` is a list of scripted replies used in order (then ``default``): an int status, a
(status, {headers}) pair, or HANG (hold the request until ``release()`` or the server stops,
bounded; then 200). ``answer_for`` (path -> callable) overrides per path.
"""

from __future__ import annotations

import contextlib
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

HANG = "hang"
HANG_LIMIT = 60.0  # seconds a hung request is held at most


@dataclass(frozen=True)
class Request:
    path: str
    headers: dict[str, str]  # lower-case names
    body: bytes
    at: float  # time.monotonic() when it arrived
    status: int  # what we answered (0 = hung)


class Receiver:
    def __init__(self, default: Any = 200) -> None:
        self.default = default
        self.answers: list[Any] = []
        self.answer_for: dict[str, Callable[[Request], Any]] = {}
        self.delay = 0.0  # seconds each request takes before its answer
        self.requests: list[Request] = []
        self._lock = threading.Lock()
        self._released = threading.Event()
        self.server = _Server(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def url(self, path: str = "/hook", host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"

    def start(self) -> Receiver:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._released.set()
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(5)

    def release(self) -> None:
        """Let every hung request answer (with the default) and hang no more."""
        self._released.set()

    def accepted(self) -> list[Request]:
        with self._lock:
            return [r for r in self.requests if 200 <= r.status < 300]

    def accepted_ids(self) -> list[str]:
        return [r.headers.get("webhook-id", "") for r in self.accepted()]

    def _next_answer(self, path: str, probe: Request) -> Any:
        with self._lock:
            if path in self.answer_for:
                return self.answer_for[path](probe)
            return self.answers.pop(0) if self.answers else self.default

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive
            disable_nagle_algorithm = True  # headers and body are two writes

            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                if len(body) < length:  # the sender died between headers and body: no request
                    self.close_connection = True  # (a real receiver's framework drops it too)
                    return
                headers = {k.lower(): v for k, v in self.headers.items()}
                at = time.monotonic()
                answer = receiver._next_answer(self.path, Request(self.path, headers, body, at, 0))
                if answer == HANG and not receiver._released.is_set():
                    hung = Request(self.path, headers, body, at, 0)  # status 0 while held
                    with receiver._lock:
                        receiver.requests.append(hung)
                    receiver._released.wait(HANG_LIMIT)
                    status, extra = _status(200 if receiver.default == HANG else receiver.default)
                    with receiver._lock:
                        index = next(i for i, r in enumerate(receiver.requests) if r is hung)
                        receiver.requests[index] = replace(hung, status=status)
                    self._reply(status, extra)
                    return
                if answer == HANG:
                    answer = 200
                if receiver.delay:
                    time.sleep(receiver.delay)  # a receiver that takes its time
                status, extra = _status(answer)
                with receiver._lock:
                    receiver.requests.append(Request(self.path, headers, body, at, status))
                self._reply(status, extra)

            def _reply(self, status: int, extra: dict[str, str]) -> None:
                with contextlib.suppress(OSError):
                    self.send_response(status)
                    for name, value in extra.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", "2")
                    self.end_headers()
                    self.wfile.write(b"ok")

            def log_message(self, *args: Any) -> None:  # quiet
                pass

        return Handler


class _Server(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], ConnectionError):
            return  # a sender killed mid-request (the crash test): not news
        super().handle_error(request, client_address)


def _status(answer: Any) -> tuple[int, dict[str, str]]:
    if isinstance(answer, tuple):
        return int(answer[0]), dict(answer[1])
    return int(answer), {}


@contextlib.contextmanager
def receiver(default: Any = 200) -> Iterator[Receiver]:
    """A started Receiver, stopped (hung requests released) after the block."""
    r = Receiver(default).start()
    try:
        yield r
    finally:
        r.stop()
