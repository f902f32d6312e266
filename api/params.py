"""Request parameters from the query string and the body, merged the way the contract says.

Parameters come from the query string, an ``application/x-www-form-urlencoded`` or
``multipart/form-data`` body, or a JSON object body; on conflict the body wins. The body is read
at most once, never past ``max_body_bytes`` (checked from Content-Length and again while
reading), and every text must be valid UTF-8. A key given several times becomes a list.
A JSON body is held to the same rule: a lone surrogate escape (``"\\ud800"``) anywhere in it, or
an integer longer than ``MAX_INT_DIGITS``, is refused with a 400 naming the parameter.
"""

from __future__ import annotations

import io
import json
from typing import Any
from urllib.parse import unquote_to_bytes

import falcon
from falcon.media.multipart import (
    MultipartFormHandler,
    MultipartParseError,
    MultipartParseOptions,
)
from gunicorn.http.errors import ParseException

from bridge.accept.chars import surrogate_problem
from bridge.errors import InvalidInput

SUPPORTED = ("application/json", "application/x-www-form-urlencoded", "multipart/form-data")
_MULTIPART = MultipartFormHandler(MultipartParseOptions())
_NOT_UTF8 = "Request is not valid UTF-8; encode every parameter as UTF-8."
MAX_INT_DIGITS = 100  # longer JSON integers are refused (no parameter needs more than 3 digits)


def request_params(req: falcon.Request, max_body_bytes: int) -> dict[str, Any]:
    """All parameters of ``req`` (cached on ``req.context``): query first, then the body."""
    cached = getattr(req.context, "params", None)
    if cached is not None:
        return cached
    params = query_params(req)
    params.update(body_params(req, max_body_bytes))
    req.context.params = params
    return params


def query_params(req: falcon.Request) -> dict[str, Any]:
    """The query string, decoded strictly as UTF-8 (falcon's own parser replaces bad bytes)."""
    raw = req.env.get("QUERY_STRING", "")
    return _pairs_to_dict(_split_urlencoded(raw.encode("latin-1", "replace")))


def body_params(req: falcon.Request, max_body_bytes: int) -> dict[str, Any]:
    """The body's parameters; an empty body gives none, whatever its Content-Type."""
    data = read_body(req, max_body_bytes)
    if not data:
        return {}
    media_type = (req.content_type or "").split(";", 1)[0].strip().lower()
    if media_type == "application/json" or media_type.endswith("+json"):
        return _json_object(data)
    if media_type == "application/x-www-form-urlencoded":
        return _pairs_to_dict(_split_urlencoded(data))
    if media_type == "multipart/form-data":
        return _multipart(data, req.content_type or "")
    raise falcon.HTTPUnsupportedMediaType(
        description=(
            f"Content-Type {media_type or '(none)'} is not supported; send parameters as "
            "application/json, application/x-www-form-urlencoded or multipart/form-data."
        )
    )


def read_body(req: falcon.Request, max_body_bytes: int) -> bytes:
    """The raw body, refusing (413) anything longer than ``max_body_bytes``."""
    cached = getattr(req.context, "body", None)
    if cached is not None:
        return cached
    length = req.content_length
    if length is not None and length > max_body_bytes:
        raise _too_large(max_body_bytes)
    chunked = "chunked" in (req.get_header("Transfer-Encoding") or "").lower()
    try:
        if length:
            data = req.bounded_stream.read(max_body_bytes + 1)
        elif chunked:  # no length: the server decodes the chunks; read until EOF or past it
            data = _read_until_eof(req.stream, max_body_bytes + 1)
        else:
            data = b""
    except ParseException as exc:  # gunicorn decodes the chunks as they are read
        raise falcon.HTTPBadRequest(description=unreadable_chunks_message(exc)) from None
    if len(data) > max_body_bytes:
        raise _too_large(max_body_bytes)
    req.context.body = data
    return data


def unreadable_chunks_message(exc: Exception) -> str:
    """The 400 sentence of a chunked body gunicorn cannot decode (a chunk size that is not
    hex, data not followed by CRLF, a bad trailer field...): what is wrong, in its words."""
    return (
        f"Request body is not valid chunked encoding ({exc}); send well-formed chunks or a "
        "Content-Length body."
    )


