"""`smpp-bridge run` end to end in a subprocess: it prints a curl that works, Ctrl-C stops all."""

from __future__ import annotations

import contextlib
import http.client
import json
import re
import shlex
import signal
import subprocess
from pathlib import Path

import pytest
import redis

from bridge.redis import keys as redis_keys
from bridge.redis.embedded import running_url
from tests.api.helpers import LineReader, pid_gone
from tests.harness.bridge_run import READY, SMPP_BRIDGE, kill_group, run_env, start_run
from tests.harness.procs import free_port, wait_until

pytestmark = pytest.mark.slow
# The first start runs everything (the engine's simulator and worker included, so the stop
# covers every kind of child); the restart leaves the engine out to stay quick.
WITHOUT_ENGINE = ("--skip", "simulator", "--skip", "worker")


def _env(tmp_path: Path, port: int) -> dict[str, str]:
    return run_env(tmp_path, port, BRIDGE_API_WORKERS="2", BRIDGE_API_THREADS="2")


def _curl(line: str) -> tuple[int, dict]:
    """Run a printed curl command with http.client (only the flags the banner uses)."""
    argv = shlex.split(line)
    assert argv[0] == "curl"
    method, url, headers, data = "GET", None, {}, []
    it = iter(argv[1:])
    for arg in it:
        if arg == "-X":
            method = next(it)
        elif arg == "-H":
            name, _, value = next(it).partition(": ")
            headers[name] = value
        elif arg == "-d":
            data.append(next(it))
        elif arg != "-s":
            url = arg
    assert url is not None, f"no URL in {line!r}"
    match = re.fullmatch(r"http://([\d.]+):(\d+)(/.*)", url)
    assert match is not None
    body = "&".join(data).encode() if data else None
    if body is not None:
        headers["Content-Type"] = "application/x-www-form-urlencoded"  # what curl -d sends
    conn = http.client.HTTPConnection(match[1], int(match[2]), timeout=10)
    try:
        conn.request(method, match[3], body=body, headers=headers)
        resp = conn.getresponse()
        return resp.status, json.loads(resp.read())
    finally:
        conn.close()


def _message_url(send_curl: str, message_id: str) -> str:
    """A curl line for GET /api/v2/sms/<id>, with the send line's host and key."""
    argv = shlex.split(send_curl)
    url = next(a for a in argv if a.startswith("http://"))
    key = argv[argv.index("-H") + 1]
    return shlex.join(["curl", "-s", url.replace("/send", f"/{message_id}"), "-H", key])


def _start(tmp_path: Path, port: int, *extra: str) -> tuple[subprocess.Popen, LineReader]:
    return start_run(tmp_path, _env(tmp_path, port), *extra)


def _pids(out: LineReader) -> list[int]:
    text = out.text()
    pids = [int(p) for p in re.findall(r"started [\w-]+ \(pid (\d+)\)", text)]
    pids += [int(p) for p in re.findall(r"Booting worker with pid: (\d+)", text)]
    return pids


