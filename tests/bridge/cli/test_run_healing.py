"""`smpp-bridge run` heals (issue 11): a SIGKILLed worker or embedded Redis is restarted and
nothing accepted is lost or sent twice; a child that keeps dying stops `run` with one line; an
unreachable SMSC does not keep the API down. Each test runs the installed script in a temp dir
against the test's own simulated SMSC (an ``[[smsc]]`` table), so the SMSC's record says how
many times each message arrived."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import re
import signal
import subprocess
import threading
import urllib.parse
from pathlib import Path

import pytest
import redis

from bridge.redis import keys as redis_keys
from bridge.redis.embedded import running_url
from tests.api.helpers import LineReader, pid_gone
from tests.bridge.cli.test_run import READY, SMPP_BRIDGE, _env
from tests.harness.procs import free_port, wait_until

pytestmark = pytest.mark.slow
NUMBER = "0701234567"


class Bridge:
    """One `smpp-bridge run` subprocess and what it printed; always stopped, nothing left."""

    def __init__(self, tmp_path: Path, smsc_port: int, **env: str) -> None:
        self.port = free_port()
        config = tmp_path / "bridge.toml"
        config.write_text(
            "[[smsc]]\n"
            'name = "sim"\n'
            'host = "127.0.0.1"\n'
            f"port = {smsc_port}\n"
            'system_id = "bridge"\n'
            'password = "pw"\n'
            "[worker]\n"
            "claim_idle_seconds = 5\n"  # what a killed worker had read is taken over soon
        )
        self.env = {**_env(tmp_path, self.port), "BRIDGE_CONFIG": str(config), **env}
        self.env["BRIDGE_RATE_LIMIT"] = "1000000"  # the poller asks 20 times a second
        self.tmp_path = tmp_path
        self.proc = subprocess.Popen(
            [SMPP_BRIDGE, "run"],
            cwd=tmp_path,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.out = LineReader(self.proc.stdout)

    def wait_banner(self) -> None:
        wait_until(
            lambda: self.out.find(READY) or self.proc.poll() is not None,
            timeout=90,
            message="smpp-bridge run to print its banner",
        )
        assert self.proc.poll() is None, self.out.text()
        key = re.search(r"Demo API key: (\S+)", self.out.text())
        assert key is not None, self.out.text()
        self.key = key[1]

    def pids(self) -> set[int]:
        text = self.out.text()
        found = re.findall(r"started [\w-]+ \(pid (\d+)\)|Booting worker with pid: (\d+)", text)
        return {int(a or b) for a, b in found}

    def pid_of(self, child: str) -> int:
        """The newest pid `run` started ``child`` with."""
        return int(re.findall(rf"started {child} \(pid (\d+)\)", self.out.text())[-1])

    def request(self, method: str, path: str, form: dict | None = None) -> tuple[int, dict]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        headers = {"X-API-Key": self.key}
        body = None
        if form is not None:
            body = urllib.parse.urlencode(form)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        try:
            conn.request(method, path, body=body, headers=headers)
            resp = conn.getresponse()
            return resp.status, json.loads(resp.read())
        finally:
            conn.close()

    def send(self, text: str) -> str:
        status, body = self.request(
            "POST", "/api/v2/sms/send", {"numbers": NUMBER, "message_body": text}
        )
        assert status == 200 and body["status"] == "accepted", (status, body)
        return body["messages"][0]["message_id"]

    def state(self, message_id: str) -> str:
        return self.request("GET", f"/api/v2/sms/{message_id}")[1]["state"]

    def wait_state(self, message_id: str, state: str, timeout: float = 60) -> None:
        try:
            wait_until(
                lambda: self.state(message_id) == state,
                timeout=timeout,
                interval=0.1,
                message=f"message {message_id} {state}",
            )
        except TimeoutError as exc:
            got = self.request("GET", f"/api/v2/sms/{message_id}")[1]
            tail = "\n".join(self.out.lines[-40:])
            raise AssertionError(f"{exc}; it is {got}; run printed:\n{tail}") from None

    def close(self, sig: int = signal.SIGTERM) -> None:
        """Stop `run` (SIGTERM by default) and check that every process it started is gone."""
        pids = self.pids()
        try:
            if self.proc.poll() is None:
                self.proc.send_signal(sig)
                assert self.proc.wait(timeout=60) == 0, self.out.text()
        finally:
            if self.proc.poll() is None:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        wait_until(
            lambda: all(pid_gone(p) for p in pids),
            timeout=15,
            message=f"every child of run to be gone: {pids}",
        )


@contextlib.contextmanager
def _bridge(tmp_path: Path, smsc_port: int, **env: str):
    bridge = Bridge(tmp_path, smsc_port, **env)
    try:
        bridge.wait_banner()
        yield bridge
    except BaseException:
        with contextlib.suppress(Exception):
            bridge.close(signal.SIGKILL)  # the failure is what matters; just leave nothing
        raise
    bridge.close()


class _Poller:
    """Asks the API for the balance every 50 ms in a thread; records each answer's status."""

    def __init__(self, bridge: Bridge) -> None:
        self.statuses: list[int | str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(bridge,), daemon=True)
        self._thread.start()

    def _run(self, bridge: Bridge) -> None:
        while not self._stop.wait(0.05) and len(self.statuses) < 2000:
            try:
                self.statuses.append(bridge.request("GET", "/api/v2/account/balance")[0])
            except OSError as exc:
                self.statuses.append(repr(exc))

    def stop(self) -> list[int | str]:
        self._stop.set()
        self._thread.join(15)
        return self.statuses


