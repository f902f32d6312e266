"""The schedule of ``scheduled`` messages in Redis: one sorted set, score = send_at.

The database is the truth (``messages.state = 'scheduled'`` with ``send_at``); this set only
tells the releaser (bridge.delivery.release) which ids are due without a database query. The
accept path adds to it after its commit; a failed add is covered by the releaser's periodic
database scan, and a lost set (Redis restarted empty) by its rebuild. A member whose message was
already released or cancelled is harmless: the release UPDATE is conditional and skips it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from bridge.redis import keys as redis_keys
from bridge.redis.outbox import pipelined

_CHUNK = 5000  # members per ZADD / ZREM: bounds one command's size


def add(redis, items: Iterable[tuple[str, float]]) -> int:
    """ZADD (message id, send_at epoch) pairs, pipelined in chunks; returns how many were sent.
    ``redis`` is a redis.Redis or the accept path's PinnedConnections. Raises
    redis.RedisError when Redis is unreachable."""
    pairs = list(items)
    commands = [
        ("ZADD", redis_keys.SCHEDULE_SET, *(x for mid, at in chunk for x in (repr(at), mid)))
        for chunk in (pairs[i : i + _CHUNK] for i in range(0, len(pairs), _CHUNK))
    ]
    if commands:
        pipelined(redis, commands)
    return len(pairs)


def due(redis, now: float, count: int) -> list[str]:
    """Up to ``count`` ids due at ``now`` (score <= now), earliest first."""
    return [
        m.decode() if isinstance(m, bytes) else m
        for m in redis.zrangebyscore(redis_keys.SCHEDULE_SET, "-inf", now, start=0, num=count)
    ]


def remove(redis, ids: Sequence[str]) -> None:
    """ZREM the ids (released, cancelled, or no longer scheduled)."""
    for start in range(0, len(ids), _CHUNK):
        redis.zrem(redis_keys.SCHEDULE_SET, *ids[start : start + _CHUNK])


def next_due(redis) -> float | None:
    """The earliest send_at in the set (epoch seconds), None when it is empty."""
    first = redis.zrange(redis_keys.SCHEDULE_SET, 0, 0, withscores=True)
    return float(first[0][1]) if first else None


def is_built(redis) -> bool:
    """True when the set was rebuilt from the database since Redis last lost its data."""
    return bool(redis.exists(redis_keys.SCHEDULE_BUILT))


def mark_built(redis, at: float) -> None:
    redis.set(redis_keys.SCHEDULE_BUILT, repr(at))


def size(redis) -> int:
    return int(redis.zcard(redis_keys.SCHEDULE_SET))
