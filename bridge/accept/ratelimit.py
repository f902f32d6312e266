"""Request rate limiting shared by every API worker process: one counter per bucket in Redis.

A bucket ("key:<key_id>" or "addr:<client address>") holds a fixed-window counter: the first
request of a window creates the key with a TTL of one window, every request increments it in
the same Lua script, so the count is exact however many gunicorn workers (or machines) share the
Redis. The window starts at a bucket's first request (as Laravel's throttle does), so a client
sees ``Retry-After`` counting down to the moment its own window ends. Like any fixed window, a
client can fit up to twice the limit in a short span straddling two windows; that is accepted.

If Redis is unreachable the limiter *fails open*: the request is allowed, the headers report the
full limit, and a warning is logged (at most once per ``log_every`` seconds). Accepting messages
must keep working without Redis; only the limit is lost while Redis is away.
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import redis
from redis.exceptions import NoScriptError

from bridge.redis import keys as redis_keys
from bridge.redis.pinned import PinnedConnections

log = logging.getLogger(__name__)

# KEYS[1] = counter, ARGV[1] = window in ms. Returns {count, ms until the window ends}.
_HIT = """
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  ttl = tonumber(ARGV[1])
end
return {n, ttl}
"""

# Same answer without counting (for requests that only report the headers).
_PEEK = """
local n = tonumber(redis.call('GET', KEYS[1]) or '0')
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then ttl = tonumber(ARGV[1]) end
return {n, ttl}
"""


@dataclass(frozen=True)
class Decision:
    """What the limiter says about one request; the API turns it into headers or a 429."""

    limit: int
    remaining: int  # requests left in this window, never negative
    allowed: bool
    retry_after: int  # whole seconds until the window ends (>= 1 when not allowed)
    degraded: bool = False  # True when Redis was unreachable and the limiter failed open


class RateLimiter:
    """Fixed-window counters in Redis. ``hit`` counts a request, ``peek`` only reads the bucket."""

    def __init__(
        self,
        client: redis.Redis | None,
        *,
        window_seconds: float = 60.0,
        log_every: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self._window_ms = int(window_seconds * 1000)
        self._log_every = log_every
        self._clock = clock
        self._last_logged: float | None = None
        self._redis = PinnedConnections(client) if client is not None else None
        self._hit = _Script(_HIT)
        self._peek = _Script(_PEEK)

    def hit(self, bucket: str, limit: int) -> Decision:
        """Count one request against ``bucket``; ``allowed`` is False once ``limit`` is passed."""
        return self._run(self._hit, bucket, limit, counting=True)

    def peek(self, bucket: str, limit: int) -> Decision:
        """The bucket's state without counting a request."""
        return self._run(self._peek, bucket, limit, counting=False)

    def _run(self, script: _Script, bucket: str, limit: int, counting: bool) -> Decision:
        if self._redis is None:
            return self._fail_open(limit, "no Redis is configured")
        try:
            count, ttl_ms = script.run(
                self._redis, redis_keys.rate_limit_key(bucket), self._window_ms
            )
        except (redis.RedisError, OSError) as exc:
            return self._fail_open(limit, f"Redis is unreachable ({exc})")
        count, ttl_ms = int(count), int(ttl_ms)
        allowed = count <= limit if counting else count < limit  # peek: would one more pass?
        retry_after = max(1, math.ceil(ttl_ms / 1000))
        return Decision(limit, max(0, limit - count), allowed, retry_after)

    def _fail_open(self, limit: int, why: str) -> Decision:
        now = self._clock()
        if self._last_logged is None or now - self._last_logged >= self._log_every:
            self._last_logged = now
            log.warning(
                "rate limiting is off: %s; requests are allowed unlimited until it is back", why
            )
        return Decision(limit, limit, True, 0, degraded=True)


class _Script:
    """A Lua script run by its SHA1 (EVALSHA), sent whole (EVAL, which caches it) when Redis
    does not know it yet, e.g. after a restart."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.sha = hashlib.sha1(text.encode()).hexdigest()

    def run(self, pinned: PinnedConnections, key: str, arg: int):
        try:
            return pinned.execute("EVALSHA", self.sha, 1, key, arg)
        except NoScriptError:
            return pinned.execute("EVAL", self.text, 1, key, arg)
