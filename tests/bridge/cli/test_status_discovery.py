"""`smpp-bridge status` finds the embedded Redis of a `run` on this machine without REDIS_URL."""

from bridge.cli import main


def test_status_uses_the_running_embedded_redis(redis_server, tmp_path, monkeypatch, capsys):
    var = tmp_path / "var"
    (var / "redis").mkdir(parents=True)
    (var / "redis" / "url").write_text(redis_server.url + "\n")  # as EmbeddedRedis writes it
    monkeypatch.delenv("REDIS_URL", raising=False)
    monkeypatch.delenv("BRIDGE_CONFIG", raising=False)
    monkeypatch.setenv("BRIDGE_VAR_DIR", str(var))
    assert main(["status"]) == 1  # found and read; no worker binds the simulator: exit 1
    out = capsys.readouterr().out
    assert "outbound stream" in out and "connection simulator has no bound bind" in out


def test_status_without_any_redis_says_what_to_set(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("REDIS_URL", raising=False)
    monkeypatch.delenv("BRIDGE_CONFIG", raising=False)
    monkeypatch.setenv("BRIDGE_VAR_DIR", str(tmp_path))
    assert main(["status"]) == 1
    err = capsys.readouterr().err
    assert "set REDIS_URL" in err and err.count("\n") == 1


def test_status_finds_the_password_of_the_embedded_redis(tmp_path, monkeypatch, capsys):
    from bridge.redis.embedded import EmbeddedRedis

    var = tmp_path / "var"
    monkeypatch.delenv("REDIS_URL", raising=False)
    monkeypatch.delenv("BRIDGE_CONFIG", raising=False)
    monkeypatch.setenv("BRIDGE_VAR_DIR", str(var))
    with EmbeddedRedis(var) as server:
        assert main(["status"]) == 1  # read (no bound bind: exit 1)
        (var / "redis" / "password").unlink()  # as for a user who cannot read it
        assert main(["status"]) == 1
    captured = capsys.readouterr()
    assert "outbound stream" in captured.out
    assert "redis/password" in captured.err and "Traceback" not in captured.err
    assert server.password not in captured.out + captured.err
