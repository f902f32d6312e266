"""Every Prometheus metric the bridge counts, defined once, and the ``/metrics`` exposition.

Counters and histograms are prometheus-client's; in multiprocess mode
(``PROMETHEUS_MULTIPROC_DIR``, see :mod:`bridge.telemetry.metrics_dir`) each process writes its own
file and a scrape sums them all, so the numbers cover every gunicorn worker, the delivery
worker and the webhook sender of the machine. What is really Redis state (the stream, the
binds, the oldest queued message, dead letters) is not counted here: it is read from Redis at
scrape time (:mod:`bridge.ops.scrape`).

This module imports nothing of ours, so every package may count into it. The ``count_*``
helpers never raise: a metric that cannot be written must not fail a send or a settlement.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.multiprocess import MultiProcessCollector

log = logging.getLogger(__name__)

NAMESPACE = "smpp_bridge"

http_requests = Counter(
    "http_requests",
    "HTTP requests answered, by route template (unmatched = no route), method and status.",
    ["route", "method", "status"],
    namespace=NAMESPACE,
)
accept_seconds = Histogram(
    "accept_seconds",
    "Time to answer a send request (validate, price, charge, commit, enqueue), by route.",
    ["route"],
    namespace=NAMESPACE,
    buckets=(0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
rate_limited = Counter(
    "rate_limited",
    "Requests refused 429 by the /api/v2 rate limit, by bucket (key or address).",
    ["bucket"],
    namespace=NAMESPACE,
)
failed_logins = Counter(
    "failed_logins",
    "Password logins refused: bad_credentials (401) or locked_out (429, the login throttle).",
    ["reason"],
    namespace=NAMESPACE,
)
submits = Counter(
    "submits",
    "submit_sm answers per part, by connection and command_status (the SMPP status name; "
    "timeout = no answer in time, not_sent = never written).",
    ["connection", "command_status"],
    namespace=NAMESPACE,
)
receipts = Counter(
    "receipts",
    "Delivery receipts received, by connection and stat (DELIVRD, UNDELIV, ...; other = a "
    "word outside the SMPP table).",
    ["connection", "stat"],
    namespace=NAMESPACE,
)
accept_to_delivered_seconds = Histogram(
    "accept_to_delivered_seconds",
    "From acceptance of a message to the commit that stored it delivered, by the connection "
    "that submitted it.",
    ["connection"],
    namespace=NAMESPACE,
    buckets=(0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 6 * 3600, 24 * 3600),
)
webhook_attempts = Counter(
    "webhook_attempts",
    "Webhook POST attempts by outcome: delivered (2xx), retry (tried again later), failed "
    "(a final refusal: 3xx/4xx or a refused target; dead-lettered) or dead (the retry period "
    "spent; dead-lettered).",
    ["outcome"],
    namespace=NAMESPACE,
)

# The stats a receipt may carry (smpp.codec.receipt.STATES); anything else is "other", so a
# misbehaving SMSC cannot make one time series per garbage word.
RECEIPT_STATS = frozenset(
    {"DELIVRD", "UNDELIV", "EXPIRED", "DELETED", "REJECTD", "ENROUTE", "ACCEPTD", "UNKNOWN"}
)
WEBHOOK_OUTCOMES = frozenset({"delivered", "retry", "failed", "dead"})

F = TypeVar("F", bound=Callable[..., None])


def _never_fails(func: F) -> F:
    def wrapper(*args: Any, **kwargs: Any) -> None:
        try:
            func(*args, **kwargs)
        except (OSError, ValueError) as exc:  # a full disk, a bad label: lose the count only
            log.warning("metric %s not counted: %s", func.__name__, exc)

    wrapper.__name__ = func.__name__
    wrapper.__doc__ = func.__doc__
    return wrapper  # type: ignore[return-value]


# (route, method, status, send) -> the labelled counter and histogram: ``labels()`` takes a
# lock and builds the key on every call, a third of count_request's CPU per request
_request_children: dict[tuple[str, str, int, bool], tuple[Any, Any]] = {}
_REQUEST_CHILDREN_MAX = 1000  # distinct label sets kept (methods are the client's words)


@_never_fails
def count_request(route: str, method: str, status: int, seconds: float, *, send: bool) -> None:
    """One answered request; ``send`` routes also feed the accept latency histogram."""
    key = (route, method, status, send)
    children = _request_children.get(key)
    if children is None:
        children = (
            http_requests.labels(route, method, str(status)),
            accept_seconds.labels(route) if send else None,
        )
        if len(_request_children) >= _REQUEST_CHILDREN_MAX:
            _request_children.clear()
        _request_children[key] = children
    children[0].inc()
    if children[1] is not None:
        children[1].observe(seconds)


@_never_fails
def count_rate_limited(bucket: str) -> None:
    rate_limited.labels(bucket).inc()


@_never_fails
def count_failed_login(reason: str) -> None:
    failed_logins.labels(reason).inc()


@_never_fails
def count_submit(connection: str, command_status: str) -> None:
    submits.labels(connection, command_status).inc()


@_never_fails
def count_receipt(connection: str, stat: str) -> None:
    receipts.labels(connection, stat if stat in RECEIPT_STATS else "other").inc()


@_never_fails
def observe_delivered(latencies: Iterable[tuple[str, float]]) -> None:
    """(connection, seconds) of each message just settled delivered."""
    for connection, seconds in latencies:
        accept_to_delivered_seconds.labels(connection).observe(max(0.0, seconds))


@_never_fails
def count_webhook_attempt(outcome: str) -> None:
    """For the webhook sender: ``outcome`` is delivered, retry, failed or dead."""
    if outcome not in WEBHOOK_OUTCOMES:
        raise ValueError(f"webhook outcome must be one of {sorted(WEBHOOK_OUTCOMES)}")
    webhook_attempts.labels(outcome).inc()


# Every metric here is labelled, so none holds a value until it is first counted (what lets
# bridge.telemetry.metrics_dir switch an early import to multiprocess mode).
_ALL = (
    http_requests,
    accept_seconds,
    rate_limited,
    failed_logins,
    submits,
    receipts,
    accept_to_delivered_seconds,
    webhook_attempts,
)


def counted_anything() -> bool:
    return any(metric._metrics for metric in _ALL)


def multiprocess() -> bool:
    return bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))


def exposition(collectors: Iterable[Any] = ()) -> tuple[bytes, str]:
    """(body, content type) of a scrape: every process's counts (the multiprocess directory,
    else this process's registry) plus ``collectors`` (read now, e.g. Redis state)."""
    registry = CollectorRegistry(auto_describe=False)
    if multiprocess():
        MultiProcessCollector(registry)
    else:
        registry.register(_Default())
    for collector in collectors:
        registry.register(collector)
    return generate_latest(registry), CONTENT_TYPE_LATEST


class _Default:
    """This process's default registry, inside a scrape's own registry."""

    def collect(self):
        yield from REGISTRY.collect()
