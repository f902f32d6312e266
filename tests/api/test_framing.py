"""Where a request ends (api/framing.py), from byte literals, checked against gunicorn's parser:
what the loop calls complete, gunicorn parses without reading more; what it calls malformed,
gunicorn refuses from the same bytes."""

from __future__ import annotations

import pytest
from gunicorn.config import Config as GunicornConfig
from gunicorn.http.errors import LimitRequestLine
from gunicorn.http.parser import RequestParser

from api.framing import Limits, RequestFrame, Stage, limits_for

LIMITS = Limits(max_body_bytes=100)

GET = b"GET /api/v2 HTTP/1.1\r\nHost: x\r\n\r\n"
POST = b"POST /v1/sms/send HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n"
NEXT = b"GET / HT"  # the start of a pipelined request
CHUNKED = b"POST /v1/sms/send HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"

COMPLETE = {
    "no body": GET,
    "empty line first": b"\r\n" + GET,
    "length body": POST + b"hello",
    "length body and the next request": POST + b"hello" + NEXT,
    "zero length": b"POST / HTTP/1.1\r\nContent-Length: 0\r\n\r\n",
    "chunks": CHUNKED + b"3\r\nhel\r\n2;ext=1\r\nlo\r\n0\r\n\r\n",  # size, extension, last chunk
    "chunks with a trailer": CHUNKED + b"5\r\nhello\r\n0\r\nX-Sum: 1\r\n\r\n",
    "gzip then chunked": b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
    "HTTP/1.0": b"GET / HTTP/1.0\r\n\r\n",
}

MALFORMED = {
    "bare LF in the request line": b"GET / HTTP/1.1\nHost: x",  # no need to wait for more
    "bare LF in a header": b"GET / HTTP/1.1\r\nHost: x\nAccept: *",
    "length and chunked": b"POST / HTTP/1.1\r\nContent-Length: 5\r\n"
    b"Transfer-Encoding: chunked\r\n\r\n",
    "two lengths": b"POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n",
    "signed length": b"POST / HTTP/1.1\r\nContent-Length: +5\r\n\r\n",
    "chunked HTTP/1.0": b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
    "coding not ending in chunked": b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n",
    "unknown coding": b"POST / HTTP/1.1\r\nTransfer-Encoding: zstd, chunked\r\n\r\n",
    "chunked twice": b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n"
    b"Transfer-Encoding: chunked\r\n\r\n",
    "folded header": b"GET / HTTP/1.1\r\nHost: x\r\n  folded\r\n\r\n",
    "folded length": b"POST / HTTP/1.1\r\nX: a\r\n Content-Length: 5\r\n\r\n",
    "blank before the colon": b"POST / HTTP/1.1\r\nContent-Length : 5\r\n\r\n",
    "tab before the colon": b"POST / HTTP/1.1\r\nContent-Length\t: 5\r\n\r\n",
    "unknown expectation": b"POST / HTTP/1.1\r\nExpect: teapot\r\nContent-Length: 5\r\n\r\n",
}

LINE_TOO_LONG = {  # gunicorn's default bound: 4094 bytes
    "unended": b"GET /" + b"a" * 4100,
    "ended": b"GET /" + b"a" * 4090 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
}


def _gunicorn_reads(data: bytes):
    """gunicorn's parser over ``data`` alone: the request, or the error it raises. A parser that
    asks for more bytes fails the test (in the worker it would wait on the socket)."""

    def source():
        yield data
        raise AssertionError("gunicorn would wait for more bytes")

    parser = RequestParser(GunicornConfig(), source(), ("127.0.0.1", 1))
    request = next(parser)
    body = request.body.read() if request.body else b""
    return request, body


def _frame(data: bytes, limits: Limits = LIMITS) -> RequestFrame:
    frame = RequestFrame(limits)
    frame.update(data)
    return frame


@pytest.mark.parametrize("data", COMPLETE.values(), ids=COMPLETE.keys())
def test_a_whole_request_is_complete_and_gunicorn_needs_nothing_more(data):
    assert _frame(data).stage is Stage.COMPLETE
    _gunicorn_reads(data)


@pytest.mark.parametrize("data", MALFORMED.values(), ids=MALFORMED.keys())
def test_a_request_gunicorn_refuses_is_handed_over_at_once(data):
    """Malformed, or complete as far as framing goes: either way gunicorn gets it now and
    refuses it from these bytes."""
    assert _frame(data).stage in (Stage.MALFORMED, Stage.COMPLETE)
    with pytest.raises(Exception) as refused:
        _gunicorn_reads(data)
    assert not isinstance(refused.value, AssertionError)  # refused, not waiting


