"""bridge.accept.ratelimit over a real redis-server: exact counts across processes, windows, fail-open."""

from __future__ import annotations

import logging
import multiprocessing

import redis

from bridge.accept.ratelimit import RateLimiter
from bridge.redis import keys as redis_keys
from tests.harness.procs import wait_until


def _hammer(url: str, n: int, limit: int, out) -> None:
    limiter = RateLimiter(redis.Redis.from_url(url))
    out.put(sum(limiter.hit("key:shared", limit).allowed for _ in range(n)))


def test_counts_down_then_refuses_with_retry_after(redis_client):
    limiter = RateLimiter(redis_client)
    decisions = [limiter.hit("key:a", 3) for _ in range(4)]
    assert [d.remaining for d in decisions] == [2, 1, 0, 0]
    assert [d.allowed for d in decisions] == [True, True, True, False]
    assert 1 <= decisions[-1].retry_after <= 60
    assert redis_client.ttl(redis_keys.rate_limit_key("key:a")) > 0  # cleans itself up


def test_buckets_are_independent(redis_client):
    limiter = RateLimiter(redis_client)
    limiter.hit("key:a", 1)
    assert limiter.hit("key:b", 1).allowed


def test_peek_does_not_count(redis_client):
    limiter = RateLimiter(redis_client)
    limiter.hit("addr:1.2.3.4", 5)
    assert limiter.peek("addr:1.2.3.4", 5).remaining == 4
    assert limiter.peek("addr:1.2.3.4", 5).remaining == 4
    assert limiter.peek("addr:never", 5).remaining == 5


def test_exact_across_processes(redis_server):
    """Four processes race 50 hits each on one bucket of 60: exactly 60 pass."""
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    procs = [ctx.Process(target=_hammer, args=(redis_server.url, 50, 60, out)) for _ in range(4)]
    for p in procs:
        p.start()
    try:
        allowed = sum(out.get(timeout=60) for _ in procs)
    finally:
        for p in procs:
            p.join(timeout=30)
            if p.is_alive():
                p.kill()
    assert allowed == 60


def test_a_new_window_starts_when_the_old_one_ends(redis_client):
    limiter = RateLimiter(redis_client, window_seconds=0.3)
    assert limiter.hit("key:w", 1).allowed
    assert not limiter.hit("key:w", 1).allowed
    wait_until(
        lambda: redis_client.exists(redis_keys.rate_limit_key("key:w")) == 0,
        timeout=5,
        message="the window to expire",
    )
    assert limiter.hit("key:w", 1).allowed


def test_fails_open_and_logs_once_when_redis_is_down(redis_server, caplog):
    client = redis_server.client(socket_connect_timeout=0.5, socket_timeout=0.5)
    now = [1000.0]
    limiter = RateLimiter(client, log_every=30, clock=lambda: now[0])
    limiter.hit("key:x", 1)
    redis_server.stop()
    with caplog.at_level(logging.WARNING, logger="bridge.accept.ratelimit"):
        decisions = [limiter.hit("key:x", 1) for _ in range(3)]
        now[0] += 31
        limiter.hit("key:x", 1)
    assert all(d.allowed and d.degraded and d.remaining == 1 for d in decisions)
    assert len([r for r in caplog.records if "rate limiting is off" in r.message]) == 2
    redis_server.start()
    assert limiter.hit("key:y", 1).allowed and not limiter.hit("key:y", 1).allowed  # back on


def test_without_redis_everything_passes():
    assert RateLimiter(None).hit("key:z", 1).allowed


def test_a_redis_that_forgot_the_script_is_sent_it_again(redis_client):
    """After SCRIPT FLUSH (or a restart) EVALSHA answers NOSCRIPT: the limiter sends the script
    whole and goes on counting."""
    limiter = RateLimiter(redis_client)
    assert limiter.hit("key:s", 2).remaining == 1
    redis_client.script_flush()
    decision = limiter.hit("key:s", 2)
    assert decision.remaining == 0 and not decision.degraded
    assert redis_client.script_exists(_sha_of_hit())[0]  # cached again by the EVAL
    assert not limiter.hit("key:s", 2).allowed


def _sha_of_hit() -> str:
    import hashlib

    from bridge.accept import ratelimit

    return hashlib.sha1(ratelimit._HIT.encode()).hexdigest()