def _arrivals(sim, text: str) -> int:
    return sum(1 for m in sim.messages if m.text == text)


def test_a_sigkilled_worker_is_restarted_and_each_message_arrives_once(tmp_path, make_simulator):
    sim = make_simulator(system_id="bridge", password="pw")
    with _bridge(tmp_path, sim.address[1]) as bridge:
        assert bridge.out.find("SMSC: a bind is up"), bridge.out.text()
        before = bridge.send("before the kill")
        bridge.wait_state(before, "delivered")
        worker = bridge.pid_of("worker")
        poller = _Poller(bridge)
        os.kill(worker, signal.SIGKILL)
        wait_until(lambda: pid_gone(worker), timeout=10)  # it can read no more of the stream
        during = bridge.send("while the worker is away")
        wait_until(lambda: bridge.pid_of("worker") != worker, timeout=30, message="a new worker")
        bridge.wait_state(during, "delivered")
        after = bridge.send("after the restart")
        bridge.wait_state(after, "delivered")
        statuses = poller.stop()
        assert statuses and set(statuses) == {200}, statuses  # the API answered all along
        assert bridge.out.find(
            f"worker (pid {worker}) exited (killed by SIGKILL); restarting in 0.5s"
            " (restart 1 of 5 allowed within 60s)"
        ), bridge.out.text()
        texts = ("before the kill", "while the worker is away", "after the restart")
        assert [_arrivals(sim, t) for t in texts] == [1, 1, 1]
        assert bridge.request("GET", "/api/v2/account/balance")[1]["balance"] == "997.60"


def _aof_holds(directory: Path, needle: bytes) -> bool:
    return any(needle in p.read_bytes() for p in directory.glob("appendonly*") if p.is_file())


