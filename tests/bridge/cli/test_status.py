"""`smpp-bridge status` as an operator runs it, against a real worker subprocess, Redis, SQLite
and PostgreSQL: the table and --json name each connection, the exit code says whether every
configured connection has a bound bind, and --watch redraws (under a pty)."""

from __future__ import annotations

import json
import os
import pty
import signal
import subprocess
import time

from bridge.cli.status import CLEAR
from smpp.simulator import RefuseBinds
from tests.bridge.delivery.conftest import (  # noqa: F401  (fixtures)
    SMPP_BRIDGE,
    bridge,
    sim,
    smsc_table,
    spawn_worker,
    start_worker,
    to_toml,
)
from tests.harness.procs import wait_until
from tests.harness.redis_server import redis_server


def _status(bridge, *args: str, toml=None) -> subprocess.CompletedProcess:  # noqa: F811
    env = {**bridge.env, "BRIDGE_CONFIG": str(toml or bridge.worker_toml())}
    return subprocess.run(
        [SMPP_BRIDGE, "status", *args], env=env, capture_output=True, text=True, timeout=60
    )


def test_status_exit_code_table_and_json_follow_the_binds(bridge, spawn_worker):  # noqa: F811
    before = _status(bridge, "--json")
    assert before.returncode == 1, before.stderr
    doc = json.loads(before.stdout)
    assert doc["ok"] is False and doc["binds"] == []
    assert "connection sim has no bound bind" in doc["problems"][0]

    spawn_worker()
    wait_until(lambda: _status(bridge).returncode == 0, timeout=60, message="status exit 0")
    table = _status(bridge)
    assert table.returncode == 0 and "Traceback" not in table.stderr
    lines = table.stdout.splitlines()
    assert lines[0].split()[:3] == ["CONNECTION", "BIND", "STATE"]  # no problems above it
    binds = [line.split() for line in lines[1:3]]
    assert [(b[0], b[1], b[2]) for b in binds] == [
        ("sim", "sim#1", "bound"),
        ("sim", "sim#2", "bound"),
    ]
    assert any(
        line.startswith(f"connection sim ({bridge.sim.host}:{bridge.sim.port}, bridge, ")
        and line.endswith("2 of 2 reported bind(s) bound - ok")
        for line in lines
    )
    assert "outbound stream: 0 entries" in table.stdout and "webhooks:" in table.stdout
    doc = json.loads(_status(bridge, "--json").stdout)
    assert doc["ok"] is True and [b["connection"] for b in doc["binds"]] == ["sim", "sim"]

    # a second connection nobody binds: exit 1, and the table says which one, first
    dark = bridge.tmp / "dark.toml"
    dark.write_text(
        to_toml({"smsc": [smsc_table(bridge.sim), smsc_table(bridge.sim, name="dark", port=9)]})
    )
    both = _status(bridge, toml=dark)
    assert both.returncode == 1
    assert both.stdout.splitlines()[0] == (
        "! connection dark has no bound bind (none reported: is a worker running against this "
        "Redis with this connection configured?)"
    )


def test_watch_redraws_in_place_and_stops_after_count(bridge):  # noqa: F811
    env = {**bridge.env, "BRIDGE_CONFIG": str(bridge.worker_toml())}
    leader, follower = pty.openpty()
    proc = subprocess.Popen(
        [SMPP_BRIDGE, "status", "--watch", "0.2", "--count", "2"],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=follower,
        stderr=subprocess.PIPE,
    )
    os.close(follower)
    out = b""
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # the pty closes once the process exits
                break
            if not chunk:
                break
            out += chunk
        assert proc.wait(timeout=30) == 1  # no worker: the connection has no bound bind
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
        os.close(leader)
        if proc.stderr is not None:
            proc.stderr.close()
    text = out.decode()
    assert text.count(CLEAR) == 2 and text.count("CONNECTION  BIND") == 2
    assert text.rstrip().endswith("every 0.2s; Ctrl-C to stop")


