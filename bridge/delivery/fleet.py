"""Fleet-wide coordination in Redis: bind leases, per-account TPS buckets, bind status heartbeats.

Several worker processes on several machines share one Redis. The carrier caps the binds of an
SMSC account and its messages per second, so every bind first takes a :class:`BindLeases` slot
and every submit first takes tokens from the account's :class:`TokenBucket`. Both are single Lua
scripts (atomic) that read the time with Redis ``TIME``, so machines with skewed clocks agree.
Each bind also publishes its state (:func:`publish_bind_status`) for ``smpp-bridge status``,
``GET /api/v2/status`` and ``/readyz``; an overdue heartbeat reads as ``down``.
"""

from __future__ import annotations

import json
import logging
import math
import os
import socket
import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any

import redis as redis_lib

from bridge.config import default_burst
from bridge.delivery.holders import (
    Holder,
    HostIdentity,
    current_holder,
    holder_is_dead,
    holder_label,
    parse_holder,
)
from bridge.redis import keys as redis_keys

log = logging.getLogger(__name__)

# Every script starts with this: ARGV[1] is the caller's clock ("" = use Redis TIME).
_NOW = """
local now
if ARGV[1] ~= '' then now = tonumber(ARGV[1]) else
  local t = redis.call('TIME'); now = tonumber(t[1]) + tonumber(t[2]) / 1000000 end
"""

# The lease zset outlives its longest lease by a second (never shortened by a shorter ttl).
_KEEP_ALIVE = """
local function keep_alive(ttl)
  local want = math.ceil(ttl * 1000) + 1000
  if redis.call('PTTL', KEYS[1]) < want then redis.call('PEXPIRE', KEYS[1], want) end
end
"""

# KEYS[1] lease zset; ARGV: now, ttl, max_binds, lease id, dead lease id ("" = none). A dead
# holder's lease goes only if it is still that exact id (a compare-and-delete: a lease released
# or taken over meanwhile is gone, and every lease id is new), then the lease is granted under
# the cap. Returns 2 when the dead lease was removed and the lease granted, 1 when granted
# without removing one, 0 when refused.
_ACQUIRE = (
    _NOW
    + _KEEP_ALIVE
    + """
local ttl, cap = tonumber(ARGV[2]), tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local removed = 0
if ARGV[5] ~= '' then removed = redis.call('ZREM', KEYS[1], ARGV[5]) end
if redis.call('ZCARD', KEYS[1]) >= cap then return 0 end
redis.call('ZADD', KEYS[1], now + ttl, ARGV[4])
keep_alive(ttl)
return 1 + removed
"""
)

# KEYS[1] lease zset; ARGV: now, ttl, lease id. Returns 1 when still held (and extended).
_RENEW = (
    _NOW
    + _KEEP_ALIVE
    + """
local ttl = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if not redis.call('ZSCORE', KEYS[1], ARGV[3]) then return 0 end
redis.call('ZADD', KEYS[1], now + ttl, ARGV[3])
keep_alive(ttl)
return 1
"""
)

# KEYS[1] lease zset; ARGV: now, lease id.
_RELEASE = (
    _NOW
    + """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
return redis.call('ZREM', KEYS[1], ARGV[2])
"""
)

# KEYS[1] lease zset; ARGV: now. Live leases with their seconds left.
_HOLDERS = (
    _NOW
    + """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local out = {}
local rows = redis.call('ZRANGE', KEYS[1], 0, -1, 'WITHSCORES')
for i = 1, #rows, 2 do out[#out + 1] = rows[i]; out[#out + 1] = tostring(tonumber(rows[i + 1]) - now) end
return out
"""
)


