"""Small helpers shared by the API tests."""

from __future__ import annotations

import base64
import contextlib
import http.client
import os
import re
import subprocess
import sys
from collections.abc import Iterator

import pytest

from tests.harness.procs import free_port, stop_process, wait_until

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# Tests where the database engine does not matter run on SQLite only (overrides the
# parametrised `database_url` fixture); the ones about money, keys and sends run on both.
sqlite_only = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)

COMMON = {"access-control-allow-origin": "*", "cache-control": "no-cache, private"}


def assert_common_headers(result) -> None:
    """The headers the contract puts on every response."""
    for name, value in COMMON.items():
        assert result.headers.get(name) == value, (name, dict(result.headers))


def assert_rate_headers(result) -> None:
    assert int(result.headers["x-ratelimit-limit"]) >= 1
    assert int(result.headers["x-ratelimit-remaining"]) >= 0


def basic(username: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{username}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


class LineReader:
    """Collects the lines a child process prints (a thread drains its stdout pipe)."""

    def __init__(self, stream) -> None:
        import threading

        self.lines: list[str] = []
        self._thread = threading.Thread(target=self._drain, args=(stream,), daemon=True)
        self._thread.start()

    def _drain(self, stream) -> None:
        for raw in iter(stream.readline, b""):
            self.lines.append(raw.decode("utf-8", "replace").rstrip("\n"))

    def text(self) -> str:
        return "\n".join(self.lines)

    def find(self, needle: str) -> list[str]:
        return [line for line in self.lines if needle in line]


def pid_gone(pid: int) -> bool:
    """True when ``pid`` no longer exists (a zombie waiting for init counts as gone)."""
    import os

    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True
    except OSError:
        return not os.path.exists(f"/proc/{pid}")


@contextlib.contextmanager
def gunicorn_api(
    tmp_path, database_url: str, redis_url: str, **settings: str
) -> Iterator[tuple[int, subprocess.Popen, LineReader]]:
    """The API under a real gunicorn (2 workers unless ``settings`` say otherwise) on a free
    port, with ``settings`` as BRIDGE_* environment; yields (port, process, its output) and
    stops it and waits for its workers to be gone, whatever happens."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("BRIDGE_")}
    env.update(
        DATABASE_URL=database_url,
        REDIS_URL=redis_url,
        BRIDGE_PORT=str(port),
        BRIDGE_API_WORKERS="2",
        BRIDGE_VAR_DIR=str(tmp_path / "var"),
    )
    env.update(settings)
    workers = int(env["BRIDGE_API_WORKERS"])

    proc = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "api.wsgi:app"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        cwd=ROOT,
    )
    out = LineReader(proc.stdout)
    try:
        wait_until(
            lambda: len(out.find("Booting worker")) >= workers and get(port, "/api/v2")[0] == 200,
            timeout=60,
            message="gunicorn to serve",
        )
        yield port, proc, out
    finally:
        stop_process(proc, timeout=20)
        pids = [int(p) for p in re.findall(r"Booting worker with pid: (\d+)", out.text())]
        wait_until(lambda: all(pid_gone(p) for p in pids), timeout=10, message="workers gone")


def get(port: int, path: str, headers: dict | None = None, timeout: float = 10):
    """(status, headers, body) of one GET on a new connection to the API on ``port``."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, dict(resp.getheaders()), resp.read()
    finally:
        conn.close()


def read_answer(stream) -> tuple[int, bytes]:
    """One HTTP/1.1 answer with a Content-Length from a buffered socket file."""
    status = int(stream.readline().split()[1])
    length = 0
    while (line := stream.readline()) not in (b"\r\n", b""):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    return status, stream.read(length)


def fuzz_settings(examples: int):
    """Hypothesis settings of the API fuzz tests: bounded, reproducible, no example database."""
    from hypothesis import HealthCheck, settings

    return settings(
        max_examples=examples,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
