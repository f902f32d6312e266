"""Under a real gunicorn, the answers the worker makes before the app (408, 413, 414, 431 from
its loop; 400 and 431 from gunicorn's parser) to an /api/v2 path carry X-RateLimit-Limit and
X-RateLimit-Remaining, as the contract promises for every /api/v2 answer, and spend the bucket
the request counts against: its X-API-Key header's key when its header block was read (a 413,
the 408 of a slow body), the client address otherwise (the 408 of slow headers, a 414, the
431s, a header gunicorn refuses); over the limit, 429."""

from __future__ import annotations

import json
import socket
from decimal import Decimal

import pytest

from tests.api.helpers import get, gunicorn_api, sqlite_only

pytestmark = [pytest.mark.slow, sqlite_only]
LIMIT = 3
BALANCE = "/api/v2/account/balance"
HEADER_BOUND = 8190 + 100 * (8190 + 2) + 4 + 8  # api.framing.limits_for with gunicorn's settings


@pytest.fixture
def served(tmp_path, database_url, redis_server, bridge_service):
    """gunicorn serving the API (limit 3 a minute, 1 s deadlines) and an account's key."""
    info = bridge_service.create_account("acme", "pw-acme-1", balance=Decimal("10.00"))
    key = bridge_service.generate_key(info.id).api_key
    settings = {
        "BRIDGE_RATE_LIMIT": str(LIMIT),
        "BRIDGE_MAX_BODY_BYTES": "2000",
        "BRIDGE_HEADER_TIMEOUT": "1",
        "BRIDGE_BODY_TIMEOUT": "1",
    }
    with gunicorn_api(tmp_path, database_url, redis_server.url, **settings) as (port, _, _):
        yield port, key


def _requests(key: str) -> dict[str, tuple[bytes, int, bool]]:
    """Per case: the bytes sent, the worker's status, whether the key's bucket is spent."""
    header = b"X-API-Key: " + key.encode() + b"\r\n"
    post = b"POST /api/v2/sms/send HTTP/1.1\r\nHost: x\r\n" + header
    return {
        "408 slow headers": (post, 408, False),  # the header block never ended
        "408 slow body": (post + b"Content-Length: 100\r\n\r\n{", 408, True),
        "413": (post + b"Content-Length: 5000\r\n\r\n", 413, True),
        "414": (
            b"GET /api/v2/sms/send?numbers=" + b"0" * 9000 + b" HTTP/1.1\r\n" + header + b"\r\n",
            414,
            False,
        ),
        "431": (post + b"X-A: aaaaaaaa\r\n" * (HEADER_BOUND // 15 + 1), 431, False),
        # refused by gunicorn's parser in a thread, after the request line
        "431 fields": (post + b"X-A: a\r\n" * 101 + b"\r\n", 431, False),  # over 100 fields
        "400 header": (post + b"Bad Name: a\r\n\r\n", 400, False),  # not a field name
    }


def _refused(port: int, data: bytes) -> tuple[int, dict[str, str], dict]:
    """Send ``data`` and read the answer until the server closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(data)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    head, _, body = b"".join(chunks).partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.lower(): v for k, v in (line.split(": ", 1) for line in lines[1:])}
    return int(lines[0].split()[1]), headers, json.loads(body)


@pytest.mark.parametrize(
    "case",
    ["408 slow headers", "408 slow body", "413", "414", "431", "431 fields", "400 header"],
)
def test_a_refused_request_carries_the_rate_limit_headers_and_is_counted(served, case):
    port, key = served
    data, status, by_key = _requests(key)[case]
    answers = [_refused(port, data) for _ in range(LIMIT + 1)]
    assert [a[0] for a in answers] == [status] * LIMIT + [429]
    assert [a[1]["x-ratelimit-remaining"] for a in answers] == ["2", "1", "0", "0"]
    assert {a[1]["x-ratelimit-limit"] for a in answers} == {str(LIMIT)}
    assert answers[0][1]["access-control-allow-origin"] == "*"
    assert answers[0][1]["connection"] == "close"  # and the server closed it (_refused)
    assert answers[0][2]["error"].endswith(".") and "retry-after" in answers[-1][1]
    with_key = get(port, BALANCE, {"X-API-Key": key})
    without = get(port, BALANCE)
    if by_key:  # the key's bucket is spent; the address's is not
        assert (with_key[0], without[0]) == (429, 401)
    else:
        assert (with_key[0], without[0]) == (200, 429)


def _answers(port: int, data: bytes) -> list[tuple[int, dict[str, str], bytes]]:
    """Send ``data`` and read every answer until the server closes the connection."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(data)
        stream = sock.makefile("rb")
        answers = []
        while line := stream.readline():
            headers = {}
            while (field := stream.readline()) not in (b"\r\n", b""):
                name, _, value = field.decode("latin-1").partition(":")
                headers[name.strip().lower()] = value.strip()
            body = stream.read(int(headers.get("content-length", "0")))
            answers.append((int(line.split()[1]), headers, body))
        return answers


CHUNKED = b"Transfer-Encoding: chunked\r\nContent-Type: application/json\r\n\r\n"


@pytest.mark.parametrize(
    ("body", "said"),
    [
        (b"zz\r\n{}\r\n0\r\n\r\n", "Invalid chunk size: b'zz'"),  # a size that is not hex
        (b"2\r\n{}XX0\r\n\r\n", "Invalid chunk terminator"),  # no CRLF after the data
        (b"2\r\n{}\r\n0\r\nBad Name: x\r\n\r\n", "Invalid HTTP header name"),  # a trailer
    ],
)
def test_a_chunked_body_that_cannot_be_read_is_a_counted_400_that_says_why(served, body, said):
    """The app reads the chunks (gunicorn decodes them as it goes) and gets gunicorn's parse
    error: a 400 naming it, counted by the key like any unreadable body, Connection: close
    (the rest of the connection cannot be read), the connection closed; not a 500."""
    port, key = served
    data = b"POST /api/v2/sms/send HTTP/1.1\r\nHost: x\r\nX-API-Key: " + key.encode() + b"\r\n"
    answers = [_answers(port, data + CHUNKED + body) for _ in range(LIMIT + 1)]
    assert [len(a) for a in answers] == [1] * (LIMIT + 1)  # one answer each, then closed
    statuses = [a[0][0] for a in answers]
    assert statuses == [400] * LIMIT + [429]
    status, headers, text = answers[0][0]
    assert said in json.loads(text)["error"]
    assert headers["connection"] == "close"
    assert [a[0][1]["x-ratelimit-remaining"] for a in answers] == ["2", "1", "0", "0"]
    assert get(port, BALANCE, {"X-API-Key": key})[0] == 429  # the key's bucket


@pytest.mark.parametrize("path", ["/api/v2", "/healthz"])
@pytest.mark.parametrize(
    "body",
    [b"0\r\nBad Name: x\r\n\r\n", b"zz\r\n{}\r\n0\r\n\r\n"],
    ids=["bad trailer", "bad chunk size"],
)
def test_a_broken_body_the_app_did_not_read_gets_one_answer(served, path, body):
    """A page that does not read its body answers 200; gunicorn's drain after the answer then
    finds the body broken. The connection closes after that one answer: no second answer is
    written after it, to no request (gunicorn would write its 400 page; for a bad trailer on
    /api/v2 the app made one, found in the traceback)."""
    port, _ = served
    data = b"GET " + path.encode() + b" HTTP/1.1\r\nHost: x\r\n" + CHUNKED + body
    assert [a[0] for a in _answers(port, data)] == [200]