def test_a_sigkilled_embedded_redis_comes_back_with_its_queue(tmp_path, make_simulator):
    sim = make_simulator(system_id="bridge", password="pw")
    fast_sweep = {"BRIDGE_SWEEPER_GRACE": "1", "BRIDGE_SWEEPER_INTERVAL": "0.5"}
    with _bridge(tmp_path, sim.address[1], **fast_sweep) as bridge:
        url = running_url(tmp_path / "var")
        assert url is not None, "var/redis/url is missing while run is up"
        before = bridge.send("before redis died")
        bridge.wait_state(before, "delivered")
        client = redis.Redis.from_url(url)
        client.set("test:canary", "written before the kill")
        redis_dir = tmp_path / "var" / "redis"
        wait_until(lambda: _aof_holds(redis_dir, b"test:canary"), timeout=10, message="AOF")
        client.close()
        started = re.search(r"started redis-server \(pid (\d+)\)", bridge.out.text())
        assert started is not None, bridge.out.text()
        server = int(started[1])
        os.kill(server, signal.SIGKILL)
        wait_until(lambda: pid_gone(server), timeout=10)
        during = bridge.send("while redis was away")  # committed; the XADD fails or waits
        wait_until(lambda: bridge.out.find("started redis (pid"), timeout=30, message="redis")
        assert bridge.out.find(f"redis (pid {server}) exited (killed by SIGKILL)")
        assert running_url(tmp_path / "var") == url  # the same port and password
        client = redis.Redis.from_url(url)
        try:
            wait_until(client.ping, timeout=15, message="the restarted redis to answer")
            assert client.get("test:canary") == b"written before the kill"  # the AOF survived
            groups = client.xinfo_groups(redis_keys.OUTBOUND_STREAM)
            assert redis_keys.OUTBOUND_GROUP.encode() in [g["name"] for g in groups]
        finally:
            client.close()
        bridge.wait_state(during, "delivered")  # the sweeper re-enqueued it
        after = bridge.send("after redis came back")
        bridge.wait_state(after, "delivered")
        texts = ("before redis died", "while redis was away", "after redis came back")
        assert [_arrivals(sim, t) for t in texts] == [1, 1, 1]


def test_a_worker_that_keeps_dying_stops_run_with_one_line(tmp_path, make_simulator):
    sim = make_simulator(system_id="bridge", password="pw")
    policy = {
        "BRIDGE_RESTART_LIMIT": "2",
        "BRIDGE_RESTART_BACKOFF": "0.1",
        "BRIDGE_RESTART_BACKOFF_MAX": "0.2",
    }
    bridge = Bridge(tmp_path, sim.address[1], **policy)
    try:
        bridge.wait_banner()
        for _ in range(3):  # one more death than the limit allows
            worker = bridge.pid_of("worker")
            os.kill(worker, signal.SIGKILL)

            def replaced(old: int = worker) -> bool:
                return bridge.pid_of("worker") != old or bridge.proc.poll() is not None

            wait_until(replaced, timeout=30)
        assert bridge.proc.wait(timeout=60) == 1, bridge.out.text()
    finally:
        bridge.close(signal.SIGKILL)  # already gone: checks every child is gone too
    last = bridge.out.lines[-1]
    assert last == (
        "smpp-bridge run: error: worker keeps failing: 3 exits within 60s, the last killed by"
        " SIGKILL; stopped everything (its output is above)"
    ), bridge.out.text()
    assert "stopped api" in bridge.out.text() and "stopped redis" in bridge.out.text()


def test_an_unreachable_smsc_leaves_the_api_serving_and_status_shows_the_bind_down(tmp_path):
    closed = free_port()  # nothing listens there
    with _bridge(tmp_path, closed) as bridge:
        assert bridge.out.find("SMSC: no bind is up yet (sim)"), bridge.out.text()
        message = bridge.send("queued until the SMSC is back")
        bridge.wait_state(message, "queued", timeout=15)
        status = subprocess.run(
            [SMPP_BRIDGE, "status"],
            cwd=tmp_path,
            env=bridge.env,
            capture_output=True,
            timeout=60,
            check=False,
        )
        text = status.stdout.decode()
        rows = [line.split() for line in text.splitlines() if line.startswith("sim ")]
        assert rows and all(row[2] in ("down", "connecting") for row in rows), text
        check = subprocess.run(
            [SMPP_BRIDGE, "status", "--check"],
            cwd=tmp_path,
            env=bridge.env,
            capture_output=True,
            timeout=60,
            check=False,
        )
        assert check.returncode == 1, check.stdout.decode()
        assert bridge.state(message) == "queued"
        assert bridge.proc.poll() is None  # a worker that cannot bind is not a dying child
