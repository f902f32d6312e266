"""Gauges that are Redis state, read at scrape time: the outbound stream, the oldest queued
message, every bind's state (from the heartbeats the workers publish) and the webhook queues.

A multiprocess gauge would be one process's opinion, stale once it dies; Redis holds the
fleet-wide truth, so ``/metrics`` reads it as it answers. When Redis does not answer,
``smpp_bridge_redis_up`` is 0 and these gauges are left out (the counters are still served).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable

import redis as redis_lib
from prometheus_client.core import GaugeMetricFamily

from bridge.delivery.fleet import read_bind_statuses
from bridge.delivery.reader import stream_info
from bridge.redis import keys as redis_keys

log = logging.getLogger(__name__)


class RedisState:
    """A prometheus-client collector over one Redis client (give it short timeouts: a scrape
    waits for it). ``connections`` are the configured connection names: each gets a
    ``connection_binds_bound`` sample, 0 when no bind of it reports bound."""

    def __init__(
        self,
        redis: redis_lib.Redis | None,
        connections: Iterable[str],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._redis = redis
        self._connections = tuple(connections)
        self._clock = clock

    def collect(self):
        up = GaugeMetricFamily("smpp_bridge_redis_up", "1 when Redis answered this scrape, else 0.")
        if self._redis is None:
            up.add_metric([], 0)
            yield up
            return
        try:
            families = list(self._read(self._redis))
        except redis_lib.RedisError as exc:
            log.warning("metrics: cannot read Redis state: %s", exc)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield from families

    def _read(self, client: redis_lib.Redis):
        info = stream_info(client)
        yield _gauge("outbound_stream_length", "Entries on the outbound stream.", info.length)
        yield _gauge(
            "outbound_pending", "Outbound entries read by a worker, not yet settled.", info.pending
        )
        if info.lag is not None:
            yield _gauge("outbound_lag", "Outbound entries no worker has read yet.", info.lag)
        yield _gauge(
            "oldest_queued_seconds",
            "Age of the oldest entry on the outbound stream (0 when empty): how long the "
            "longest-waiting accepted message has waited for its submit.",
            self._oldest_age(client),
        )
        yield from self._binds(client)
        yield _gauge(
            "receipt_log_length",
            "Delivery receipts acknowledged to the SMSC and not yet applied (the receipt log; "
            "new receipts are refused past [worker] receipt_backlog_limit).",
            client.xlen(redis_keys.receipts_stream_key()),
        )
        yield _gauge(
            "receipt_dead_letters",
            "Receipts settlement could not store, kept for replay (the newest ~10,000).",
            client.xlen(redis_keys.receipts_dead_key()),
        )
        yield _gauge(
            "webhook_queued",
            "Webhook events on the stream.",
            client.xlen(redis_keys.webhooks_stream_key()),
        )
        yield _gauge(
            "webhook_retrying",
            "Webhook events waiting for their next attempt.",
            client.zcard(redis_keys.webhooks_retry_key()),
        )
        yield _gauge(
            "webhook_dead_letters",
            "Webhook events dead-lettered (kept in Redis, the newest 100,000).",
            client.xlen(redis_keys.webhooks_dead_key()),
        )

    def _oldest_age(self, client: redis_lib.Redis) -> float:
        first = client.xrange(redis_keys.OUTBOUND_STREAM, count=1)
        if not first:
            return 0.0
        entry_id = first[0][0]
        text = entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)
        ms = int(text.split("-")[0])
        return max(0.0, self._clock() - ms / 1000)

    def _binds(self, client: redis_lib.Redis):
        state = GaugeMetricFamily(
            "smpp_bridge_bind_state",
            "1 for each bind's current state (bound, binding, down, no_lease, ...), from the "
            "worker heartbeats; a bind whose heartbeat stopped reads down.",
            labels=["connection", "bind", "worker", "state"],
        )
        bound = dict.fromkeys(self._connections, 0)
        for b in read_bind_statuses(client):
            name = str(b.get("connection"))
            worker = f"{b.get('hostname')}:{b.get('pid')}"
            state.add_metric([name, str(b.get("bind_id")), worker, str(b.get("state"))], 1)
            bound[name] = bound.get(name, 0) + (b.get("state") == "bound")
        yield state
        per_connection = GaugeMetricFamily(
            "smpp_bridge_connection_binds_bound",
            "Binds reporting bound, per connection (0 for a configured connection with none).",
            labels=["connection"],
        )
        for name, count in sorted(bound.items()):
            per_connection.add_metric([name], count)
        yield per_connection


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(f"smpp_bridge_{name}", documentation, value=value)
