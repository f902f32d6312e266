"""Password verification under a bounded concurrency, so guessing cannot take the CPU.

Each argon2 verify costs 64 MiB and tens of milliseconds of CPU on every core it uses. A
:class:`BoundedHasher` runs verifies on a small pool of threads per process (``concurrency``);
a request waits at most ``wait_seconds`` for one and is then refused with
:class:`HashingBusy` (503, nothing charged, ``Retry-After``) instead of queueing without end.
The pool's threads run at a lower CPU priority (nice +``NICE``, Linux; argon2's own lane
threads inherit it), so API-key requests keep their latency while the pool is saturated.
A login naming no usable account spends one verify too (:meth:`BoundedHasher.verify_dummy`),
so a wrong username answers as slowly as a wrong password.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import logging
import os
import secrets
import threading
from collections.abc import Callable

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from bridge.errors import DependencyDown

log = logging.getLogger(__name__)

NICE = 10  # added to the hashing threads' nice value (a weight ~10x below normal threads)
RUNNING_WAIT = 60.0  # seconds to wait for a verify that already started (it always finishes)
RETRY_AFTER = 1  # seconds a refused client is told to wait


class HashingBusy(DependencyDown):
    """Every password-hashing slot stayed busy for the whole wait (HTTP 503; nothing charged)."""

    message = "Service temporarily unavailable, nothing was charged; retry shortly."


class BoundedHasher:
    """``verify`` like argon2's PasswordHasher, at most ``concurrency`` at a time per process;
    ``hash`` (account creation, password changes) goes to the wrapped hasher directly."""

    def __init__(
        self, hasher: PasswordHasher, concurrency: int = 2, wait_seconds: float = 2.0
    ) -> None:
        if concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, got {concurrency!r}")
        self._hasher = hasher
        self.concurrency = concurrency
        self._wait = wait_seconds
        self._pool = concurrent.futures.ThreadPoolExecutor(
            concurrency, thread_name_prefix="password-hash", initializer=_lower_priority
        )
        self._lock = threading.Lock()
        self.active = 0  # verifies running now
        self.peak = 0  # most verifies ever running at once (tests and benches read it)
        self._dummy: str | None = None  # the hash verify_dummy checks against, made on first use
        self._dummy_lock = threading.Lock()

    def hash(self, password: str) -> str:
        return self._hasher.hash(password)

    def verify(self, stored_hash: str, password: str) -> bool:
        """True, or argon2's VerificationError/InvalidHashError; HashingBusy if no slot came
        free within the wait."""
        return self._bounded(self._verify, stored_hash, password)

    def verify_dummy(self, password: str) -> None:
        """Check ``password`` against a fixed dummy hash (this hasher's algorithm and
        parameters, made once, on first use) and forget the answer: a login naming no usable
        account costs what a wrong password costs, in the same slots (HashingBusy likewise)."""
        self._bounded(self._verify_dummy, password)

    def _bounded(self, check: Callable[..., bool], *args: str) -> bool:
        future = self._pool.submit(check, *args)
        try:
            return future.result(timeout=self._wait)
        except concurrent.futures.TimeoutError:
            if future.cancel():  # it never started: nothing spent, refuse now
                raise HashingBusy(
                    retry_after=RETRY_AFTER,
                    help="Password checks are saturated; retry in a second, or use an API key "
                    "(/api/v2), which needs no password check.",
                ) from None
        return future.result(timeout=RUNNING_WAIT)  # it is running: its answer is near

    def _verify(self, stored_hash: str, password: str) -> bool:
        with self._lock:
            self.active += 1
            self.peak = max(self.peak, self.active)
        try:
            return self._hasher.verify(stored_hash, password)
        finally:
            with self._lock:
                self.active -= 1

    def _verify_dummy(self, password: str) -> bool:
        try:
            return self._verify(self._dummy_hash(), password)
        except (VerificationError, InvalidHashError):
            return False

    def _dummy_hash(self) -> str:
        """Made in a hashing thread, so even its one-off cost stays inside the bound."""
        with self._dummy_lock:
            if self._dummy is None:
                self._dummy = self._hasher.hash(secrets.token_urlsafe(32))
            return self._dummy

    def close(self) -> None:
        """Stop the pool's threads (queued verifies are cancelled)."""
        self._pool.shutdown(wait=False, cancel_futures=True)


def _lower_priority() -> None:
    """Runs in each hashing thread: nice it (per thread on Linux; elsewhere a no-op)."""
    with contextlib.suppress(AttributeError, OSError):
        tid = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, tid, os.getpriority(os.PRIO_PROCESS, tid) + NICE)