@pytest.mark.parametrize("data", LINE_TOO_LONG.values(), ids=LINE_TOO_LONG.keys())
def test_a_request_line_past_gunicorns_bound_is_refused_by_the_loop(data):
    """gunicorn refuses it (414, LimitRequestLine): the loop answers it itself (api/intake.py),
    so the answer to an /api/v2 path is the app's, with the rate-limit headers."""
    limits = limits_for(GunicornConfig(), max_body_bytes=100)
    assert _frame(data, limits).stage is Stage.LINE_TOO_LONG
    with pytest.raises(LimitRequestLine):
        _gunicorn_reads(data)
    at_bound = b"GET /" + b"a" * 4080 + b" HTTP/1.1\r\n\r\n"  # 4094 bytes: gunicorn takes it
    assert _frame(at_bound, limits).stage is Stage.COMPLETE
    _gunicorn_reads(at_bound)


@pytest.mark.parametrize("data", COMPLETE.values(), ids=COMPLETE.keys())
def test_a_request_trickled_one_byte_at_a_time_is_complete_only_at_its_last_byte(data):
    frame = RequestFrame(LIMITS)
    end = len(data) - len(NEXT) if data.endswith(NEXT) else len(data)
    for i in range(1, end):
        assert frame.update(data[:i]) in (Stage.HEADERS, Stage.BODY), data[:i]
    assert frame.update(data[:end]) is Stage.COMPLETE


def test_headers_then_body_stages():
    frame = RequestFrame(LIMITS)
    assert frame.update(POST[:-2]) is Stage.HEADERS  # "\r\n\r\n" not complete yet
    assert frame.update(POST) is Stage.BODY
    assert frame.update(POST + b"hell") is Stage.BODY
    assert frame.update(POST + b"hello") is Stage.COMPLETE


def test_a_chunked_body_waits_for_its_last_chunk_and_trailers():
    frame = RequestFrame(LIMITS)
    assert frame.update(CHUNKED + b"5\r\nhel") is Stage.BODY  # inside a chunk
    assert frame.update(CHUNKED + b"5\r\nhello\r\n") is Stage.BODY  # the next size line
    assert frame.update(CHUNKED + b"5\r\nhello\r\n0\r\n") is Stage.BODY  # trailers or CRLF
    assert frame.update(CHUNKED + b"5\r\nhello\r\n0\r\nX-A: 1\r\n") is Stage.BODY
    assert frame.update(CHUNKED + b"5\r\nhello\r\n0\r\nX-A: 1\r\n\r\n") is Stage.COMPLETE


@pytest.mark.parametrize(
    "data",
    [
        POST.replace(b"5", b"101"),  # Content-Length over the limit: refused before the body
        CHUNKED + b"65\r\n",  # one chunk of 0x65 = 101 bytes announced
        CHUNKED + b"32\r\n" + b"x" * 50 + b"\r\n33\r\n",  # 50 + 51 bytes
        CHUNKED + b"ffffffffffffffffffff\r\n",  # absurd size
    ],
    ids=["length", "one chunk", "two chunks", "absurd chunk"],
)
def test_a_body_over_the_limit_is_too_large_from_its_announced_size(data):
    assert _frame(data).stage is Stage.TOO_LARGE


def test_a_body_at_the_limit_is_fine():
    data = POST.replace(b"5", b"100") + b"x" * 100
    assert _frame(data).stage is Stage.COMPLETE


@pytest.mark.parametrize(
    "data",
    [CHUNKED + b"zz\r\n", CHUNKED + b"3\r\nabcX\r\n", CHUNKED + b"1" * 8200],
    ids=["not hex", "chunk without CRLF", "size line too long"],
)
def test_bad_chunks_are_handed_over(data):
    assert _frame(data).stage is Stage.MALFORMED


def test_a_header_block_past_gunicorns_bound_is_refused_by_the_loop():
    """gunicorn would read once more before refusing it (431): the loop answers instead."""
    limits = limits_for(GunicornConfig(), max_body_bytes=100)
    data = b"GET / HTTP/1.1\r\n" + b"X-A: aaaaaaaa\r\n" * (limits.max_header_bytes // 15 + 1)
    assert _frame(data, limits).stage is Stage.HEADERS_TOO_LARGE
    assert _frame(data[: limits.max_header_bytes - 100], limits).stage is Stage.HEADERS


def test_expect_100_continue_is_noticed_on_http_1_1_only():
    expect = b"Expect: 100-continue\r\n"
    assert _frame(POST.replace(b"Host: x\r\n", expect)).expects_continue
    http10 = POST.replace(b"Host: x\r\n", expect).replace(b"HTTP/1.1", b"HTTP/1.0")
    assert not _frame(http10).expects_continue
    assert not _frame(POST).expects_continue
