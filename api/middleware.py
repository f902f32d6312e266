"""Headers every response carries (CORS, cache), the answer to CORS preflight requests, and
the request metrics.

Every response, errors included, gets ``access-control-allow-origin: *`` and
``cache-control: no-cache, private``. An ``OPTIONS`` request on any path is a preflight: it is
answered ``204`` here with the methods and headers a browser client may use, before routing;
its ``Allow`` names the methods the path's resource answers (all of ours for an unknown path).
"""

from __future__ import annotations

import time

import falcon
from falcon.routing import CompiledRouter

from api.refusals import REFUSED
from bridge.telemetry import metrics

ALLOW_METHODS = "GET, POST, DELETE, OPTIONS"
ALLOW_HEADERS = "X-API-Key, Idempotency-Key, Content-Type, Authorization, Accept"
# Response headers a browser script may read (the simple ones are always readable).
EXPOSE_HEADERS = "X-RateLimit-Limit, X-RateLimit-Remaining, Retry-After, Idempotent-Replayed"
PREFLIGHT_MAX_AGE = "600"  # seconds a browser may cache the preflight answer


class CommonHeaders:
    """CORS and cache headers on every response; ``OPTIONS`` preflight answered with 204.
    ``router`` is the app's (for the preflight's per-path ``Allow``)."""

    def __init__(self, router: CompiledRouter | None = None) -> None:
        self._router = router

    def allowed(self, path: str) -> str:
        """The methods the resource at ``path`` implements, OPTIONS last (its own responders:
        falcon's 405 and OPTIONS defaults are plain functions, not bound to the resource)."""
        found = self._router.find(path) if self._router is not None else None
        if found is None:
            return ALLOW_METHODS
        resource, method_map = found[0], found[1]
        own = [m for m, fn in method_map.items() if getattr(fn, "__self__", None) is resource]
        return ", ".join([*(m for m in own if m != "OPTIONS"), "OPTIONS"])

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        if req.method == "OPTIONS" and REFUSED not in req.env:  # not one the worker refused
            resp.status = falcon.HTTP_204
            resp.set_header("Access-Control-Allow-Methods", ALLOW_METHODS)
            resp.set_header("Access-Control-Allow-Headers", ALLOW_HEADERS)
            resp.set_header("Access-Control-Max-Age", PREFLIGHT_MAX_AGE)
            resp.set_header("Allow", self.allowed(req.path))
            resp.complete = True

    def process_response(
        self, req: falcon.Request, resp: falcon.Response, resource: object, req_succeeded: bool
    ) -> None:
        resp.set_header("Access-Control-Allow-Origin", "*")
        resp.set_header("Access-Control-Expose-Headers", EXPOSE_HEADERS)
        resp.set_header("Cache-Control", "no-cache, private")


SEND_ROUTES = frozenset({"/v1/sms/send", "/api/v2/sms/send"})
UNMATCHED = "unmatched"  # the route label of requests no route took (404s, preflights)


class RequestMetrics:
    """Counts every answer by route template, method and status, and times the send routes
    (bridge.telemetry.metrics). First in the chain, so its clock covers the other middleware."""

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        req.context.started = time.perf_counter()

    def process_response(
        self, req: falcon.Request, resp: falcon.Response, resource: object, req_succeeded: bool
    ) -> None:
        started = getattr(req.context, "started", None)
        seconds = 0.0 if started is None else time.perf_counter() - started
        route = req.uri_template or UNMATCHED
        metrics.count_request(
            route, req.method, resp.status_code, seconds, send=route in SEND_ROUTES
        )
