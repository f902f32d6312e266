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
