"""Failed password logins, throttled in Redis so guessing is bounded fleet-wide.

Three fixed-window counters per attempt (bridge.redis.keys.login_fail_keys): the client
address, the (username, address) pair and the username. A wrong password (or unknown user)
increments all three; a counter that reaches its limit is locked for the lockout from that
failure. Before a password is checked:

* an address with ``per_address`` failures is refused, whatever the username;
* a (username, address) pair with ``per_username`` failures is refused;
* a username with ``per_username`` failures from anywhere is refused only from addresses that
  have failed on it themselves: a correct password from an address with no failures on that
  username is always checked, so an attacker cannot lock the real user out of their account.

A correct password clears its own pair counter only (never the address or username counters,
which an attacker holding one account could otherwise reset). Refused attempts are not counted
and never reach the password hash. Like the request rate limiter, this fails open when Redis is
unreachable (logged; the bounded hashing still protects the CPU).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import redis

from bridge.redis import keys as redis_keys

log = logging.getLogger(__name__)

# KEYS = address, pair, username counters; ARGV = per-address limit, per-username limit.
# Returns {0, 0} (check the password) or {1 address | 2 pair | 3 username, ms until unlocked}.
_CHECK = """
local a = tonumber(redis.call('GET', KEYS[1]) or '0')
local p = tonumber(redis.call('GET', KEYS[2]) or '0')
local u = tonumber(redis.call('GET', KEYS[3]) or '0')
if a >= tonumber(ARGV[1]) then return {1, redis.call('PTTL', KEYS[1])} end
if p >= tonumber(ARGV[2]) then return {2, redis.call('PTTL', KEYS[2])} end
if p > 0 and u >= tonumber(ARGV[2]) then
  return {3, math.min(redis.call('PTTL', KEYS[2]), redis.call('PTTL', KEYS[3]))}
end
return {0, 0}
"""

# KEYS as above; ARGV = window ms, lockout ms, per-address limit, per-username limit.
_FAIL = """
local function bump(key, limit)
  local n = redis.call('INCR', key)
  if n == limit then
    redis.call('PEXPIRE', key, ARGV[2])
  elseif n == 1 or redis.call('PTTL', key) < 0 then
    redis.call('PEXPIRE', key, ARGV[1])
  end
end
bump(KEYS[1], tonumber(ARGV[3]))
bump(KEYS[2], tonumber(ARGV[4]))
bump(KEYS[3], tonumber(ARGV[4]))
return 1
"""

REFUSED_BY = {1: "address", 2: "username from this address", 3: "username"}


@dataclass(frozen=True)
class Lockout:
    """Why an attempt is refused before its password is checked, and for how long."""

    scope: str  # "address", "username from this address" or "username"
    retry_after: int  # whole seconds until the counter that refused it expires (>= 1)


class LoginThrottle:
    """Counts failed logins in Redis; ``check`` before hashing, ``failed``/``succeeded`` after."""

    def __init__(
        self,
        client: redis.Redis | None,
        *,
        per_username: int = 10,
        per_address: int = 50,
        window_seconds: float = 900.0,
        lockout_seconds: float = 900.0,
        log_every: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self._limits = (per_address, per_username)
        self._window_ms = int(window_seconds * 1000)
        self._lockout_ms = int(lockout_seconds * 1000)
        self._log_every, self._clock = log_every, clock
        self._last_logged: float | None = None
        # redis-py Scripts: EVALSHA, resent whole after a NOSCRIPT (e.g. a Redis restart)
        self._check = client.register_script(_CHECK) if client is not None else None
        self._fail = client.register_script(_FAIL) if client is not None else None

    @classmethod
    def from_config(cls, config, client: redis.Redis | None) -> LoginThrottle:
        return cls(
            client,
            per_username=config.login_failures_per_username,
            per_address=config.login_failures_per_address,
            window_seconds=config.login_window_seconds,
            lockout_seconds=config.login_lockout_seconds,
        )

    def check(self, username: str, address: str) -> Lockout | None:
        """None when the password may be checked, else the Lockout that refuses it."""
        answer = self._run(self._check, username, address, *self._limits)
        if not answer or int(answer[0]) == 0:
            return None
        code, ttl_ms = int(answer[0]), int(answer[1])
        return Lockout(REFUSED_BY[code], max(1, math.ceil(ttl_ms / 1000)))

    def failed(self, username: str, address: str) -> None:
        """Count a wrong password (or unknown username) from ``address``."""
        self._run(self._fail, username, address, self._window_ms, self._lockout_ms, *self._limits)

    def succeeded(self, username: str, address: str) -> None:
        """A correct password: this address is no longer suspect for this username."""
        if self._client is None:
            return
        try:
            self._client.delete(redis_keys.login_fail_keys(username, address)[1])
        except (redis.RedisError, OSError) as exc:
            self._fail_open(exc)

    def _run(self, script, username: str, address: str, *args: int):
        if script is None:
            return None
        keys = redis_keys.login_fail_keys(username, address)
        try:
            return script(keys=list(keys), args=list(args))
        except (redis.RedisError, OSError) as exc:
            self._fail_open(exc)
            return None

    def _fail_open(self, exc: Exception) -> None:
        now = self._clock()
        if self._last_logged is None or now - self._last_logged >= self._log_every:
            self._last_logged = now
            log.warning(
                "failed logins are not throttled: Redis is unreachable (%s); password checks "
                "stay bounded by the hashing concurrency until it is back",
                exc,
            )
