"""The embedded redis-server of `smpp-bridge run`: local only, AOF on, one owner per var dir."""

from __future__ import annotations

import pytest
import redis

from bridge.redis.embedded import EmbeddedRedis, EmbeddedRedisError


def test_starts_on_a_free_local_port_with_aof_and_keeps_data(tmp_path):
    server = EmbeddedRedis(tmp_path / "var")
    url = server.start()
    try:
        client = redis.Redis.from_url(url)
        assert client.config_get("appendonly") == {"appendonly": "yes"}
        assert client.config_get("bind")["bind"] == "127.0.0.1"
        assert client.config_get("dir")["dir"] == str((tmp_path / "var" / "redis").resolve())
        client.set("kept", "yes")
        client.close()
        assert (tmp_path / "var" / "redis" / "url").read_text().strip() == url
    finally:
        pid = server.proc.pid
        server.stop()
    assert not (tmp_path / "var" / "redis" / "url").exists()
    with pytest.raises(ProcessLookupError):
        import os

        os.kill(pid, 0)
    with EmbeddedRedis(tmp_path / "var") as again:  # a new port, the same data
        assert redis.Redis.from_url(again.url).get("kept") == b"yes"


def test_a_second_owner_of_the_same_directory_is_refused(tmp_path):
    with EmbeddedRedis(tmp_path) as first:
        with pytest.raises(EmbeddedRedisError, match=f"REDIS_URL={first.url}"):
            EmbeddedRedis(tmp_path).start()
        assert redis.Redis.from_url(first.url).ping()  # the first is untouched
