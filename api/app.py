"""The falcon app factory. Its parts are passed in; tests build the app with their own.

``create_app(config, service, redis)`` wires middleware (CORS/cache headers, API-key guard with
rate limiting), the error handlers and the routes. ``app_from_environment()`` is what a gunicorn
worker calls (through ``api.wsgi``) after it forks: it reads the config and opens the service
then, never at import time of the ``api`` package.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import falcon
import redis as redis_lib
from falcon.routing import CompiledRouter

from api import errors
from api.guard import ApiKeyGuard
from api.middleware import CommonHeaders, RequestMetrics
from api.openapi import build_spec
from api.resources import (
    account,
    batches,
    docs,
    health,
    inbound,
    keys,
    listing,
    messages,
    sms,
    status_page,
)
from api.resources.metrics import Metrics
from bridge.accept.logins import LoginThrottle
from bridge.accept.ratelimit import RateLimiter
from bridge.config import Config, load_config
from bridge.delivery.settlement.cancel import Canceller
from bridge.process.lifecycle import freeze_heap

if TYPE_CHECKING:  # imported where it is opened: the app module stays light
    from bridge.service import BridgeService

log = logging.getLogger(__name__)

# Redis calls of the rate limiter give up after this long (seconds), then fail open.
LIMITER_REDIS_TIMEOUT = 0.5
LIMITER_REDIS_RETRIES = 1  # one more attempt after a dropped connection, then fail open


def create_app(config: Config, service, redis: redis_lib.Redis | None) -> falcon.App:
    """The WSGI app over ``service`` (a BridgeService); ``redis`` holds the rate-limit counters
    (and is what ``/metrics`` reads the Redis gauges from: a client that gives up fast)."""
    limiter = RateLimiter(redis)
    guard = ApiKeyGuard(service, limiter, config.rate_limit_per_minute, config.max_body_bytes)
    router = CompiledRouter()  # shared with CommonHeaders: the preflight's Allow per path
    app = falcon.App(middleware=(RequestMetrics(), CommonHeaders(router), guard), router=router)
    app.req_options.strip_url_path_trailing_slash = True
    errors.install(app)
    body = config.max_body_bytes
    app.add_route("/v1/sms/send", sms.LegacySend(service, body))
    app.add_route("/api/v2/sms/send", sms.Send(service, body))
    app.add_route("/api/v2/account/balance", account.Balance(service))
    canceller = Canceller(service.db, service.redis)  # DELETE of messages and batches
    app.add_route("/api/v2/sms/{message_id}", messages.MessageStatus(service, canceller))
    app.add_route(listing.PATH, listing.MessageList(service, body))
    app.add_route(batches.PATH, batches.BatchStatus(service, canceller))
    inbound.routes(app, service, body)  # /api/v2/inbox, /api/v2/optouts
    app.add_route("/api/generate-key", keys.GenerateKey(service, body))
    app.add_route("/api/revoke-key", keys.RevokeKey(service, body))
    app.add_route("/api/regenerate-key", keys.RegenerateKey(service, body))
    app.add_route("/api/v2", docs.SwaggerUI())
    app.add_route("/api/v2/openapi.json", docs.OpenApiDocument(build_spec()))
    app.add_route("/api/v2/assets/{name}", docs.Asset())
    app.add_route("/api/oauth2-callback", docs.OAuth2Callback())
    app.add_route("/api/oauth2-redirect.js", docs.OAuth2RedirectScript())
    probes = redis if redis is not None else service.redis  # the fast-failing client if given
    app.add_route("/healthz", health.Healthz())
    app.add_route("/readyz", health.Readyz(config, probes, service.db))
    app.add_route(health.STATUS_PATH, health.Status(config, probes, service.db))
    status_page.routes(app)  # /status: the NOC page over /api/v2/status (no data of its own)
    app.add_route("/metrics", Metrics(config, redis))  # the operator's scrape
    return app


def limiter_client(config: Config) -> redis_lib.Redis | None:
    """A Redis client for the rate limiter that gives up fast, so a dead Redis fails open: short
    timeouts and one retry (redis-py's default 10 would hold a request 11 x the timeout), of a
    dropped connection only: a timeout is not retried, so a hung Redis costs one timeout (and a
    counted INCR is not sent twice)."""
    if not config.redis_url:
        return None
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    return redis_lib.Redis.from_url(
        config.redis_url,
        socket_timeout=LIMITER_REDIS_TIMEOUT,
        socket_connect_timeout=LIMITER_REDIS_TIMEOUT,
        retry=Retry(
            NoBackoff(), LIMITER_REDIS_RETRIES, supported_errors=(redis_lib.ConnectionError,)
        ),
    )


class _Running:
    """What ``app_from_environment`` opened in this process, so the worker can close it."""

    service: BridgeService | None = None
    redis: redis_lib.Redis | None = None


def app_from_environment() -> falcon.App:
    """Build the app of one API worker process from the environment (config + open_service).

    The service starts its flusher and the outbox sweeper thread here: every API process
    sweeps, and a Redis lock lets one at a time do it (bridge.accept.sweeper).
    """
    from bridge.service import open_service

    config = load_config()
    fast = limiter_client(config)  # failed-login counters fail open fast, as the rate limit
    service = open_service(
        config, run_sweeper=True, login_throttle=LoginThrottle.from_config(config, fast)
    )
    service.start()
    _Running.service, _Running.redis = service, fast
    app = create_app(config, service, _Running.redis)
    freeze_heap()  # start-up objects out of every later full collection's walk
    log.info("API worker ready (database %s)", config.effective_database_url.split("@")[-1])
    return app


def shutdown() -> None:
    """Stop what ``app_from_environment`` started (gunicorn's worker_exit hook calls this)."""
    service, _Running.service = _Running.service, None
    if service is not None:
        service.close()
    client, _Running.redis = _Running.redis, None
    if client is not None:
        client.close()
