"""Messages by state in 10-second buckets (bridge.redis.stats), against a real Redis."""

from __future__ import annotations

from bridge.redis import keys as redis_keys
from bridge.redis.stats import count_transitions, read_state_counts

T0 = 1_765_000_000.0  # a bucket boundary (divisible by 10)


def test_the_last_minute_and_hour_sum_their_buckets(redis_client):
    def at(t: float):
        return lambda: T0 + t

    count_transitions(redis_client, ["submitted", "submitted", "delivered"], clock=at(0))
    count_transitions(redis_client, ["delivered"], clock=at(55))  # 6th bucket: still a minute
    count_transitions(redis_client, ["failed"], clock=at(-3000))  # 50 min before T0
    count_transitions(redis_client, ["expired"], clock=at(-3700))  # over an hour before
    count_transitions(redis_client, [], clock=at(0))  # nothing: no round trip, no key

    assert read_state_counts(redis_client, clock=at(59)) == {
        "last_minute": {"delivered": 2, "submitted": 2},
        "last_hour": {"delivered": 2, "failed": 1, "submitted": 2},
    }
    # a minute on, T0's bucket has left the minute but not the hour
    assert read_state_counts(redis_client, clock=at(60))["last_minute"] == {"delivered": 1}
    assert read_state_counts(redis_client, clock=at(60))["last_hour"]["submitted"] == 2
    # every bucket expires once the hour no longer reads it
    ttl = redis_client.ttl(redis_keys.state_counts_key(int(T0) // 10))
    assert 3600 <= ttl <= 3660


def test_nothing_counted_reads_as_empty(redis_client):
    assert read_state_counts(redis_client) == {"last_minute": {}, "last_hour": {}}
