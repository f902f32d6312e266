"""Where an HTTP/1.1 request ends, decided from the bytes received so far: no sockets.

The API's event loop reads each request whole before a thread parses it (api/intake.py), so it
must tell when the header block and the body are complete without gunicorn's blocking parser.
The framing rules are gunicorn's own (``gunicorn/http/message.py``, ``set_body_reader``): a
request gunicorn would refuse from its headers (bare LF, Content-Length and Transfer-Encoding
together, two Content-Lengths, an unknown coding...) is ``MALFORMED`` as soon as it is seen, and
is handed to gunicorn at once, which answers it from the bytes already buffered.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

_FRAMING_FIELD = re.compile(rb"\r\n(content-length|transfer-encoding|expect):([^\r]*)")
_HEX = re.compile(rb"[0-9A-Fa-f]+")
_CODINGS = {b"chunked", b"gzip", b"deflate", b"compress", b"identity"}  # what gunicorn accepts


class Stage(enum.Enum):
    HEADERS = "headers"  # the header block is not complete yet
    BODY = "body"  # headers complete, the body is not
    COMPLETE = "complete"  # one whole request is buffered (anything after it is the next one)
    MALFORMED = "malformed"  # gunicorn refuses it from what is buffered: hand it over now
    TOO_LARGE = "too large"  # the body is longer than max_body_bytes (413)
    HEADERS_TOO_LARGE = "headers too large"  # past gunicorn's header bound (431)
    LINE_TOO_LONG = "line too long"  # the request line is past gunicorn's bound (414)


@dataclass(frozen=True)
class Limits:
    max_line_bytes: int = 8190  # request line (gunicorn limit_request_line; 0: no limit of its own)
    max_header_bytes: int = 827_214  # request line + header block: more is refused (431)
    max_chunk_line_bytes: int = 8190  # a chunk-size line (gunicorn limit_request_field_size)
    max_body_bytes: int = 1_048_576  # decoded body (the API's BRIDGE_MAX_BODY_BYTES)


class RequestFrame:
    """The framing of one request, updated as its bytes arrive (``update`` with the whole
    buffer each time: the header search and the chunk scan resume where they stopped)."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.stage = Stage.HEADERS
        self.expects_continue = False  # "Expect: 100-continue" on an HTTP/1.1 request
        self._searched = 0  # header block: bytes already searched for its end
        self._length: int | None = None  # Content-Length of the body
        self._chunked = False
        self._pos = 0  # where the body, or the next chunk-size line, starts
        self._decoded = 0  # chunked: body bytes in the chunks before _pos

    def update(self, buf: bytes | bytearray) -> Stage:
        if self.stage is Stage.HEADERS:
            self.stage = self._headers(buf)
        if self.stage is Stage.BODY:
            self.stage = self._chunks(buf) if self._chunked else self._fixed(buf)
        return self.stage

    # --- the header block --------------------------------------------------------------------
    def _headers(self, buf: bytes | bytearray) -> Stage:
        start = max(0, self._searched - 3)
        end = buf.find(b"\r\n\r\n", start)
        head_end = len(buf) if end < 0 else end + 2
        low = max(0, start - 1)
        # a bare LF: an LF not preceded by CR (two C counts, not a lookbehind regex over the
        # block: ~2 µs less per request); a CRLF straddling ``low`` is counted from low - 1
        if buf.count(b"\n", low, head_end) != buf.count(b"\r\n", max(0, low - 1), head_end):
            return Stage.MALFORMED
        if end < 0:
            self._searched = len(buf)
            first = buf.find(b"\r\n", 2 if buf[:2] == b"\r\n" else 0)
            line_limit = self.limits.max_line_bytes
            if first < 0 and line_limit and len(buf) > line_limit + 4:
                return Stage.LINE_TOO_LONG  # gunicorn would refuse it (414): the loop does
            if len(buf) > self.limits.max_header_bytes:
                return Stage.HEADERS_TOO_LARGE  # gunicorn would read once more before its 431
            return Stage.HEADERS
        self._pos = end + 4
        return self._framing(bytes(buf[: end + 2]))

    def _framing(self, head: bytes) -> Stage:
        """The body's framing from the header block (request line and fields, CRLF-ended).

        Only the fields that frame the body are read, where gunicorn reads them: a name exactly
        followed by ":" at the start of a line. A spelling gunicorn does not take as one of them
        either is not one to gunicorn or is refused by it ("Content-Length :", obs-fold), from
        the buffered bytes alike."""
        skip = 2 if head[:2] == b"\r\n" else 0  # one empty line first is allowed (RFC 9112 2.2)
        line_end = head.find(b"\r\n", skip)
        if line_end - skip > self.limits.max_line_bytes > 0:
            return Stage.LINE_TOO_LONG  # as gunicorn's read_line (414)
        version = head[skip:line_end].rpartition(b" ")[2]
        lengths, codings = [], []
        for name, value in _FRAMING_FIELD.findall(head.lower(), line_end):
            value = value.strip(b" \t")
            if name == b"content-length":
                lengths.append(value)
            elif name == b"transfer-encoding":
                codings += [c.strip(b" \t") for c in value.split(b",")]
            elif value != b"100-continue":
                return Stage.MALFORMED  # gunicorn: 417
            else:
                self.expects_continue = version == b"HTTP/1.1"
        if codings:
            if (
                lengths
                or version != b"HTTP/1.1"
                or codings[-1] != b"chunked"
                or codings.count(b"chunked") != 1
                or not _CODINGS.issuperset(codings)
            ):
                return Stage.MALFORMED
            self._chunked = True
            return Stage.BODY
        if len(lengths) > 1 or (lengths and not lengths[0].isdigit()):
            return Stage.MALFORMED
        self._length = int(lengths[0]) if lengths else 0
        if self._length > self.limits.max_body_bytes:
            return Stage.TOO_LARGE
        return Stage.BODY

    # --- the body ----------------------------------------------------------------------------
    def _fixed(self, buf: bytes | bytearray) -> Stage:
        assert self._length is not None
        return Stage.COMPLETE if len(buf) - self._pos >= self._length else Stage.BODY

    def _chunks(self, buf: bytes | bytearray) -> Stage:
        """Walk the chunks from the last complete one (RFC 9112 7.1, as gunicorn's ChunkedReader)."""
        limits = self.limits
        while True:
            eol = buf.find(b"\r\n", self._pos)
            if eol < 0:
                too_long = len(buf) - self._pos > limits.max_chunk_line_bytes + 2
                return Stage.MALFORMED if too_long else Stage.BODY
            size_text = bytes(buf[self._pos : eol]).split(b";", 1)[0].rstrip(b" \t")
            if not _HEX.fullmatch(size_text):
                return Stage.MALFORMED
            size = int(size_text, 16)
            if size == 0:
                return self._trailers(buf, eol + 2)
            if self._decoded + size > limits.max_body_bytes:
                return Stage.TOO_LARGE
            data_end = eol + 2 + size
            if len(buf) < data_end + 2:
                return Stage.BODY
            if buf[data_end : data_end + 2] != b"\r\n":
                return Stage.MALFORMED
            self._decoded += size
            self._pos = data_end + 2

    def _trailers(self, buf: bytes | bytearray, start: int) -> Stage:
        if len(buf) - start >= 2 and buf[start : start + 2] == b"\r\n":
            return Stage.COMPLETE  # no trailer fields
        if buf.find(b"\r\n\r\n", start) >= 0:
            return Stage.COMPLETE
        if len(buf) - start > self.limits.max_header_bytes:
            return Stage.MALFORMED
        return Stage.BODY


def limits_for(gunicorn_cfg, max_body_bytes: int) -> Limits:
    """The bounds gunicorn's parser applies with its limit_request_* settings, clamped the way
    it clamps them (``gunicorn/http/message.py``), and the API's body limit. Past the line bound
    (414) and the header bound (431) the loop answers itself, as gunicorn would (past the
    header bound gunicorn would read once more); each other bound is at least gunicorn's, so
    gunicorn refuses a request handed over at one from the buffered bytes, never waits on it."""
    line = gunicorn_cfg.limit_request_line
    line = 8190 if line < 0 or line > 8190 else line  # 0: unlimited in gunicorn
    fields = gunicorn_cfg.limit_request_fields
    fields = 32768 if fields <= 0 or fields > 32768 else fields
    field_size = gunicorn_cfg.limit_request_field_size
    field_size = field_size if field_size > 0 else 8190
    buffered_headers = fields * (field_size + 2) + 4  # gunicorn's max_buffer_headers
    return Limits(
        max_line_bytes=line,
        max_header_bytes=(line or 8190) + buffered_headers + 8,
        max_chunk_line_bytes=field_size,
        max_body_bytes=max_body_bytes,
    )
