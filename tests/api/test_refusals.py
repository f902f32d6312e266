"""The worker's own refusals of /api/v2 requests (api/refusals.py), answered by the real app
from a minimal request: counted in the bucket the request counts against, with the rate-limit
headers, the refusal's status and sentence, and 429 over the limit (as for a body the app cannot
read). Under a real gunicorn: tests/api/test_refused_under_gunicorn.py."""

from __future__ import annotations

import json

import pytest
from falcon import testing
from gunicorn.config import Config
from gunicorn.http.errors import ParseException
from gunicorn.http.unreader import IterUnreader

from api.app import create_app
from api.refusals import RefusingRequest, answer, minimal_request, parsed_by_gunicorn
from tests.api.helpers import sqlite_only

CLIENT = ("127.0.0.1", 50000)  # the falcon TestClient's remote address too
TOO_LARGE = "Request body is larger than 2000 bytes; send fewer numbers per request."


def _parse(raw: bytes) -> tuple[int, dict[str, str], dict]:
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:])
    assert int(headers["Content-Length"]) == len(body)
    return int(lines[0].split()[1]), {k.lower(): v for k, v in headers.items()}, json.loads(body)


@pytest.fixture
def limited(api_config, bridge_service, redis_client):
    """The app with a limit of 3 a minute."""
    return create_app(api_config.replace(rate_limit_per_minute=3), bridge_service, redis_client)


@pytest.mark.parametrize(
    ("buf", "headers_read", "expected"),
    [
        (b"POST /api/v2/sms/send HTTP/1.1\r\nX-API-Key: k1 \r\n\r\n", True, "k1"),
        (b"POST /api/v2/sms/send HTTP/1.1\r\nx-api-key:k1\r\nX-API-KEY: k2\r\n\r\n", True, "k1,k2"),
        (b"POST /api/v2/sms/send HTTP/1.1\r\nX-API-Key: k1\r\n\r\n", False, None),  # 431, 414
        (b"POST /api/v2/sms/send HTTP/1.1\r\nHost: x\r\n\r\n", True, None),
        (b"\r\nGET /api/v2/sms/%73end?numbers=1 HTTP/1.1\r\nX-Api-Key: k\r\n\r\n", True, "k"),
    ],
)
def test_the_minimal_request_takes_the_key_only_from_a_header_block_read(
    buf, headers_read, expected
):
    request = minimal_request(buf, headers_read)
    assert request is not None
    method, path, key = request
    assert path == "/api/v2/sms/send" and method in ("GET", "POST")
    assert key == expected


@pytest.mark.parametrize(
    ("buf", "path"),
    [
        (b"GET /api/v2?" + b"x" * 9000, "/api/v2"),  # the line has not ended: the path has
        (b"GET /api/v2/sms/send" + b"x" * 9000, "/api/v2/sms/send" + "x" * 9000),
        (b"GET /api/v2 HTTP/1.1\r\nHost: x", "/api/v2"),
    ],
)
def test_a_path_under_api_v2_is_known_before_the_line_ends(buf, path):
    request = minimal_request(buf, headers_read=False)
    assert request is not None and request[1] == path


@pytest.mark.parametrize(
    "buf",
    [
        b"GET /v1/sms/send HTTP/1.1\r\n\r\n",
        b"GET /api/v2x HTTP/1.1\r\n\r\n",
        b"GET /api/v2",  # may go on as /api/v2x
        b"GET /api/v",
        b"get /api/v2 HTTP/1.1\r\n\r\n",  # not a method gunicorn takes
        b"",
    ],
)
def test_other_requests_keep_the_workers_own_answer(buf):
    assert minimal_request(buf, headers_read=True) is None


