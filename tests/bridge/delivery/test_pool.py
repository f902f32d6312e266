"""The session pool against the simulator and a real Redis: leases cap binds, status is
published, a lost lease unbinds."""

from __future__ import annotations

import os
import socket

from bridge.config import Connection, WorkerSettings
from bridge.delivery.fleet import read_bind_statuses
from bridge.delivery.pool import SessionPool
from bridge.redis import keys as redis_keys
from tests.harness.procs import wait_until

SETTINGS = WorkerSettings(lease_ttl=1.5, status_interval=0.3, reconnect_min=0.05, reconnect_max=0.2)


def _conn(sim, **kw) -> Connection:
    fields = {
        "name": "sim",
        "host": sim.host,
        "port": sim.port,
        "system_id": "acct",
        "password": "pw",
        "binds": 2,
        "max_binds": 2,
        "window": 5,
    }
    return Connection(**{**fields, **kw})


def _pool(conn, redis_client, receipts=None):
    return SessionPool(
        (conn,),
        redis_client,
        SETTINGS,
        lambda name, r: (receipts if receipts is not None else []).append((name, r)),
    )


def test_binds_within_the_lease_cap_and_reports_them(make_simulator, redis_client):
    sim = make_simulator(max_binds_per_system_id=3)
    conn = _conn(sim, binds=3, max_binds=2)
    pool = _pool(conn, redis_client)
    pool.start()
    try:
        wait_until(lambda: len(pool.bound_sessions("sim")) == 2, timeout=10, message="2 binds")
        assert pool.is_up("sim") and not pool.is_up("other")
        expected = ["bound", "bound", "no_lease"]

        def reported():  # one read; a heartbeat may catch a bind between its states
            statuses = read_bind_statuses(redis_client)
            return statuses if sorted(s["state"] for s in statuses) == expected else None

        statuses = wait_until(reported, timeout=5, message=f"status heartbeat with {expected}")
        waiting = next(s for s in statuses if s["state"] == "no_lease")
        me = f"{socket.gethostname()}:{os.getpid()}"
        # the note names who holds the leases (host:pid:bind), without the identity suffix
        assert waiting["last_error"] == (
            f"waiting for a bind lease (2 bind(s) of {conn.account} in use fleet-wide: "
            f"{me}:sim#1, {me}:sim#2)"
        )
        assert len(sim.bound) == 2  # the third slot never connected
        assert {pool.pick("sim") for _ in range(4)} == set(pool.bound_sessions("sim"))
    finally:
        pool.stop(timeout=5)
    assert sim.bound == [] and read_bind_statuses(redis_client) == []
    assert redis_client.zcard(redis_keys.bind_lease_key(conn.account)) == 0


def test_a_lost_lease_unbinds_and_a_free_one_rebinds(make_simulator, redis_client):
    sim = make_simulator()
    conn = _conn(sim, binds=1, max_binds=1)
    pool = _pool(conn, redis_client)
    pool.start()
    try:
        wait_until(lambda: len(sim.bound) == 1, timeout=10, message="bind")
        first = sim.bound[0].id
        redis_client.delete(redis_keys.bind_lease_key(conn.account))  # e.g. an operator reset
        # the renewal finds the lease gone: unbind, then take a fresh lease and bind again
        wait_until(
            lambda: [b.id for b in sim.bound] not in ([], [first]),
            timeout=10,
            message="rebind on a new lease",
        )
        assert next(b for b in sim.binds if b.id == first).unbound_by == "esme"
        assert redis_client.zcard(redis_keys.bind_lease_key(conn.account)) == 1
    finally:
        pool.stop(timeout=5)


def test_receipts_come_back_with_the_connection_name(make_simulator, redis_client):
    sim = make_simulator()
    got: list[tuple] = []
    pool = _pool(_conn(sim, binds=1), redis_client, got)
    pool.start()
    try:
        session = wait_until(
            lambda: pool.pick("sim") if pool.is_up("sim") else None, timeout=10, message="bind"
        )
        [future] = session.submit_text("ACME", "254700000001", "hi")
        assert future.result(timeout=5).ok
        wait_until(lambda: got, timeout=5, message="receipt")
        assert got[0][0] == "sim" and got[0][1].state == "delivered"
    finally:
        pool.stop(timeout=5)


def test_status_command_shows_every_bind_and_the_stream(make_simulator, redis_server, redis_client):
    import json
    import os
    import subprocess

    from bridge.delivery.reader import StreamReader
    from bridge.redis import outbox
    from tests.bridge.delivery.conftest import SMPP_BRIDGE
    from tests.bridge.delivery.test_reader import _msg

    sim = make_simulator()
    pool = _pool(_conn(sim, binds=2, max_binds=1), redis_client)
    reader = StreamReader(redis_client, "w-test")
    reader.ensure_group()
    outbox.enqueue(redis_client, [_msg(i) for i in range(3)])
    reader.read(2, 10)  # two pending for this consumer, one unread
    env = {**os.environ, "REDIS_URL": redis_server.url}
    env.pop("BRIDGE_CONFIG", None)

    def status(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [SMPP_BRIDGE, "status", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    pool.start()
    try:
        wait_until(
            lambda: [
                b for b in json.loads(status("--json").stdout)["binds"] if b["state"] == "bound"
            ],
            timeout=10,
            message="a bound heartbeat",
        )
        report = json.loads(status("--json").stdout)
        assert sorted(b["state"] for b in report["binds"]) == ["bound", "no_lease"]
        assert (report["queue"]["length"], report["queue"]["pending"]) == (3, 2)
        assert report["queue"]["consumers"][0]["name"] == "w-test"
        text = status().stdout
        assert "sim#1" in text and "sim#2" in text and "waiting for a bind lease" in text
        assert "outbound stream: 3 entries, 2 pending" in text
        assert status("--check").returncode == 1  # one bind is not bound
    finally:
        pool.stop(timeout=5)
    assert "no binds reported" in status().stdout and status("--check").returncode == 1


def test_the_heartbeat_carries_what_the_noc_watches(make_simulator, redis_client):
    """Bind mode, window in use, rates from the counters and the enquire_link round trip."""
    from smpp.session.client import SubmitRequest

    sim = make_simulator(dlr_delay=0.01)
    conn = _conn(sim, binds=1, max_binds=1, enquire_link_interval=0.2)
    pool = _pool(conn, redis_client)
    pool.start()
    try:
        wait_until(lambda: pool.is_up("sim"), timeout=10, message="a bind")
        futures = [
            pool.pick("sim").submit(SubmitRequest("12345", f"49155{i:04d}", b"hi", tag=i))
            for i in range(40)
        ]
        assert all(f.result(timeout=10).kind == "ok" for f in futures)

        def heartbeat() -> dict | None:
            rows = read_bind_statuses(redis_client)
            row = rows[0] if rows else None
            ready = row and row["rates"]["submits"] > 0 and row["enquire_link"]["rtt_ms"]
            return row if ready else None

        row = wait_until(heartbeat, timeout=10, message="rates and an enquire_link round trip")
        assert row["bind_mode"] == "transceiver" and row["smsc"] == f"{sim.host}:{sim.port}"
        assert row["window"] == {"in_use": row["in_flight"], "size": 5}
        assert set(row["rates"]) == {"submits", "receipts", "mo"}
        assert 0 < row["enquire_link"]["rtt_ms"] < 5000 and row["enquire_link"]["at"]
        assert row["counters"]["submitted"] == 40 and row["stale"] is False
    finally:
        pool.stop(timeout=5)
