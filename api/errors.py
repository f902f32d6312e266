"""Every error becomes one JSON answer here, in one place: ``{"error": "<sentence>", ...}``.

Domain errors (bridge.errors) map to a status by class; falcon's own errors (404, 405, 413, 415,
bad headers) keep their status with a sentence of ours; anything unexpected is logged with its
traceback and answered ``500 {"error": "Internal server error."}``. Never HTML, never a trace.
"""

from __future__ import annotations

import logging
from typing import Any

import falcon

from bridge import errors as domain

log = logging.getLogger(__name__)

# Most specific first is not needed: falcon picks the handler by the exception's MRO.
STATUS_OF: dict[type[domain.BridgeError], int] = {
    domain.BridgeError: 400,
    domain.InvalidInput: 400,
    domain.Unauthorized: 401,
    domain.InsufficientBalance: 402,
    domain.NotFound: 404,
    domain.Conflict: 409,
    domain.RateLimited: 429,
    domain.DependencyDown: 503,
}

INTERNAL_ERROR = "Internal server error."


def install(app: falcon.App) -> None:
    """Register the handlers on ``app`` (falcon chooses by the exception's class hierarchy)."""
    app.add_error_handler(Exception, _unexpected)
    app.add_error_handler(falcon.HTTPError, _http_error)
    app.add_error_handler(domain.BridgeError, _domain_error)


def render(resp: falcon.Response, status: int, message: str, **extra: Any) -> None:
    """Set ``resp`` to a JSON error answer."""
    resp.status = status
    resp.media = {"error": message, **extra}


def _domain_error(
    req: falcon.Request, resp: falcon.Response, ex: domain.BridgeError, params: dict
) -> None:
    status = next(STATUS_OF[cls] for cls in type(ex).__mro__ if cls in STATUS_OF)
    extra = dict(ex.extra)
    if status in (429, 503) and "retry_after" in extra:
        resp.set_header("Retry-After", str(extra["retry_after"]))
    render(resp, status, ex.message, **extra)


def _http_error(
    req: falcon.Request, resp: falcon.Response, ex: falcon.HTTPError, params: dict
) -> None:
    if ex.headers:
        resp.set_headers(ex.headers)
    render(resp, ex.status_code, _sentence(req, ex))


def _sentence(req: falcon.Request, ex: falcon.HTTPError) -> str:
    """One sentence for a falcon error, saying what to do about it."""
    if ex.status_code == 404:
        return f"No such endpoint: {req.method} {req.path}. The API is described at /api/v2."
    if ex.status_code == 405:
        allowed = dict(ex.headers or {}).get("Allow", "")  # a mapping or (name, value) pairs
        return f"Method {req.method} is not allowed here; use {allowed or 'another method'}."
    if ex.description:
        return ex.description if ex.description.endswith(".") else ex.description + "."
    return f"{ex.title}."


def _unexpected(req: falcon.Request, resp: falcon.Response, ex: Exception, params: dict) -> None:
    log.error("unhandled error on %s %s", req.method, req.path, exc_info=ex)
    render(resp, 500, INTERNAL_ERROR)