def _gunicorn_refusal(data: bytes, read_body: bool = False) -> ParseException:
    """The error gunicorn's parser raises for ``data`` (its body read too if ``read_body``)."""
    cfg = Config()
    cfg.set("limit_request_fields", 2)
    with pytest.raises(ParseException) as raised:
        request = RefusingRequest(cfg, IterUnreader([data]), CLIENT)
        if read_body:
            request.body.read()
    return raised.value


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"POST /api/v2/sms/%73end HTTP/1.1\r\nBad Name: a\r\n\r\n", "/api/v2/sms/send"),
        (b"GET /api/v2 HTTP/1.1\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n", "/api/v2"),  # 431
        (b"GET /api/v2 HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n", "/api/v2"),
        (b"GET /api/v2 HTTP/1.1\r\nTransfer-Encoding: br\r\n\r\n", "/api/v2"),  # 501
        (b"GET /api/v2 HTTP/1.1\r\nA: 1\nB: 2\r\n\r\n", "/api/v2"),  # a bare LF in a field
        (b"GET /api/v2 HTTP/3.0\r\n\r\n", "/api/v2"),  # the version, after the path
        (b"GET /healthz HTTP/1.1\r\nBad Name: a\r\n\r\n", None),  # not under /api/v2
        (b"GET /api/v2\n HTTP/1.1\r\n\r\n", None),  # the line is not read: no path
        (b"GET /api/v2/\x01 HTTP/1.1\r\n\r\n", None),  # nor here
        (b"GET /api/v2/" + b"x" * 9000 + b" HTTP/1.1\r\n\r\n", None),  # 414: the loop's
    ],
)
def test_gunicorn_refusals_after_the_request_line_name_the_request(data, expected):
    """RefusingRequest leaves itself on the error its head raised: method and path for the
    app's answer when the path is under /api/v2, else gunicorn's plain answer."""
    found = parsed_by_gunicorn(_gunicorn_refusal(data))
    assert (found and found[1]) == expected
    assert found is None or found[2] is None  # the headers are not trusted: the address


@pytest.mark.parametrize(
    "body",
    [b"zz\r\n", b"2\r\n{}XX", b"0\r\nBad Name: x\r\n\r\n"],
    ids=["chunk size", "terminator", "trailer"],
)
def test_an_error_of_the_body_does_not_name_the_request(body):
    """A chunked body's error comes while the app (or gunicorn's drain after the answer) reads
    it: it is not a refusal of the request, and the request says Connection: close."""
    head = b"POST /api/v2/sms/send HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
    assert parsed_by_gunicorn(_gunicorn_refusal(head + body, read_body=True)) is None
    request = RefusingRequest(Config(), IterUnreader([head + body]), CLIENT)
    assert not request.should_close()
    with pytest.raises(ParseException):
        request.body.read()
    assert request.should_close()


@sqlite_only
def test_a_refused_request_counts_against_its_key_then_429(limited, key_headers):
    request = ("POST", "/api/v2/sms/send", key_headers["X-API-Key"])
    answers = [_parse(answer(limited, request, CLIENT, 413, TOO_LARGE)) for _ in range(4)]
    assert [a[0] for a in answers] == [413, 413, 413, 429]
    assert [a[1]["x-ratelimit-remaining"] for a in answers] == ["2", "1", "0", "0"]
    assert {a[1]["x-ratelimit-limit"] for a in answers} == {"3"}
    assert answers[0][2] == {"error": TOO_LARGE}
    assert answers[3][1]["retry-after"] and answers[3][2]["error"] == "Too many requests."
    status, headers, _ = answers[0]
    assert headers["connection"] == "close" and headers["access-control-allow-origin"] == "*"
    client = testing.TestClient(limited)
    assert client.simulate_get("/api/v2/account/balance", headers=key_headers).status_code == 429
    assert client.simulate_get("/api/v2/account/balance").status_code == 401  # address: free


@sqlite_only
@pytest.mark.parametrize("key", [None, "sk_not_a_key"])
def test_a_refused_request_without_a_valid_key_counts_against_the_address(limited, key):
    request = ("GET", "/api/v2/sms/send", key)
    answers = [_parse(answer(limited, request, CLIENT, 431, "Too big.")) for _ in range(3)]
    assert [(a[0], a[1]["x-ratelimit-remaining"]) for a in answers] == [
        (431, "2"),
        (431, "1"),
        (431, "0"),
    ]
    assert answers[0][2] == {"error": "Too big."}
    assert testing.TestClient(limited).simulate_get("/api/v2/account/balance").status_code == 429


@sqlite_only
@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/api/v2/openapi.json"), ("GET", "/api/v2/no/such"), ("OPTIONS", "/api/v2/sms/send")],
    ids=["a page", "no route", "a preflight"],
)
def test_a_refused_request_that_is_not_counted_gets_its_refusal_and_the_headers(
    limited, method, path
):
    """Pages that need no key, unknown paths and preflights are not counted (as when not
    refused); the answer is still the refusal, with the address bucket's headers."""
    status, headers, body = _parse(answer(limited, (method, path, None), CLIENT, 414, "Long."))
    assert (status, body) == (414, {"error": "Long."})
    assert headers["x-ratelimit-limit"] == "3" and headers["x-ratelimit-remaining"] == "3"
