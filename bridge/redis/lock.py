"""A Redis lock for "one process at a time" background passes (the sweeper, the reconciler).

SET NX PX with a random token; released only by its holder (a Lua compare-and-delete), and
expiring by itself if the holder dies. Not a fencing lock: a pass that outlives the TTL may
overlap the next holder's, so the passes it guards must be safe to run twice.
"""

from __future__ import annotations

import contextlib
import logging
import uuid
from collections.abc import Iterator

from redis.exceptions import RedisError

log = logging.getLogger(__name__)

# Delete the lock only if we still hold it (it may have expired and been taken by another).
_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0
"""


@contextlib.contextmanager
def held(redis, key: str, ttl_ms: int) -> Iterator[bool]:
    """``with held(r, key, ttl) as got:`` -- ``got`` is True when this caller holds the lock
    for the block; raises RedisError when Redis cannot be asked. Released on the way out."""
    token = uuid.uuid4().hex
    if not redis.set(key, token, nx=True, px=ttl_ms):
        yield False
        return
    try:
        yield True
    finally:
        try:
            redis.eval(_RELEASE, 1, key, token)
        except RedisError as exc:  # the lock expires by itself
            log.warning("could not release the lock %s (%s); it expires in %d ms", key, exc, ttl_ms)
