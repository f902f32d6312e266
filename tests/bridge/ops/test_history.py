"""The charts' 15 minutes (bridge.ops.history) against a real Redis, with an injected clock."""

from __future__ import annotations

from bridge.ops.history import WINDOW_BUCKETS, read_history, sample_queue
from bridge.redis import keys as redis_keys
from bridge.redis.stats import count_transitions

T0 = 1_765_000_000.0  # a bucket boundary (divisible by 10)


def _at(t: float):
    return lambda: T0 + t


def test_whole_buckets_oldest_first_with_gaps_where_nobody_sampled(redis_client):
    count_transitions(redis_client, ["submitted"] * 3 + ["delivered", "failed"], clock=_at(0))
    count_transitions(redis_client, ["delivered"] * 2, clock=_at(-890))  # oldest bucket shown
    count_transitions(redis_client, ["delivered"], clock=_at(-910))  # past the 15 minutes
    sample_queue(redis_client, 7, clock=_at(1))
    sample_queue(redis_client, 99, clock=_at(9))  # the bucket has its sample: kept as 7
    count_transitions(redis_client, ["submitted"], clock=_at(10))  # the bucket still filling

    got = read_history(redis_client, clock=_at(15))
    assert got["bucket_seconds"] == 10 and got["start"] == T0 - 890
    assert len(got["submitted"]) == len(got["queue_length"]) == WINDOW_BUCKETS
    assert got["submitted"][-1] == 3 and sum(got["submitted"]) == 3  # not the filling bucket
    assert got["settled"]["delivered"][-1] == 1 and got["settled"]["delivered"][0] == 2
    assert sum(got["settled"]["delivered"]) == 3 and got["settled"]["failed"][-1] == 1
    assert got["queue_length"][-1] == 7 and got["queue_length"][:-1] == [None] * 89
    ttl = redis_client.ttl(redis_keys.queue_sample_key(int(T0) // 10))
    assert 900 < ttl <= 960  # kept while a window reads it, then gone
