"""Domain errors. The API maps each class to one HTTP answer in one place (api/errors.py).

Each carries the exact client-facing sentence (``message``) and optional extra JSON fields.
"""

from __future__ import annotations

from typing import Any


class BridgeError(Exception):
    """Base of every error the domain raises on purpose."""

    message = "Request failed."

    def __init__(self, message: str | None = None, **extra: Any) -> None:
        self.message = message or self.message
        self.extra = extra
        super().__init__(self.message)


class InvalidInput(BridgeError):
    """A parameter is missing or malformed (HTTP 400). ``extra`` may name the ``field``."""

    message = "Invalid request."


class InvalidNumbers(InvalidInput):
    """One or more numbers are not valid mobile numbers (400, ``invalid_numbers``)."""

    message = "Invalid phone number format."


class Unauthorized(BridgeError):
    """Missing or wrong credentials or API key (HTTP 401)."""

    message = "Unauthorized."


class InsufficientBalance(BridgeError):
    """The balance does not cover the whole request (HTTP 402); nothing was charged."""

    message = "Insufficient balance."


class NotFound(BridgeError):
    """No such object visible to this account (HTTP 404)."""

    message = "Not found."


class Conflict(BridgeError):
    """The object's state forbids the request (HTTP 409), e.g. cancelling a submitted message;
    ``extra`` carries the ``state``."""

    message = "The request conflicts with the current state."


class RateLimited(BridgeError):
    """Too many requests (HTTP 429); ``retry_after`` seconds."""

    message = "Too many requests."


class DependencyDown(BridgeError):
    """A dependency (database) is unreachable (HTTP 503); nothing was charged."""

    message = "Service temporarily unavailable, nothing was charged; retry shortly."
