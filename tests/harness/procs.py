"""Helpers for tests that start real processes: free ports, bounded waits, clean shutdown."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from typing import Literal, TypeVar

T = TypeVar("T")


def free_port(host: str = "127.0.0.1") -> int:
    """An ephemeral TCP port that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def wait_until(
    condition: Callable[[], T | None | Literal[False]],
    timeout: float = 10.0,
    interval: float = 0.01,
    message: str = "condition",
) -> T:
    """Poll ``condition`` until it returns a truthy value and return that value (never None or
    False, so a condition may answer ``x if ready else None``); fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while True:
        try:
            value = condition()
            if value:
                return value
        except Exception as exc:  # the condition may raise while the thing starts up
            last_error = exc
        if time.monotonic() >= deadline:
            raise TimeoutError(
                f"timed out after {timeout}s waiting for {message}"
                + (f" (last error: {last_error!r})" if last_error else "")
            )
        time.sleep(interval)


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.2):
        return True
    return False


def stop_process(proc: subprocess.Popen, timeout: float = 10.0) -> None:
    """SIGTERM, then SIGKILL after ``timeout``; always reaps the child."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            proc.wait(timeout)


@contextlib.contextmanager
def running(
    argv: list[str],
    ready: Callable[[], object],
    timeout: float = 20.0,
    env: dict[str, str] | None = None,
    cwd: str | None = None,
    log_path: str | None = None,
) -> Iterator[subprocess.Popen]:
    """Start a process, wait until ``ready()`` is truthy, yield it, and always stop it."""
    log = open(log_path or os.devnull, "ab")
    proc = subprocess.Popen(
        argv, env=env, cwd=cwd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    try:

        def _ready() -> object:
            if proc.poll() is not None:
                raise RuntimeError(
                    f"{argv[0]} exited with {proc.returncode} before it was ready"
                    + (f"; see {log_path}" if log_path else "")
                )
            return ready()

        wait_until(_ready, timeout=timeout, message=f"{os.path.basename(argv[0])} to be ready")
        yield proc
    finally:
        stop_process(proc)
        log.close()


def connections_to(pid: int, port: int) -> int:
    """How many established TCP connections to local ``port`` process ``pid`` holds (Linux)."""
    inodes = set()
    with contextlib.suppress(OSError):
        for fd in os.scandir(f"/proc/{pid}/fd"):
            with contextlib.suppress(OSError):
                target = os.readlink(fd.path)
                if target.startswith("socket:["):
                    inodes.add(target[8:-1])
    count = 0
    with contextlib.suppress(OSError), open("/proc/net/tcp") as table:
        for line in list(table)[1:]:
            fields = line.split()
            local_port = int(fields[1].rsplit(":", 1)[1], 16)
            if local_port == port and fields[3] == "01" and fields[9] in inodes:
                count += 1
    return count
