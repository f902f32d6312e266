"""API-key authentication and rate limiting for ``/api/v2``, before any resource runs.

A resource with ``auth = "api_key"`` gets ``req.context.key`` (a verified KeyInfo) or the
request is refused. Every request is counted in one bucket, and every ``/api/v2`` answer carries
``X-RateLimit-Limit`` and ``X-RateLimit-Remaining``:

* a valid key counts against ``key:<key_id>`` with the account's own limit, else the default;
* a missing, unknown, revoked or expired key counts against ``addr:<client address>`` with the
  default limit (so guessing keys is throttled per address) and then gets its 401;
* a request whose parameters cannot be read (its 400, 413 or 415) is counted as well, by its
  ``X-API-Key`` header as above, before it gets that answer; so is one the API's worker refused
  before the app (408, 413, 414, 431; gunicorn's 400, 431, 501 after the request line), which
  it hands over as a minimal request with the refusal under ``REFUSED`` in the environ
  (api/refusals.py);
* pages that need no key (Swagger UI, the OpenAPI document, assets, 404s) are not counted; they
  report the client address bucket as it stands.
Over the limit: ``429 {"error": "Too many requests.", "retry_after": s}`` with ``Retry-After``.
"""

from __future__ import annotations

import falcon

from api.auth import API_KEY_HELP, API_KEY_REQUIRED, raw_api_key
from api.errors import render
from api.params import request_params
from api.refusals import REFUSED, under_api_v2
from bridge.accept.ratelimit import Decision, RateLimiter
from bridge.errors import InvalidInput, RateLimited, Unauthorized
from bridge.telemetry.metrics import count_rate_limited

LIMIT_HEADER = "X-RateLimit-Limit"
REMAINING_HEADER = "X-RateLimit-Remaining"


class ApiKeyGuard:
    """Falcon middleware: verifies the key of ``auth = "api_key"`` resources and rate-limits."""

    def __init__(
        self, service, limiter: RateLimiter, default_limit: int, max_body_bytes: int
    ) -> None:
        self._service = service
        self._limiter = limiter
        self._default_limit = default_limit
        self._max_body_bytes = max_body_bytes

    def process_resource(
        self, req: falcon.Request, resp: falcon.Response, resource: object, params: dict
    ) -> None:
        if getattr(resource, "auth", None) != "api_key":
            _refuse_if_refused(req)  # not counted, like any request here
            return
        if not hasattr(resource, "on_" + req.method.lower()):
            _refuse_if_refused(req)
            return  # falcon answers 405; process_response adds the headers
        raw, refused = self._presented_key(req)
        if raw is None:
            self._count(resp, address_bucket(req), self._default_limit)
            raise refused or Unauthorized(API_KEY_REQUIRED, help=API_KEY_HELP)
        try:
            key = self._service.verify_key(raw)
        except Unauthorized:
            self._count(resp, address_bucket(req), self._default_limit)
            if refused is not None:
                raise refused from None
            raise
        self._count(resp, f"key:{key.key_id}", key.rate_limit_per_minute or self._default_limit)
        if refused is not None:
            raise refused
        req.context.key = key

    def _presented_key(self, req: falcon.Request) -> tuple[str | None, Exception | None]:
        """The key as sent, and the refusal of the parameters if they cannot be read (a body
        that is not JSON, not UTF-8, of another type, too large...). Such a request is still
        counted, against the ``X-API-Key`` header's key if it has one, before it gets that
        refusal: a client cannot send without limit by sending what cannot be read. A request
        the worker refused is such a request, with no body to read."""
        refused = req.env.get(REFUSED)
        if refused is not None:
            return raw_api_key(req, {}), refused
        try:
            return raw_api_key(req, request_params(req, self._max_body_bytes)), None
        except (falcon.HTTPError, InvalidInput) as exc:
            return raw_api_key(req, {}), exc

    def process_response(
        self, req: falcon.Request, resp: falcon.Response, resource: object, req_succeeded: bool
    ) -> None:
        if under_api_v2(req.path) and resp.get_header(LIMIT_HEADER) is None:
            _set_headers(resp, self._limiter.peek(address_bucket(req), self._default_limit))
            refused = req.env.get(REFUSED)
            if refused is not None and resp.status_code != refused.status_code:
                render(resp, refused.status_code, refused.description)  # no route: not a 404

    def _count(self, resp: falcon.Response, bucket: str, limit: int) -> None:
        decision = self._limiter.hit(bucket, limit)
        _set_headers(resp, decision)
        if not decision.allowed:
            count_rate_limited("key" if bucket.startswith("key:") else "address")
            raise RateLimited(retry_after=decision.retry_after)


def address_bucket(req: falcon.Request) -> str:
    """The bucket of requests without a valid key: the TCP peer address (no proxy headers)."""
    return f"addr:{req.remote_addr}"


def _refuse_if_refused(req: falcon.Request) -> None:
    refused = req.env.get(REFUSED)
    if refused is not None:
        raise refused


def _set_headers(resp: falcon.Response, decision: Decision) -> None:
    resp.set_header(LIMIT_HEADER, str(decision.limit))
    resp.set_header(REMAINING_HEADER, str(decision.remaining))
