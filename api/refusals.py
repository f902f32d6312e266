"""The answers the API's worker makes before the app (408, 413, 414, 431), made by the app for
a path under ``/api/v2``, so they carry the rate-limit headers and are counted like any request.

The contract puts ``X-RateLimit-Limit`` and ``X-RateLimit-Remaining`` on every ``/api/v2``
answer. The worker's loop (api/intake.py) refuses some requests from their framing, before a
thread parses them; for such a request to ``/api/v2`` it hands the app a minimal request in a
thread instead: the method and path, its ``X-API-Key`` header when its header block was read
(a 408 of a slow body, a 413; never the headers of a 431 or 414, which gunicorn would not read
either), the client address, no body, and the refusal itself under :data:`REFUSED` in the
environ (no client can set a key without ``HTTP_``). ApiKeyGuard counts it and answers it with
that refusal, or 429 over the limit, as it answers an unreadable body (api/guard.py). gunicorn's
own refusals of a request whose line it read (a header it does not take: 400, 431, 501) are
answered so too, from the thread that parsed it (:class:`RefusingRequest`,
:func:`parsed_by_gunicorn`), by the address.
"""

from __future__ import annotations

import io
import re
import sys
from urllib.parse import unquote_to_bytes

import falcon
from gunicorn.http.errors import (
    InvalidResponseHeader,
    InvalidResponseHeaderName,
    ParseException,
)
from gunicorn.http.message import Request

API_V2 = "/api/v2"
# environ key: the falcon.HTTPError the worker refused this request with (read by api/guard.py)
REFUSED = "bridge.refused"
# attribute of a gunicorn ParseException: the RefusingRequest whose head raised it
PARSING = "bridge_request"
_METHOD = re.compile(rb"[A-Z]{1,20}")
_API_KEY = re.compile(rb"\r\nx-api-key:([^\r]*)")


def under_api_v2(path: str) -> bool:
    return path == API_V2 or path.startswith(API_V2 + "/")


def minimal_request(
    buf: bytes | bytearray, headers_read: bool
) -> tuple[str, str, str | None] | None:
    """``(method, path, X-API-Key or None)`` of the request buffered in ``buf`` when its path
    is known to be under ``/api/v2``, else None (the worker answers it itself)."""
    skip = 2 if buf[:2] == b"\r\n" else 0
    line_end = buf.find(b"\r\n", skip)
    line = bytes(buf[skip : len(buf) if line_end < 0 else line_end])
    method, _, rest = line.partition(b" ")
    target, space, _ = rest.partition(b" ")
    path, query, _ = target.partition(b"?")
    if not _METHOD.fullmatch(method):
        return None
    if line_end < 0 and not (space or query) and not path.startswith(b"/api/v2/"):
        return None  # the path has not ended yet: it may not be under /api/v2
    text = unquote_to_bytes(path).decode("latin-1")  # as gunicorn's PATH_INFO
    if not under_api_v2(text):
        return None
    key = None
    if headers_read:
        head_end = buf.find(b"\r\n\r\n")
        head = bytes(buf[: head_end + 2])
        values = [head[m.start(1) : m.end(1)] for m in _API_KEY.finditer(head.lower())]
        if values:  # as gunicorn joins a repeated field
            key = b",".join(v.strip(b" \t") for v in values).decode("latin-1")
    return method.decode("ascii"), text, key


class RefusingRequest(Request):
    """gunicorn's Request, for the connections the worker's loop hands to a thread
    (api/intake.py sets it as their parser's ``mesg_class``).

    * When its parsing raises a :class:`ParseException` (a header gunicorn does not take, too
      many or too long ones...), it leaves itself on the exception as :data:`PARSING`: gunicorn
      passes only the exception to ``handle_error`` (its ``req`` is None then), and this is
      how :func:`parsed_by_gunicorn` learns the method and path without reading gunicorn's
      frames. Only an error raised while this request's head was parsed carries it; one from
      its body (read later by the app or by gunicorn's drain) does not.
    * Once reading its body has raised (a bad chunk size, chunk terminator or trailer), where
      the next request starts is unknown: gunicorn closes the connection after the answer and
      this makes the answer say so (``Connection: close``) instead of ``keep-alive``.
    """

    def __init__(self, *args, **kwargs) -> None:
        try:
            super().__init__(*args, **kwargs)
        except ParseException as exc:
            setattr(exc, PARSING, self)
            raise

    def should_close(self) -> bool:
        return super().should_close() or getattr(self.body, "failed", False) is True


def parsed_by_gunicorn(exc: BaseException) -> tuple[str, str, str | None] | None:
    """``(method, path, None)`` of a request gunicorn's parser refused with ``exc`` after its
    request line (a header it does not take, too many or too long ones: 400, 431; 501, 417),
    when the path is under ``/api/v2``, else None (gunicorn's plain answer). Its headers are
    not trusted: such a request counts against the client address."""
    if not isinstance(exc, ParseException) or isinstance(
        exc, (InvalidResponseHeader, InvalidResponseHeaderName)
    ):
        return None
    request = getattr(exc, PARSING, None)
    method, path = getattr(request, "method", None), getattr(request, "path", None)
    if (
        not isinstance(method, str)
        or not isinstance(path, str)
        or not _METHOD.fullmatch(method.encode())
    ):
        return None
    text = unquote_to_bytes(path).decode("latin-1")
    return (method, text, None) if under_api_v2(text) else None


def answer(app, request: tuple[str, str, str | None], client, status: int, text: str) -> bytes:
    """The app's whole ``Connection: close`` answer to ``request`` refused with ``status``."""
    method, path, key = request
    environ = {
        "REQUEST_METHOD": method,
        "SCRIPT_NAME": "",
        "PATH_INFO": path,
        "QUERY_STRING": "",
        "SERVER_NAME": "localhost",
        "SERVER_PORT": "80",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": client[0] if isinstance(client, tuple) else "",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
        REFUSED: falcon.HTTPError(status, description=text),
    }
    if key is not None:
        environ["HTTP_X_API_KEY"] = key
    started: list = []

    def start_response(status_line, headers, exc_info=None):
        started[:] = [status_line, headers]
        return lambda data: None

    chunks = app(environ, start_response)
    try:
        body = b"".join(chunks)
    finally:
        if hasattr(chunks, "close"):
            chunks.close()
    status_line, headers = started
    lines = [f"HTTP/1.1 {status_line}", "Connection: close"]
    lines += [
        f"{name}: {value}"
        for name, value in headers
        if name.lower() not in ("connection", "content-length")
    ]
    lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body
