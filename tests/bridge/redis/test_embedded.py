"""The embedded redis-server of `smpp-bridge run`: local only, AOF on, one owner per var dir,
a password kept 0600 in var/redis and never on a command line or in a message."""

from __future__ import annotations

import os
import socket
import stat
from pathlib import Path

import pytest
import redis

from bridge.redis.embedded import EmbeddedRedis, EmbeddedRedisError, running_url


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_starts_on_a_free_local_port_with_aof_and_keeps_data(tmp_path):
    server = EmbeddedRedis(tmp_path / "var")
    url = server.start()
    assert server.proc is not None  # start() returned: the server runs
    pid = server.proc.pid
    try:
        client = redis.Redis.from_url(url)
        assert client.config_get("appendonly") == {"appendonly": "yes"}
        assert client.config_get("bind")["bind"] == "127.0.0.1"
        assert client.config_get("dir")["dir"] == str((tmp_path / "var" / "redis").resolve())
        client.set("kept", "yes")
        client.close()
        assert (tmp_path / "var" / "redis" / "url").read_text().strip() == server.public_url
        assert running_url(tmp_path / "var") == url
    finally:
        server.stop()
    assert not (tmp_path / "var" / "redis" / "url").exists()
    with pytest.raises(ProcessLookupError):
        import os

        os.kill(pid, 0)
    with EmbeddedRedis(tmp_path / "var") as again:  # a new port, the same data
        assert redis.Redis.from_url(again.url).get("kept") == b"yes"


def test_a_second_owner_of_the_same_directory_is_refused(tmp_path):
    with EmbeddedRedis(tmp_path) as first:
        with pytest.raises(EmbeddedRedisError) as refused:
            EmbeddedRedis(tmp_path).start()
        where = tmp_path.resolve() / "redis" / "password"
        shared = f"REDIS_URL=redis://:$(cat {where})@127.0.0.1:{first.port}/0"
        assert shared in str(refused.value)
        assert first.password not in str(refused.value)
        assert redis.Redis.from_url(first.url).ping()  # the first is untouched


def _raw(port: int, command: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(command)
        return sock.recv(200)


def test_it_refuses_clients_without_the_password(tmp_path):
    with EmbeddedRedis(tmp_path) as server:
        assert _raw(server.port, b"PING\r\n").startswith(b"-NOAUTH")
        assert _raw(server.port, b"XLEN sb:outbound\r\n").startswith(b"-NOAUTH")
        assert _raw(server.port, b"AUTH wrong\r\n").startswith(b"-WRONGPASS")
        assert redis.Redis.from_url(server.url).ping()
        assert server.proc is not None
        cmdline = Path(f"/proc/{server.proc.pid}/cmdline").read_bytes()
        assert server.password.encode() not in cmdline  # `ps` shows no password


def test_the_password_is_private_and_kept_across_restarts(tmp_path):
    var = tmp_path / "var"
    with EmbeddedRedis(var) as first:
        password = first.password
        redis.Redis.from_url(first.url).set("kept", "yes")
        redis_dir = var / "redis"
        assert len(password) >= 40
        assert _mode(redis_dir) == 0o700
        assert _mode(redis_dir / "password") == 0o600
        assert (redis_dir / "password").read_text().strip() == password
        assert _mode(redis_dir / "url") == 0o600
        assert password not in (redis_dir / "url").read_text()
        aof = [p for p in redis_dir.rglob("*.aof*") if p.is_file()]
        assert aof and all(_mode(p) & 0o077 == 0 for p in aof), aof
    os.chmod(var / "redis" / "password", 0o644)  # loosened by hand: narrowed again
    with EmbeddedRedis(var) as again:
        assert again.password == password
        assert _mode(var / "redis" / "password") == 0o600
        assert redis.Redis.from_url(again.url).get("kept") == b"yes"
