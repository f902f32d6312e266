"""A cross-process write lock for SQLite: writers take turns within microseconds, not in
SQLite's millisecond sleeps.

SQLite has one writer at a time. A connection that finds the database locked waits in SQLite's
busy handler, which *sleeps* 1, 2, 5, 10... ms between retries however soon the lock is free:
with two API processes committing groups of sends, a leader that lost the race slept ~1 ms
for a lock held ~0.3 ms, and its whole process's sends waited with it (measured: 23-36% of a
leader's time, p99 19 ms). Taking ``flock`` on a file beside the database around each write
transaction, tried again every 50 µs doubling to at most 1 ms, lets the next writer in within
about that of the previous commit. The wait is bounded (``wait``, SQLite's busy timeout by
default): past it a writer goes on without the lock, so a hung holder cannot hang the others.

Every write transaction of the bridge takes it: ``Database.begin()`` holds its Database's lock
(API and worker processes alike: sends, the flusher, settlement, the sweeper, the admin
commands), and the accept group takes the same one around its DBAPI-level transaction. Between
the API's groups and the worker's settlement batches that is what keeps a writer from sleeping
in SQLite's busy handler. Anyone else still meets SQLite's own locking, which stays the real
guarantee, so the lock is only about speed: a writer that skips it is still correct. On
PostgreSQL (row locks) and for in-memory SQLite it is a no-op.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import threading
import time
from collections.abc import Iterator

from sqlalchemy.engine import make_url

log = logging.getLogger(__name__)

LOCK_SUFFIX = "-writers.lock"
DEFAULT_WAIT = 10.0  # seconds a writer waits for the lock before going on without it
_FIRST_PAUSE, _MAX_PAUSE = 50e-6, 1e-3  # seconds between tries while another process holds it


def lock_path(url: str) -> str | None:
    """The lock file of a SQLite file database (None for PostgreSQL or in-memory SQLite)."""
    parsed = make_url(url)
    database = parsed.database
    if (
        parsed.get_backend_name() != "sqlite"
        or not database
        or database == ":memory:"
        or database.startswith("file:")
    ):
        return None
    return os.path.abspath(os.path.expanduser(database)) + LOCK_SUFFIX


class WriteLock:
    """``with lock.held(): <one write transaction>`` - exclusive across processes and threads.

    Each instance has its own open file (flock is per open file), and a thread lock, so
    threads sharing an instance also take turns.
    """

    def __init__(self, url: str, *, wait: float = DEFAULT_WAIT) -> None:
        self._path = lock_path(url)
        self._wait = wait
        self._threads = threading.Lock()
        self._fd: int | None = None
        self._owner: int | None = None  # thread id holding it through acquire()
        self._file_locked = False

    @property
    def active(self) -> bool:
        return self._path is not None

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        """Hold the lock for the block (a no-op inside this thread's own :meth:`acquire`)."""
        if self._path is None or self._owner == threading.get_ident():
            yield
            return
        self.acquire()
        try:
            yield
        finally:
            self.release()

    def acquire(self) -> bool:
        """Take the lock until :meth:`release` (same thread); ``held()`` blocks inside it
        are then no-ops. Waits at most ``wait`` seconds, then goes on without it (False):
        a hung holder must not hang every writer; SQLite's busy timeout decides then."""
        if self._path is None:
            return True
        if not self._threads.acquire(timeout=self._wait):
            self._gave_up("another thread of this process")
            return False
        try:
            if self._fd is None:
                self._fd = os.open(self._path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            self._file_locked = self._lock_file(self._fd)
        except BaseException:
            self._threads.release()
            raise
        self._owner = threading.get_ident()
        return self._file_locked

    def _lock_file(self, fd: int) -> bool:
        """flock, trying again after 50 µs, 100 µs... (at most 1 ms apart) while another
        process holds it: a blocking flock would wake sooner but could not be bounded."""
        deadline = None
        pause = _FIRST_PAUSE
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return True
            except BlockingIOError:
                pass
            now = time.monotonic()
            if deadline is None:
                deadline = now + self._wait
            elif now >= deadline:
                self._gave_up("another process")
                return False
            time.sleep(pause)
            pause = min(pause * 2, _MAX_PAUSE)

    def _gave_up(self, holder: str) -> None:
        log.warning(
            "the SQLite write lock %s was held by %s for over %.1f s; writing without"
            " it (SQLite's own lock still applies)",
            self._path,
            holder,
            self._wait,
        )

    def release(self) -> None:
        """Let go of what :meth:`acquire` took; a no-op when this thread does not hold it."""
        if self._path is None or self._owner != threading.get_ident():
            return
        self._owner = None
        try:
            if self._file_locked and self._fd is not None:  # locked implies open
                self._file_locked = False
                fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            self._threads.release()

    def close(self) -> None:
        with self._threads:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None
