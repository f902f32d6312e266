"""Redis clients with the timeouts and retries the bridge relies on."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

import redis as redis_lib
from redis.backoff import ExponentialBackoff, NoBackoff
from redis.retry import Retry

SEND_REDIS_TIMEOUT = 0.5  # seconds: connect and read timeout of the send path's XADD / ZADD


def make_redis(url: str):
    """A Redis client that fails fast when Redis is down (redis-py's default retries ~4 s).

    Two quick retries ride out a blip; beyond that the send path logs and the sweeper catches up.
    """
    return redis_lib.Redis.from_url(
        url,
        socket_connect_timeout=1.0,
        socket_timeout=5.0,
        health_check_interval=30,
        retry=Retry(ExponentialBackoff(cap=0.1, base=0.01), 2),
    )


def make_send_redis(url: str):
    """The accept path's Redis client (the XADD, or the schedule ZADD, after the commit): a
    hung Redis costs a send one ``SEND_REDIS_TIMEOUT`` (the send answers 200, the sweeper
    enqueues it later) instead of three 5 s reads.

    A dropped or refused connection (a Redis restart, a blip) is retried twice at once; a
    timeout is not: Redis may still run the command, and a hung one would only cost again.
    """
    return redis_lib.Redis.from_url(
        url,
        socket_connect_timeout=SEND_REDIS_TIMEOUT,
        socket_timeout=SEND_REDIS_TIMEOUT,
        health_check_interval=30,
        retry=Retry(
            ExponentialBackoff(cap=0.1, base=0.01), 2, supported_errors=(redis_lib.ConnectionError,)
        ),
    )


def make_probe_redis(url: str, timeout: float):
    """A Redis client for a one-shot operator command (``smpp-bridge status``): every connect
    and read gives up after ``timeout`` seconds, with no retries, so a Redis that accepts
    connections but never answers costs the command seconds instead of half a minute."""
    return redis_lib.Redis.from_url(
        url,
        socket_connect_timeout=timeout,
        socket_timeout=timeout,
        retry=Retry(NoBackoff(), 0),
    )


def redact(url: str | None) -> str:
    """``url`` fit to print: a password in it becomes ``***`` (the user name is kept)."""
    if not url:
        return ""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))