def _operator_status(port: int, token: str) -> tuple[int, dict]:
    """GET /api/v2/status with the operator token."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", "/api/v2/status", headers={"Authorization": f"Bearer {token}"})
        resp = conn.getresponse()
        return resp.status, json.loads(resp.read())
    finally:
        conn.close()


def _stop(proc: subprocess.Popen, out: LineReader) -> None:
    proc.send_signal(signal.SIGINT)  # what Ctrl-C does
    assert proc.wait(timeout=40) == 0, out.text()


@contextlib.contextmanager
def _running(tmp_path: Path, port: int, *extra: str):
    """`smpp-bridge run` until its banner; on leaving, Ctrl-C it and check every child is gone
    (on an error in the body: SIGKILL its whole process group instead)."""
    proc, out = _start(tmp_path, port, *extra)
    try:
        wait_until(
            lambda: out.find(READY) or proc.poll() is not None,
            timeout=90,
            message="smpp-bridge run to print its banner",
        )
        assert proc.poll() is None, out.text()
        wait_until(lambda: len(re.findall(r"Booting worker", out.text())) >= 2, timeout=30)
        pids = _pids(out)
        curls = [line.strip() for line in out.lines if line.strip().startswith("curl ")]
        shown = re.search(r"Redis (redis://\S+)", out.text())
        assert shown is not None, out.text()
        printed = shown[1]
        redis_url = running_url(tmp_path / "var")  # the password is only in var/redis/password
        assert redis_url is not None, "var/redis/url is missing while run is up"
        password = (tmp_path / "var" / "redis" / "password").read_text().strip()
        assert printed == redis_url.replace(password, "***")
        assert password not in out.text()
        yield curls, redis_url, out
        _stop(proc, out)
    finally:
        kill_group(proc)
    wait_until(
        lambda: all(pid_gone(p) for p in pids),
        timeout=10,
        message=f"every child of run to be gone: {pids}",
    )


def test_run_prints_a_working_curl_and_ctrl_c_stops_everything(tmp_path):
    port = free_port()
    with _running(tmp_path, port) as (curls, redis_url, out):
        pids = _pids(out)
        # redis, gunicorn master and its two workers, simulator, worker
        assert len(pids) >= 6 and "started worker" in out.text(), out.text()
        send, balance = curls
        status, body = _curl(send)
        assert status == 200 and body["status"] == "accepted" and body["count"] == 1, body
        status, body = _curl(balance)
        assert (status, body) == (200, {"username": "demo", "balance": "999.20", "currency": "KES"})
        key = re.search(r"Demo API key: (\S+)", out.text())
        assert key is not None, out.text()
        first_key = key[1]
        message_id = _curl(send)[1]["messages"][0]["message_id"]  # a second message
        message = _message_url(send, message_id)
        wait_until(
            lambda: _curl(message)[1]["state"] == "delivered",
            timeout=30,
            message=f"message {message_id} delivered through the simulator and worker",
        )
        # the operator token run made: its path printed, never the token; the NOC's document
        token_file = tmp_path / "var" / "operator-token"
        token = token_file.read_text().strip()
        assert f"is in {token_file}" in out.text() and token not in out.text()
        doc = wait_until(
            lambda: (d := _operator_status(port, token))[0] == 200 and d[1]["ok"] and d[1],
            timeout=30,
            message="GET /api/v2/status to show the simulator bound",
        )
        assert isinstance(doc, dict)
        assert doc["connections"][0]["name"] == "simulator" and doc["binds"][0]["smsc"]
    assert (tmp_path / "var" / "bridge.db").exists()
    assert oct((tmp_path / "var" / "demo.json").stat().st_mode & 0o777) == "0o600"
    private = [tmp_path / "var" / n for n in ("bridge.db", "bridge.db-wal", "bridge.db-shm")]
    private += [tmp_path / "var" / "redis", tmp_path / "var" / "redis" / "password"]
    private += [tmp_path / "var" / "operator-token"]
    modes = {p.name: oct(p.stat().st_mode & 0o077) for p in private if p.exists()}
    assert "bridge.db" in modes and "operator-token" in modes, modes
    assert set(modes.values()) == {"0o0"}, modes

    # A second start keeps the account, its key, the money and the queued message (AOF).
    with _running(tmp_path, port, *WITHOUT_ENGINE) as (curls, redis_url, out):
        key = re.search(r"Demo API key: (\S+)", out.text())
        assert key is not None and key[1] == first_key, out.text()
        assert "balance 998.40 KES" in out.text()  # two messages delivered, none refunded
        assert _operator_status(port, token)[0] == 200  # the same token, kept in var/
        status, body = _curl(curls[1])
        assert status == 200 and body["balance"] == "998.40"
        r = redis.Redis.from_url(redis_url)  # the worker's consumer group survived (AOF)
        groups = r.xinfo_groups(redis_keys.OUTBOUND_STREAM)
        assert [g["name"] for g in groups] == [redis_keys.OUTBOUND_GROUP.encode()]
        r.close()


def test_run_refuses_a_var_dir_whose_redis_is_owned(tmp_path):
    """A second `run` on the same var/ stops with one line naming the running Redis."""
    from bridge.redis.embedded import EmbeddedRedis

    with EmbeddedRedis(tmp_path / "var") as owner:
        done = subprocess.run(
            [SMPP_BRIDGE, "run"],
            cwd=tmp_path,
            env=_env(tmp_path, free_port()),
            capture_output=True,
            timeout=60,
            check=False,
        )
    err = done.stderr.decode()
    assert done.returncode == 1
    assert f"REDIS_URL=redis://:$(cat {owner.dir / 'password'})@127.0.0.1:{owner.port}/0" in err
    assert owner.password not in err + done.stdout.decode()
    assert "Traceback" not in err


def test_api_command_needs_a_migrated_database_then_serves_alone(tmp_path):
    env = _env(tmp_path, free_port())
    done = subprocess.run(
        [SMPP_BRIDGE, "api"], cwd=tmp_path, env=env, capture_output=True, timeout=60, check=False
    )
    assert done.returncode == 1 and "smpp-bridge db upgrade" in done.stderr.decode()
    subprocess.run(
        [SMPP_BRIDGE, "db", "upgrade"],
        cwd=tmp_path,
        env=env,
        check=True,
        capture_output=True,
        timeout=60,
    )
    proc = subprocess.Popen(
        [SMPP_BRIDGE, "api"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    out = LineReader(proc.stdout)
    try:
        wait_until(lambda: out.find("API ready at") or proc.poll() is not None, timeout=60)
        assert proc.poll() is None, out.text()
        assert "Demo account" not in out.text() and "started worker" not in out.text()
        port = int(env["BRIDGE_PORT"])
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request("GET", "/api/v2/account/balance")
        resp = conn.getresponse()
        assert resp.status == 401 and resp.getheader("x-ratelimit-limit") == "60"
        conn.close()
        pids = _pids(out)
        _stop(proc, out)
    finally:
        kill_group(proc)
    wait_until(lambda: all(pid_gone(p) for p in pids), timeout=10)