def _read_until_eof(stream, most: int) -> bytes:
    chunks, total = [], 0
    while total < most:
        chunk = stream.read(min(65536, most - total))
        if not chunk:
            break
        chunks.append(chunk)
        total += len(chunk)
    return b"".join(chunks)


def too_large_message(limit: int) -> str:
    """The 413 sentence (the worker's loop answers an oversized body with it too: api/intake.py)."""
    return f"Request body is larger than {limit} bytes; send fewer numbers per request."


def _too_large(limit: int) -> falcon.HTTPError:
    return falcon.HTTPContentTooLarge(description=too_large_message(limit))


def _json_object(data: bytes) -> dict[str, Any]:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidInput(_NOT_UTF8) from None
    try:
        value = json.loads(text, parse_int=_bounded_int)
    except ValueError as exc:
        raise InvalidInput(f"Request body is not valid JSON ({exc}).") from None
    except RecursionError:  # e.g. 100,000 nested brackets: valid JSON, but not for us
        raise InvalidInput("Request body is nested too deeply; send a flat JSON object.") from None
    if not isinstance(value, dict):
        raise InvalidInput(
            'A JSON body must be an object, e.g. {"numbers": "0701234567", '
            '"message_body": "Hello"}.'
        )
    for name, item in value.items():
        problem = surrogate_problem("A parameter name", name)
        if problem is not None:
            raise InvalidInput(problem)
        _check_json_value(name, item)
    return value


class _LongInt(str):
    """A JSON integer of more than MAX_INT_DIGITS digits, kept as its text until refused."""


def _bounded_int(digits: str) -> int | _LongInt:
    return _LongInt(digits) if len(digits.lstrip("-")) > MAX_INT_DIGITS else int(digits)


def _check_json_value(name: str, value: Any) -> None:
    """Refuse a top-level parameter that holds, at any depth, a lone surrogate or a long integer.

    Iterative, so a deeply nested value cannot exhaust the stack."""
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, _LongInt):
            digits = len(item.lstrip("-"))
            raise InvalidInput(
                f"{name} is a number of {digits} digits; send at most {MAX_INT_DIGITS} digits.",
                field=name,
            )
        if isinstance(item, str):
            _refuse_surrogate(name, item)
        elif isinstance(item, list):
            pending.extend(item)
        elif isinstance(item, dict):
            for key, inner in item.items():
                _refuse_surrogate(name, key)
                pending.append(inner)


def _refuse_surrogate(name: str, text: str) -> None:
    problem = surrogate_problem(name, text)
    if problem is not None:
        raise InvalidInput(problem, field=name)


def _multipart(data: bytes, content_type: str) -> dict[str, Any]:
    pairs: list[tuple[bytes, bytes]] = []
    try:
        form = _MULTIPART.deserialize(io.BytesIO(data), content_type, len(data))
        for part in form:
            if part.name is None:
                continue
            pairs.append((part.name.encode("utf-8"), part.get_data()))
    except MultipartParseError as exc:
        raise InvalidInput(f"Malformed multipart/form-data body ({exc.description}).") from None
    except UnicodeError:  # a part's headers (its name) are not UTF-8
        raise InvalidInput(_NOT_UTF8) from None
    return _pairs_to_dict(pairs)


def _split_urlencoded(data: bytes) -> list[tuple[bytes, bytes]]:
    """``a=1&b=%C3%A9+x`` -> raw byte pairs (decoded later, strictly); blank values kept."""
    pairs = []
    for field in data.split(b"&"):
        if not field:
            continue
        name, _, value = field.partition(b"=")
        pairs.append(
            (
                unquote_to_bytes(name.replace(b"+", b" ")),
                unquote_to_bytes(value.replace(b"+", b" ")),
            )
        )
    return pairs


def _pairs_to_dict(pairs: list[tuple[bytes, bytes]]) -> dict[str, Any]:
    """Decode name/value byte pairs strictly; a repeated name collects its values in a list."""
    out: dict[str, Any] = {}
    try:
        for raw_name, raw_value in pairs:
            name, value = raw_name.decode("utf-8"), raw_value.decode("utf-8")
            if name in out:
                prev = out[name]
                out[name] = [*prev, value] if isinstance(prev, list) else [prev, value]
            else:
                out[name] = value
    except UnicodeDecodeError:
        raise InvalidInput(_NOT_UTF8) from None
    return out