def test_watch_json_prints_one_document_a_line(bridge):  # noqa: F811
    run = _status(bridge, "--watch", "0.1", "--count", "3", "--json")
    docs = [json.loads(line) for line in run.stdout.splitlines()]
    assert run.returncode == 1 and len(docs) == 3 and all(d["version"] == 1 for d in docs)
    assert docs[0]["at"] < docs[2]["at"]
    assert _status(bridge, "--count", "2").returncode == 1  # --count needs --watch


def test_a_hung_redis_costs_status_seconds_not_half_a_minute(bridge, tmp_path):  # noqa: F811
    """A Redis that accepts connections but never answers (SIGSTOPped, as a hung or swapping
    server): the NOC's `status --check` says so and exits 1 within a few seconds. Before, the
    command's client retried a 5 s read three times before the 2 s check and waited for the
    check's thread at exit: ~28 s, past many monitoring timeouts."""
    (tmp_path / "hung").mkdir()
    with redis_server(tmp_path / "hung") as hung:
        assert hung.proc is not None
        hung.proc.send_signal(signal.SIGSTOP)
        try:
            env = {**bridge.env, "BRIDGE_CONFIG": str(bridge.worker_toml()), "REDIS_URL": hung.url}
            started = time.monotonic()
            run = subprocess.run(
                [SMPP_BRIDGE, "status", "--json", "--check"],
                env=env,
                capture_output=True,
                text=True,
                timeout=60,
            )
            took = time.monotonic() - started
        finally:
            hung.proc.send_signal(signal.SIGCONT)
    assert run.returncode == 1, run.stderr
    doc = json.loads(run.stdout)
    assert doc["checks"]["redis"]["ok"] is False
    assert doc["problems"][0].startswith("redis: ")
    assert took < 8, f"status took {took:.1f}s against a hung Redis"


def _bind_doc(bridge) -> dict | None:  # noqa: F811
    """The first bind of `status --json`, with the document's ``at``."""
    doc = json.loads(_status(bridge, "--json").stdout)
    return {**doc["binds"][0], "at": doc["at"]} if doc["binds"] else None


def test_for_counts_the_outage_and_bound_drops_the_old_error(bridge, start_worker):  # noqa: F811
    start_worker(smsc={"binds": 1})
    wait_until(lambda: (_bind_doc(bridge) or {}).get("state") == "bound", timeout=60)

    bridge.sim.set_scenarios(RefuseBinds())  # every bind refused: reconnect attempts every <0.5 s
    left = time.time()
    assert bridge.sim.drop_connections() == 1

    def down_a_while() -> dict | None:
        b = _bind_doc(bridge)
        if b is None or not b["down_since"] or b["counters"]["bind_attempts"] < 5:
            return None
        return b if b["at"] - b["down_since"] >= 3 else None

    doc = wait_until(down_a_while, timeout=60, message="down 3 s, 4 refused binds")
    assert left - 1 <= doc["down_since"] <= left + 1  # when it left bound ...
    assert doc["since"] > doc["down_since"] + 1  # ... though every attempt moved since
    row = next(line.split() for line in _status(bridge).stdout.splitlines() if "sim#1" in line)
    assert row[2] != "bound" and int(row[3].rstrip("s")) >= 3, row  # FOR: the outage, not 0-1 s
    assert "ESME_RBINDFAIL" in " ".join(row[13:])  # the error shows while it is down

    bridge.sim.set_scenarios()
    wait_until(lambda: (_bind_doc(bridge) or {}).get("state") == "bound", timeout=60)
    row = next(line.split() for line in _status(bridge).stdout.splitlines() if "sim#1" in line)
    assert row[2] == "bound" and len(row) == 13, row  # no LAST ERROR from before the bind
    after = _bind_doc(bridge)
    assert after is not None and after["down_since"] is None
    assert "ESME_RBINDFAIL" in after["last_error"]  # the document keeps it, with its time
