"""`smpp-bridge run` end to end in a subprocess: it prints a curl that works, Ctrl-C stops all."""
from __future__ import annotations

import http.client
import json
import os
import re
import shlex
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import redis

from bridge import redis_keys
from tests.api.helpers import LineReader, pid_gone
from tests.support.procs import free_port, wait_until

pytestmark = pytest.mark.slow
READY = "Press Ctrl-C to stop."
# The delivery engine's children (simulator, worker) are tested by their owners; this test is
# about the supervisor, the API, Redis and the demo account.
RUN_ARGS = ("--skip", "simulator", "--skip", "worker")
SMPP_BRIDGE = str(Path(sys.executable).parent / "smpp-bridge")  # the console script `make run` uses


def _env(tmp_path: Path, port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("BRIDGE_") and k not in ("REDIS_URL", "DATABASE_URL")}
    env.update(BRIDGE_PORT=str(port), BRIDGE_API_WORKERS="2", BRIDGE_API_THREADS="2",
               BRIDGE_VAR_DIR=str(tmp_path / "var"), PYTHONUNBUFFERED="1")
    return env


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
    match = re.fullmatch(r"http://([\d.]+):(\d+)(/.*)", url)
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


def _start(tmp_path: Path, port: int, *extra: str) -> tuple[subprocess.Popen, LineReader]:
    proc = subprocess.Popen([SMPP_BRIDGE, "run", *extra], cwd=tmp_path,
                            env=_env(tmp_path, port), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, start_new_session=True)
    return proc, LineReader(proc.stdout)


def _pids(out: LineReader) -> list[int]:
    text = out.text()
    pids = [int(p) for p in re.findall(r"started [\w-]+ \(pid (\d+)\)", text)]
    pids += [int(p) for p in re.findall(r"Booting worker with pid: (\d+)", text)]
    return pids


def _stop(proc: subprocess.Popen, out: LineReader) -> None:
    proc.send_signal(signal.SIGINT)  # what Ctrl-C does
    assert proc.wait(timeout=40) == 0, out.text()


def _run_once(tmp_path: Path, port: int):
    proc, out = _start(tmp_path, port, *RUN_ARGS)
    try:
        wait_until(lambda: out.find(READY) or proc.poll() is not None, timeout=90,
                   message="smpp-bridge run to print its banner")
        assert proc.poll() is None, out.text()
        wait_until(lambda: len(re.findall(r"Booting worker", out.text())) >= 2, timeout=30)
        pids = _pids(out)
        curls = [line.strip() for line in out.lines if line.strip().startswith("curl ")]
        redis_url = re.search(r"Redis (redis://\S+)", out.text())[1]
        yield curls, pids, redis_url, out
        _stop(proc, out)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
    wait_until(lambda: all(pid_gone(p) for p in pids), timeout=10,
               message=f"every child of run to be gone: {pids}")


def test_run_prints_a_working_curl_and_ctrl_c_stops_everything(tmp_path):
    port = free_port()
    for curls, pids, redis_url, out in _run_once(tmp_path, port):
        assert len(pids) >= 4, out.text()  # redis, gunicorn master, two workers
        send, balance = curls
        status, body = _curl(send)
        assert status == 200 and body["status"] == "accepted" and body["count"] == 1, body
        status, body = _curl(balance)
        assert (status, body) == (200, {"username": "demo", "balance": "999.20",
                                        "currency": "KES"})
        first_key = re.search(r"Demo API key: (\S+)", out.text())[1]
        r = redis.Redis.from_url(redis_url)
        assert r.xlen(redis_keys.OUTBOUND_STREAM) == 1
        r.close()
    assert (tmp_path / "var" / "bridge.db").exists()
    assert oct((tmp_path / "var" / "demo.json").stat().st_mode & 0o777) == "0o600"

    # A second start keeps the account, its key, the money and the queued message (AOF).
    for curls, pids, redis_url, out in _run_once(tmp_path, port):
        assert re.search(r"Demo API key: (\S+)", out.text())[1] == first_key
        assert "balance 999.20 KES" in out.text()
        status, body = _curl(curls[1])
        assert status == 200 and body["balance"] == "999.20"
        r = redis.Redis.from_url(redis_url)
        assert r.xlen(redis_keys.OUTBOUND_STREAM) == 1
        r.close()


def test_run_refuses_a_var_dir_whose_redis_is_owned(tmp_path):
    """A second `run` on the same var/ stops with one line naming the running Redis."""
    from bridge.embedded_redis import EmbeddedRedis
    with EmbeddedRedis(tmp_path / "var") as owner:
        done = subprocess.run([SMPP_BRIDGE, "run"], cwd=tmp_path,
                              env=_env(tmp_path, free_port()), capture_output=True, timeout=60)
    assert done.returncode == 1
    assert f"REDIS_URL={owner.url}" in done.stderr.decode()
    assert "Traceback" not in done.stderr.decode()