class BindLeases:
    """Caps the binds of each SMSC account across every worker of the fleet.

    A lease lives ``ttl`` seconds unless renewed; renew every ``ttl / 3`` or so. A worker that
    dies stops renewing, and its slots come free after ``ttl``, or at once for a worker on the
    same machine: a lease id names its holder (bridge.delivery.holders), and an acquire that
    finds the cap full takes over the lease of a holder proven dead. ``clock`` (seconds) is for
    tests only; by default the scripts read Redis ``TIME``. ``identity`` says who this process
    is as a holder (None: old-form ids, no take-over), for tests too.
    """

    def __init__(
        self,
        redis: redis_lib.Redis,
        *,
        ttl: float = 15.0,
        clock: Callable[[], float] | None = None,
        new_id: Callable[[], str] = lambda: uuid.uuid4().hex[:16],
        identity: Callable[[], Holder | None] = current_holder,
    ) -> None:
        if ttl <= 0:
            raise ValueError(f"lease ttl must be positive seconds, got {ttl!r}")
        self.ttl = ttl
        self._redis = redis
        self._clock = clock
        self._new_id = new_id
        self._identity = identity
        self._acquire = redis.register_script(_ACQUIRE)
        self._renew = redis.register_script(_RENEW)
        self._release = redis.register_script(_RELEASE)
        self._holders = redis.register_script(_HOLDERS)

    def _now(self) -> str:
        return "" if self._clock is None else repr(float(self._clock()))

    def acquire(self, account: str, max_binds: int, holder: str) -> str | None:
        """A lease id when fewer than ``max_binds`` live leases exist for ``account``, or when
        one of them is held by a process of this machine that is gone (taken over at once,
        logged at WARNING); else None.

        ``holder`` (e.g. "host:pid:connection#1") prefixes the lease id so status shows who.
        """
        if max_binds < 1:
            raise ValueError(f"max_binds must be at least 1, got {max_binds!r}")
        me = self._identity()
        lease = f"{holder}/{self._new_id()}" + ("" if me is None else me.suffix())
        key = redis_keys.bind_lease_key(account)
        granted = self._acquire(keys=[key], args=[self._now(), self.ttl, max_binds, lease, ""])
        if int(granted):
            return lease
        if me is None:
            return None  # we cannot prove anything about others' processes either
        return self._take_over_dead(account, max_binds, lease, me.host)

    def _take_over_dead(
        self, account: str, max_binds: int, lease: str, here: HostIdentity
    ) -> str | None:
        """Take the slot of the first lease whose holder is a dead process of this machine."""
        key = redis_keys.bind_lease_key(account)
        for dead, left in self.holders(account).items():
            holder = parse_holder(dead)
            if holder is None or not holder_is_dead(holder, here):
                continue
            took = int(
                self._acquire(keys=[key], args=[self._now(), self.ttl, max_binds, lease, dead])
            )
            if took == 2:
                self._forget_statuses(holder)
                log.warning(
                    "took over the bind lease of %s for %s at once: its holder (pid %d, "
                    "started at tick %d) is gone from this machine; the lease had %.1fs left",
                    holder_label(dead),
                    account,
                    holder.pid,
                    holder.start_time,
                    left,
                )
            if took:
                return lease
        return None

    def _forget_statuses(self, holder: Holder) -> None:
        """The bind statuses the dead holder's process published go with it (they would read
        ``down`` for STALE_KEEP next to its successor's); never fails the take-over."""
        try:
            clear_process_statuses(self._redis, holder.host.hostname, holder.pid)
        except redis_lib.RedisError as exc:
            log.warning("could not remove the bind statuses of pid %d: %s", holder.pid, exc)

    def renew(self, account: str, lease: str) -> bool:
        """Extend a lease by ``ttl``; False when it had expired or was released (unbind now)."""
        held = self._renew(
            keys=[redis_keys.bind_lease_key(account)], args=[self._now(), self.ttl, lease]
        )
        return int(held) == 1

    def release(self, account: str, lease: str) -> None:
        """Give the slot back at once (after unbinding); releasing twice is harmless."""
        self._release(keys=[redis_keys.bind_lease_key(account)], args=[self._now(), lease])

    def holders(self, account: str) -> dict[str, float]:
        """Live lease ids of ``account`` and the seconds each has left."""
        rows = self._holders(keys=[redis_keys.bind_lease_key(account)], args=[self._now()])
        return {_text(rows[i]): float(rows[i + 1]) for i in range(0, len(rows), 2)}


# KEYS[1] bucket hash; ARGV: now, rate, burst, n, mode ("all" | "upto").
# Returns {granted, wait seconds as a string}. Nothing is taken when granted is 0.
_TAKE = (
    _NOW
    + """
local rate, burst, n = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local st = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens, ts = tonumber(st[1]), tonumber(st[2])
if tokens == nil or ts == nil then tokens, ts = burst, now end
if now > ts then tokens = math.min(burst, tokens + (now - ts) * rate); ts = now end
tokens = math.min(tokens, burst)
local granted, need = 0, n
if ARGV[5] == 'upto' then
  granted = math.min(n, math.floor(tokens)); need = 1
elseif tokens >= n then granted = n end
tokens = tokens - granted
local wait = 0
if granted == 0 then wait = (need - tokens) / rate end
redis.call('HSET', KEYS[1], 'tokens', string.format('%.17g', tokens), 'ts', string.format('%.17g', ts))
redis.call('PEXPIRE', KEYS[1], math.ceil((burst - tokens) / rate * 1000) + 1000)
return {granted, string.format('%.17g', wait)}
"""
)


