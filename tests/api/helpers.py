"""Small helpers shared by the API tests."""

from __future__ import annotations

import base64

import pytest

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
