"""A Redis lock for "one process at a time" background passes (the sweeper, the reconciler),
and the thread that runs such a pass periodically.

SET NX PX with a random token; released only by its holder (a Lua compare-and-delete), and
expiring by itself if the holder dies. Not a fencing lock: a pass that outlives the TTL may
overlap the next holder's, so the passes it guards must be safe to run twice.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import uuid
from collections.abc import Callable, Iterator

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


class PeriodicPass:
    """A daemon thread calling ``run_once`` every ``interval`` seconds until ``stop()``; a
    dependency error (``retried``) is logged and the next interval tries again."""

    def __init__(
        self,
        name: str,
        run_once: Callable[[], object],
        interval: float,
        retried: tuple[type[BaseException], ...],
    ) -> None:
        self.name, self.interval = name, interval
        self._run_once, self._retried = run_once, retried
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        thread, self._thread = self._thread, None
        if thread is not None:
            self._stop.set()
            thread.join(timeout)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self._run_once()
            except self._retried as exc:  # a dependency down: try again next interval
                log.warning("%s: %s; will retry in %gs", self.name, exc, self.interval)