class TokenBucket:
    """A token bucket per SMSC account, shared by every worker: at most ``rate`` messages a
    second on average, ``burst`` at once after idling. Exact under any concurrency (one Lua
    script per call). ``clock`` (seconds) is for tests only; by default Redis ``TIME``.
    """

    def __init__(self, redis: redis_lib.Redis, *, clock: Callable[[], float] | None = None) -> None:
        self._clock = clock
        self._take = redis.register_script(_TAKE)

    def take(self, account: str, rate: float, burst: int | None = None, n: int = 1) -> float:
        """Take ``n`` tokens: 0.0 when granted, else seconds to wait before retrying (nothing
        taken). ``burst`` defaults to a tenth of a second's worth, at least 1.

        All or nothing: while other workers take smaller amounts, a take of ``n > 1`` may wait
        long (it needs ``n`` tokens at once); batches should use :meth:`take_up_to`.
        """
        burst = _check(rate, burst, n)
        if n > burst:
            raise ValueError(
                f"cannot take {n} tokens at once from a bucket of burst {burst}; "
                "raise tps_burst or take fewer (take_up_to takes what there is)"
            )
        granted, wait = self._call(account, rate, burst, n, "all")
        return 0.0 if granted else wait

    def take_up_to(
        self, account: str, rate: float, burst: int | None = None, n: int = 1
    ) -> tuple[int, float]:
        """Take as many tokens as are available, up to ``n``, in one round trip.

        Returns (granted, wait): ``granted`` may be 0..n; when it is 0, ``wait`` is the seconds
        until one token is available (else 0.0). For batching submits at thousands a second.
        """
        burst = _check(rate, burst, n)
        return self._call(account, rate, burst, n, "upto")

    def _call(self, account: str, rate: float, burst: int, n: int, mode: str) -> tuple[int, float]:
        now = "" if self._clock is None else repr(float(self._clock()))
        granted, wait = self._take(
            keys=[redis_keys.tps_bucket_key(account)], args=[now, repr(float(rate)), burst, n, mode]
        )
        return int(granted), float(wait)


def _check(rate: float, burst: int | None, n: int) -> int:
    if not (rate > 0 and math.isfinite(rate)):
        raise ValueError(f"rate must be a positive number of messages per second, got {rate!r}")
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n!r}")
    burst = default_burst(rate) if burst is None else burst
    if burst < 1:
        raise ValueError(f"burst must be at least 1, got {burst!r}")
    return burst


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


# --- bind status heartbeats ------------------------------------------------------------
# KEYS: status hash, expiry zset; ARGV: now, ttl, field, json. One hash field per bind.
_PUBLISH = (
    _NOW
    + """
redis.call('HSET', KEYS[1], ARGV[3], ARGV[4])
redis.call('ZADD', KEYS[2], now + tonumber(ARGV[2]), ARGV[3])
return 1
"""
)

# KEYS: status hash, expiry zset; ARGV: now, keep. Drops binds stale for more than ``keep``
# seconds; returns {now, field, json, expiry, field, json, expiry, ...} of the others.
_READ = (
    _NOW
    + """
local dead = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now - tonumber(ARGV[2]))
for _, field in ipairs(dead) do redis.call('HDEL', KEYS[1], field); redis.call('ZREM', KEYS[2], field) end
local out = {tostring(now)}
local rows = redis.call('ZRANGE', KEYS[2], 0, -1, 'WITHSCORES')
for i = 1, #rows, 2 do
  local record = redis.call('HGET', KEYS[1], rows[i])
  if record then out[#out + 1] = rows[i]; out[#out + 1] = record; out[#out + 1] = rows[i + 1] end
end
return out
"""
)

STALE_KEEP = 900.0  # seconds a stale bind is still shown (as down) before it is dropped


