"""Messages by state over the last minute and hour: counters in 10-second buckets.

Settlement counts every transition it stores (``submitted`` and each final state) after its
transaction commits, one pipelined round trip per batch; the status collector sums the
buckets. Cheaper than counting rows in the database on every status poll, and exact enough
for a NOC (a count may be missing if Redis fails right after a commit; the database stays
the truth). Buckets are numbered by the writer's clock (``int(now) // BUCKET_SECONDS``).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterable

import redis as redis_lib

from bridge.redis import keys as redis_keys

BUCKET_SECONDS = 10
MINUTE_BUCKETS = 6  # the current bucket and the five before it
HOUR_BUCKETS = 360  # the current bucket and the 359 before it
_KEEP_SECONDS = HOUR_BUCKETS * BUCKET_SECONDS + 60  # a bucket expires once no window reads it


def count_transitions(
    redis: redis_lib.Redis, states: Iterable[str], *, clock: Callable[[], float] = time.time
) -> None:
    """Add one to the current bucket of each state in ``states`` (may raise RedisError)."""
    counts = Counter(str(s) for s in states)
    if not counts:
        return
    key = redis_keys.state_counts_key(int(clock()) // BUCKET_SECONDS)
    with redis.pipeline(transaction=False) as pipe:
        for state, n in counts.items():
            pipe.hincrby(key, state, n)
        pipe.expire(key, _KEEP_SECONDS)
        pipe.execute()


def read_state_counts(
    redis: redis_lib.Redis, *, clock: Callable[[], float] = time.time
) -> dict[str, dict[str, int]]:
    """``{"last_minute": {state: n}, "last_hour": {state: n}}``, states sorted by name."""
    current = int(clock()) // BUCKET_SECONDS
    with redis.pipeline(transaction=False) as pipe:
        for i in range(HOUR_BUCKETS):
            pipe.hgetall(redis_keys.state_counts_key(current - i))
        buckets = pipe.execute()
    minute: Counter[str] = Counter()
    hour: Counter[str] = Counter()
    for i, bucket in enumerate(buckets):
        for state, n in bucket.items():
            name = state.decode() if isinstance(state, bytes) else str(state)
            hour[name] += int(n)
            if i < MINUTE_BUCKETS:
                minute[name] += int(n)
    return {"last_minute": dict(sorted(minute.items())), "last_hour": dict(sorted(hour.items()))}
