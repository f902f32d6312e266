"""The last 15 minutes for the status page's charts, in 10-second buckets.

Throughput comes from the buckets settlement already counts (bridge.redis.stats: transitions
by state, written by every worker whether anyone watches or not). Queue depth has no writer of
its own: the collector samples the outbound stream's length into the current bucket each time
the status document is read (the page polls every 2 s, so a watched bridge has every bucket;
buckets nobody read are ``None``, drawn as gaps). Only whole buckets are returned, so the
newest point never dips because its bucket is still filling.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import redis as redis_lib

from bridge.redis import keys as redis_keys
from bridge.redis.stats import BUCKET_SECONDS
from bridge.storage.states import MessageState as S

WINDOW_BUCKETS = 90  # 15 minutes of 10-second buckets
_SAMPLE_TTL = WINDOW_BUCKETS * BUCKET_SECONDS + 60  # seconds a queue sample is kept
# The final states a receipt (or a failure) settles a message in; "submitted" is counted apart.
SETTLED = tuple(str(s) for s in (S.DELIVERED, S.UNDELIVERED, S.EXPIRED, S.REJECTED, S.FAILED))


def sample_queue(
    redis: redis_lib.Redis, length: int, *, clock: Callable[[], float] = time.time
) -> None:
    """Keep ``length`` as the current bucket's queue depth unless the bucket has one."""
    bucket = int(clock()) // BUCKET_SECONDS
    redis.set(redis_keys.queue_sample_key(bucket), int(length), nx=True, ex=_SAMPLE_TTL)


def read_history(redis: redis_lib.Redis, *, clock: Callable[[], float] = time.time) -> dict:
    """The ``history`` section: per whole bucket, oldest first, messages submitted, settled
    (by state) and the queue depth sampled (None where none was)."""
    current = int(clock()) // BUCKET_SECONDS
    buckets = range(current - WINDOW_BUCKETS, current)
    with redis.pipeline(transaction=False) as pipe:
        for b in buckets:
            pipe.hgetall(redis_keys.state_counts_key(b))
        pipe.mget([redis_keys.queue_sample_key(b) for b in buckets])
        *counts, queue = pipe.execute()
    submitted: list[int] = []
    settled: dict[str, list[int]] = {s: [] for s in SETTLED}
    for bucket in counts:
        by_state = {_text(k): int(v) for k, v in bucket.items()}
        submitted.append(by_state.get("submitted", 0))
        for state, series in settled.items():
            series.append(by_state.get(state, 0))
    return {
        "bucket_seconds": BUCKET_SECONDS,
        "start": buckets.start * BUCKET_SECONDS,
        "submitted": submitted,
        "settled": settled,
        "queue_length": [None if v is None else int(v) for v in queue],
    }


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
