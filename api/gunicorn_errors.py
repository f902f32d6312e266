"""gunicorn's own error answers (malformed request line, URI too long, too many headers) as JSON.

gunicorn answers requests it cannot parse itself, before the app sees them, with an HTML page.
The contract says every error is ``{"error": ...}`` with the CORS and cache headers, so each
worker replaces ``gunicorn.util.write_error`` (the one function gunicorn uses for those pages)
with :func:`write_json_error` right after it forks (``post_fork`` in api/gunicorn_conf.py).
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
from collections.abc import Callable, Iterator

from gunicorn import util

log = logging.getLogger(__name__)
_answering = threading.local()  # .make: how this thread's refusal is answered (answering())

# What to tell the client for the statuses gunicorn produces itself.
ADVICE = {
    414: "The request line is too long; send the parameters in a POST body instead.",
    431: "Too many or too large request headers.",
    501: "Unsupported Transfer-Encoding; send a Content-Length or chunked body.",
}


def write_json_error(sock, status_int: int, reason: str, mesg: str) -> None:
    """Same signature as gunicorn.util.write_error; writes a JSON answer and closes. Inside
    :func:`answering`, the answer is the one its ``make`` returns (the app's, api/intake.py)."""
    text = ADVICE.get(status_int) or f"{reason}: {mesg}".rstrip(": ") + "."
    answer = json_error(status_int, reason, text)
    make = getattr(_answering, "make", None)
    if make is not None:
        try:
            answer = make(status_int, text)
        except Exception:  # the plain answer, without the rate-limit headers
            log.exception("The API could not answer a request gunicorn refused")
    util.write_nonblock(sock, answer)


@contextlib.contextmanager
def answering(make: Callable[[int, str], bytes]) -> Iterator[None]:
    """While in it, this thread's refusals are ``make(status, text)`` (a whole answer)."""
    _answering.make = make
    try:
        yield
    finally:
        _answering.make = None


def json_error(status_int: int, reason: str, text: str) -> bytes:
    """A whole ``Connection: close`` answer ``{"error": text}`` with the contract's headers."""
    body = json.dumps({"error": text}).encode("utf-8")
    head = (
        f"HTTP/1.1 {status_int} {reason}\r\nConnection: close\r\n"
        "Content-Type: application/json\r\nAccess-Control-Allow-Origin: *\r\n"
        f"Cache-Control: no-cache, private\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode("latin-1") + body


def install() -> None:
    """Use :func:`write_json_error` for gunicorn's own error answers in this process."""
    util.write_error = write_json_error