def publish_bind_status(
    redis: redis_lib.Redis,
    connection: str,
    bind_id: str,
    status: Mapping[str, Any],
    ttl: float = 30.0,
    *,
    clock: Callable[[], float] = time.time,
) -> None:
    """Publish one bind's state for ``smpp-bridge status``; ``ttl`` seconds after the last
    heartbeat it reads as stale (``down``), so publish every ``ttl / 3`` or so.

    ``status`` carries what the NOC should see (state, since, counters ...); hostname, pid,
    connection, bind_id, published_at (Unix seconds, ``clock``) and ttl are filled in unless
    given. Once overdue, :func:`read_bind_statuses` reads the bind as ``down``.
    The whole record must be JSON-serialisable.
    """
    record = {
        "hostname": socket.gethostname(),
        "pid": os.getpid(),
        **status,
        "connection": connection,
        "bind_id": bind_id,
        "published_at": clock(),
        "ttl": ttl,
    }
    _script(redis, _PUBLISH)(
        keys=[redis_keys.BIND_STATUS_HASH, redis_keys.BIND_STATUS_EXPIRY],
        args=["", ttl, _status_field(connection, bind_id), json.dumps(record, sort_keys=True)],
    )


def clear_bind_status(redis: redis_lib.Redis, connection: str, bind_id: str) -> None:
    """Remove one bind's status at once (clean shutdown) instead of waiting for its ttl."""
    field = _status_field(connection, bind_id)
    with redis.pipeline(transaction=True) as pipe:
        pipe.hdel(redis_keys.BIND_STATUS_HASH, field)
        pipe.zrem(redis_keys.BIND_STATUS_EXPIRY, field)
        pipe.execute()


def clear_process_statuses(redis: redis_lib.Redis, hostname: str, pid: int) -> int:
    """Remove every bind status that process ``pid`` of ``hostname`` published (a process
    proven dead); returns how many."""
    prefix = f"{hostname}:{pid}:"
    fields = [f for f in redis.hkeys(redis_keys.BIND_STATUS_HASH) if _text(f).startswith(prefix)]
    if fields:
        with redis.pipeline(transaction=True) as pipe:
            pipe.hdel(redis_keys.BIND_STATUS_HASH, *fields)
            pipe.zrem(redis_keys.BIND_STATUS_EXPIRY, *fields)
            pipe.execute()
    return len(fields)


def read_bind_statuses(
    redis: redis_lib.Redis,
    *,
    keep: float = STALE_KEEP,
    clock: Callable[[], float] | None = None,
) -> list[dict[str, Any]]:
    """Every bind of the fleet, sorted by connection, hostname, pid and bind id.

    A bind whose heartbeat is overdue reads ``state: "down"`` with ``stale: true`` (its
    published state kept as ``reported_state``) until ``keep`` seconds after it went stale,
    then it is dropped. Every record carries ``heartbeat_age`` (seconds since it was
    published). ``clock`` (seconds, for tests) replaces Redis ``TIME``.
    """
    now_arg = "" if clock is None else repr(float(clock()))
    rows = _script(redis, _READ)(
        keys=[redis_keys.BIND_STATUS_HASH, redis_keys.BIND_STATUS_EXPIRY], args=[now_arg, keep]
    )
    now = float(rows[0])
    records = []
    for i in range(1, len(rows), 3):
        record = json.loads(_text(rows[i + 1]))
        expiry = float(rows[i + 2])
        age = _heartbeat_age(record, now, expiry)
        record["heartbeat_age"] = None if age is None else round(age, 3)
        record["reported_state"] = record.get("state")
        record["stale"] = expiry <= now
        if record["stale"]:
            record["state"] = "down"
            record["last_error"] = (
                f"no heartbeat from {record.get('hostname')}:{record.get('pid')} for "
                f"{int(age or 0)}s (its worker stopped, hung or cannot reach Redis); it last "
                f"reported {record['reported_state']}"
            )
        records.append(record)
    return sorted(
        records,
        key=lambda r: (
            str(r.get("connection")),
            str(r.get("hostname")),
            str(r.get("pid")),
            str(r.get("bind_id")),
        ),
    )


def _heartbeat_age(record: Mapping[str, Any], now: float, expiry: float) -> float | None:
    """Seconds since the heartbeat, in Redis time (expiry - ttl is when it was published)."""
    ttl = record.get("ttl")
    if isinstance(ttl, (int, float)):
        return max(0.0, now - (expiry - ttl))
    published = record.get("published_at")  # the publisher's own clock: skew may show
    return max(0.0, now - published) if isinstance(published, (int, float)) else None


def _status_field(connection: str, bind_id: str) -> str:
    # bind ids are only unique per process, so the host and pid are part of the field
    return f"{socket.gethostname()}:{os.getpid()}:{connection}:{bind_id}"


def _script(redis: redis_lib.Redis, source: str) -> Any:
    """A registered script (EVALSHA, loading it again after a Redis restart)."""
    return redis.register_script(source)
