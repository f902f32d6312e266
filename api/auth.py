"""Where credentials come from: the API key (header or parameter) and account credentials
(``username``/``password`` parameters or HTTP Basic). Checking them is the domain's job."""

from __future__ import annotations

import base64
import binascii
from typing import Any

import falcon

from bridge.accept.chars import control_problem
from bridge.errors import InvalidInput

API_KEY_HEADER = "X-API-Key"
API_KEY_PARAM = "api_key"
# The contract's exact answer when no key is given (401).
API_KEY_REQUIRED = "API key is required"
API_KEY_HELP = "Provide X-API-Key header or api_key parameter"


def raw_api_key(req: falcon.Request, params: dict[str, Any]) -> str | None:
    """The API key as sent (header first, then the ``api_key`` parameter), or None."""
    header = (req.get_header(API_KEY_HEADER) or "").strip()
    if header:
        return header
    return _single_text(params, API_KEY_PARAM)


def account_credentials(req: falcon.Request, params: dict[str, Any]) -> tuple[str, str] | None:
    """``(username, password)`` from the parameters, else from HTTP Basic, else None."""
    username = _single_text(params, "username")
    password = _single_text(params, "password")
    if username is not None or password is not None:
        return username or "", password or ""
    return basic_credentials(req)


def basic_credentials(req: falcon.Request) -> tuple[str, str] | None:
    """The user and password of an ``Authorization: Basic`` header; None if absent or garbled."""
    header = req.get_header("Authorization") or ""
    scheme, _, encoded = header.strip().partition(" ")
    if scheme.lower() != "basic" or not encoded:
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    username, sep, password = decoded.partition(":")
    if not sep:
        return None
    _refuse_controls("Authorization (HTTP Basic credentials)", decoded, "Authorization")
    return username, password


def _single_text(params: dict[str, Any], name: str) -> str | None:
    """A text parameter given at most once; blank counts as absent."""
    value = params.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidInput(f"{name} must be a single text value.", field=name)
    value = value.strip()
    _refuse_controls(name, value, name)
    return value or None


def _refuse_controls(name: str, value: str, field: str) -> None:
    """Credentials are checked here, before the schema runs, so they are held to its rule."""
    problem = control_problem(name, value)
    if problem is not None:
        raise InvalidInput(problem, field=field)
