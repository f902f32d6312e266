"""Bodies of the processes and threads the fleet tests start (importable for 'spawn').

Each reports through Redis (the only thing real workers share), never through pipes.
"""

from __future__ import annotations

import json
import threading
import time

import redis

from bridge.delivery.fleet import BindLeases, TokenBucket, publish_bind_status

GO = "test:go"  # the test sets this key to start every hammer at once
READY = "test:ready"  # each hammer INCRs it when connected
INSIDE = (
    "test:inside"  # holders currently inside their lease (INCR after acquire, DECR before release)
)
RESULTS = "test:results"  # one JSON line per hammer


def _await_go(client: redis.Redis, timeout: float = 30.0) -> None:
    client.incr(READY)
    deadline = time.monotonic() + timeout
    while not client.exists(GO):
        if time.monotonic() > deadline:
            raise TimeoutError("the test never said go")
        time.sleep(0.005)


def lease_hammer(url: str, account: str, max_binds: int, rounds: int, holder: str) -> dict:
    """Acquire, hold briefly, release, ``rounds`` times; report the most holders seen inside."""
    client = redis.Redis.from_url(url)
    leases = BindLeases(client, ttl=10.0)
    most = grants = denials = 0
    try:
        for _ in range(rounds):
            lease = leases.acquire(account, max_binds, holder)
            if lease is None:
                denials += 1
                time.sleep(0.001)
                continue
            grants += 1
            most = max(most, client.incr(INSIDE))
            time.sleep(0.002)  # the "bind" does some work while holding its slot
            client.decr(INSIDE)
            leases.release(account, lease)
    finally:
        client.close()
    return {"most": most, "grants": grants, "denials": denials}


def lease_process(url: str, account: str, max_binds: int, rounds: int, threads: int) -> None:
    """A worker process: ``threads`` binds competing for leases, like a real worker's pool."""
    client = redis.Redis.from_url(url)
    _await_go(client)
    results: list[dict] = []
    pool = [
        threading.Thread(
            target=lambda i=i: results.append(
                lease_hammer(url, account, max_binds, rounds, f"proc-thread{i}")
            )
        )
        for i in range(threads)
    ]
    for t in pool:
        t.start()
    for t in pool:
        t.join(60)
    client.rpush(RESULTS, *[json.dumps(r) for r in results])
    client.close()


def bucket_process(
    url: str, account: str, rate: float, burst: int, seconds: float, mode: str, n: int
) -> None:
    """Hammer the bucket for ``seconds`` (Redis time), sleeping the wait hints it is given."""
    client = redis.Redis.from_url(url)
    bucket = TokenBucket(client)
    _await_go(client)
    granted = calls = 0
    worst_wait = 0.0
    bad_waits = 0
    end = _redis_now(client) + seconds
    while _redis_now(client) < end:
        calls += 1
        if mode == "take":
            wait = bucket.take(account, rate, burst, n)
            got, limit = (n if wait == 0.0 else 0), n / rate
        else:
            got, wait = bucket.take_up_to(account, rate, burst, n)
            limit = 1 / rate
        granted += got
        if got == 0:
            worst_wait = max(worst_wait, wait)
            bad_waits += not (0 < wait <= limit + 1e-6)
            time.sleep(min(wait, 0.05))
    client.rpush(
        RESULTS,
        json.dumps(
            {"granted": granted, "calls": calls, "worst_wait": worst_wait, "bad_waits": bad_waits}
        ),
    )
    client.close()


def status_process(url: str, connection: str, bind_id: str) -> None:
    """Another worker publishing its bind's heartbeat."""
    client = redis.Redis.from_url(url)
    publish_bind_status(
        client,
        connection,
        bind_id,
        {"state": "bound_trx", "since": 1.0, "counters": {"submitted": 7}},
    )
    client.close()


def _redis_now(client: redis.Redis) -> float:
    seconds, micros = client.time()
    return seconds + micros / 1e6
