"""Where parameters come from: query, form, multipart, JSON; body wins; bounded, strict UTF-8."""

from __future__ import annotations

import io
import json

import falcon
import pytest
from falcon import testing

from api.params import read_body, request_params
from bridge.errors import InvalidInput

LIMIT = 1000


def _req(
    body: bytes = b"", content_type: str | None = None, query: str = "", headers: dict | None = None
) -> falcon.Request:
    hdrs = dict(headers or {})
    if content_type:
        hdrs["Content-Type"] = content_type
    return falcon.Request(testing.create_environ(body=body, query_string=query, headers=hdrs))


def _multipart(fields: list[tuple[str, bytes]], boundary: str = "XyZ") -> tuple[bytes, str]:
    out = b""
    for name, value in fields:
        out += (
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode()
            + value
            + b"\r\n"
        )
    out += f"--{boundary}--\r\n".encode()
    return out, f"multipart/form-data; boundary={boundary}"


def test_query_string_only():
    assert request_params(_req(query="numbers=0701234567&message_body=hi"), LIMIT) == {
        "numbers": "0701234567",
        "message_body": "hi",
    }


def test_form_body_wins_over_query():
    req = _req(
        b"message_body=from+body&x=%C3%A9",
        "application/x-www-form-urlencoded",
        query="message_body=from-query&numbers=1",
    )
    assert request_params(req, LIMIT) == {"message_body": "from body", "numbers": "1", "x": "é"}


def test_json_body_wins_and_keeps_types():
    req = _req(
        json.dumps({"numbers": ["1", "2"], "expiry_days": 3}).encode(),
        "application/json; charset=utf-8",
        query="expiry_days=9&other=q",
    )
    assert request_params(req, LIMIT) == {"numbers": ["1", "2"], "expiry_days": 3, "other": "q"}


def test_multipart_body():
    body, ctype = _multipart(
        [("numbers", b"0701234567"), ("message_body", "Habari \u00e9".encode())]
    )
    assert request_params(_req(body, ctype, query="numbers=x"), LIMIT) == {
        "numbers": "0701234567",
        "message_body": "Habari é",
    }


def test_repeated_names_become_lists():
    req = _req(b"numbers=1&numbers=2&numbers=3", "application/x-www-form-urlencoded")
    assert request_params(req, LIMIT)["numbers"] == ["1", "2", "3"]


def test_blank_values_are_kept_as_empty_text():
    assert request_params(_req(query="numbers=&message_body=hi"), LIMIT)["numbers"] == ""


def test_empty_body_with_any_content_type_means_no_body_params():
    assert request_params(_req(b"", "text/plain", query="a=1"), LIMIT) == {"a": "1"}


@pytest.mark.parametrize("body", [b"[1, 2]", b'"text"', b"3", b"null"])
def test_json_that_is_not_an_object_is_400(body):
    with pytest.raises(InvalidInput, match="must be an object"):
        request_params(_req(body, "application/json"), LIMIT)


def test_malformed_json_is_400():
    with pytest.raises(InvalidInput, match="not valid JSON"):
        request_params(_req(b'{"numbers": ', "application/json"), LIMIT)


@pytest.mark.parametrize("case", ["query", "form", "json", "multipart"])
def test_non_utf8_bytes_are_400(case):
    if case == "query":
        req = _req(query="message_body=%FF%FE")
    elif case == "form":
        req = _req(b"message_body=%ff%fe", "application/x-www-form-urlencoded")
    elif case == "json":
        req = _req(b'{"message_body": "\xff\xfe"}', "application/json")
    else:
        body, ctype = _multipart([("message_body", b"\xff\xfe")])
        req = _req(body, ctype)
    with pytest.raises(InvalidInput, match="not valid UTF-8"):
        request_params(req, LIMIT)


@pytest.mark.parametrize("ctype", ["text/plain", "application/xml", None])
def test_unknown_media_type_with_a_body_is_415(ctype):
    with pytest.raises(falcon.HTTPUnsupportedMediaType):
        request_params(_req(b"numbers=1", ctype), LIMIT)


def test_content_length_over_the_limit_is_413_before_reading():
    req = _req(b"x" * (LIMIT + 1), "application/json")
    with pytest.raises(falcon.HTTPContentTooLarge):
        read_body(req, LIMIT)
    assert req.stream.read() == b"x" * (LIMIT + 1)  # nothing was read


def test_chunked_body_is_bounded_while_reading():
    env = testing.create_environ(
        headers={"Transfer-Encoding": "chunked", "Content-Type": "application/json"}
    )
    env.pop("CONTENT_LENGTH", None)
    env["wsgi.input"] = io.BytesIO(b"{" + b" " * (LIMIT * 5) + b"}")
    with pytest.raises(falcon.HTTPContentTooLarge):
        read_body(falcon.Request(env), LIMIT)


def test_chunked_body_under_the_limit_is_read():
    env = testing.create_environ(
        headers={"Transfer-Encoding": "chunked", "Content-Type": "application/json"}
    )
    env.pop("CONTENT_LENGTH", None)
    env["wsgi.input"] = io.BytesIO(b'{"a": "b"}')
    assert request_params(falcon.Request(env), LIMIT) == {"a": "b"}


def test_body_is_read_once_and_cached():
    req = _req(b"a=1", "application/x-www-form-urlencoded")
    first = request_params(req, LIMIT)
    assert request_params(req, LIMIT) is first


def test_multipart_without_boundary_is_400():
    with pytest.raises(falcon.HTTPError) as info:
        request_params(_req(b"--x\r\n", "multipart/form-data"), LIMIT)
    assert info.value.status_code == 400


def test_deeply_nested_json_is_400_not_500():
    body = b'{"numbers": ' + b"[" * 200_000 + b"]" * 200_000 + b"}"
    with pytest.raises(InvalidInput, match="nested too deeply"):
        request_params(_req(body, "application/json"), 10_000_000)
