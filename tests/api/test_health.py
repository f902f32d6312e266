"""/healthz, /readyz and GET /api/v2/status over the real app, Redis, SQLite and PostgreSQL,
with a real in-process worker bound to the simulator."""

from __future__ import annotations

import contextlib
import os

import pytest
from falcon import testing

from api.app import create_app
from bridge.config import read_settings
from tests.harness.procs import wait_until
from tests.harness.simulator import make_simulator  # noqa: F401  (fixture)

TOKEN = "op-" + "x" * 40
BEARER = {"Authorization": f"Bearer {TOKEN}"}
FAST = {"status_interval": 0.3, "lease_ttl": 3.0, "reconnect_min": 0.05, "reconnect_max": 0.3}


def _smsc(sim, name: str = "sim", **kw) -> dict:
    return {
        "name": name,
        "host": sim.host,
        "port": sim.port,
        "system_id": "bridge",
        "password": "secret",
        "binds": 1,
        **kw,
    }


@pytest.fixture
def sim(make_simulator):  # noqa: F811
    return make_simulator(system_id="bridge", password="secret")


@pytest.fixture
def worker(api_config, db, redis_client, sim):
    """A real delivery worker bound to the simulator, publishing its heartbeats."""
    from bridge.delivery.worker import Worker

    config = api_config.replace(smsc=(_smsc(sim),))
    w = Worker(config, db=db, redis=redis_client, settings=read_settings(FAST))
    w.start()
    try:
        yield config
    finally:
        w.stop(drain_timeout=2.0)


def _client(config, bridge_service, redis_client) -> testing.TestClient:
    return testing.TestClient(create_app(config, bridge_service, redis_client))


def test_healthz_answers_without_touching_anything(client):
    r = client.simulate_get("/healthz")
    assert r.status_code == 200 and r.json == {"status": "ok"}


def test_status_needs_the_operator_token(api_config, bridge_service, redis_client, demo_account):
    # no token configured: never open, and the answer says how to set one
    closed = _client(api_config, bridge_service, redis_client).simulate_get("/api/v2/status")
    assert closed.status_code == 503 and "BRIDGE_OPERATOR_TOKEN" in closed.json["error"]

    client = _client(api_config.replace(operator_token=TOKEN), bridge_service, redis_client)
    missing = client.simulate_get("/api/v2/status")
    assert missing.status_code == 401 and missing.json["error"] == "Operator token is required."
    assert missing.headers["www-authenticate"].startswith("Bearer")
    assert "customer API key" in missing.json["help"]
    key = demo_account.api_key  # a customer's key is no operator token, however it is sent
    for headers in ({"X-API-Key": key}, {"Authorization": f"Bearer {key}"}):
        assert client.simulate_get("/api/v2/status", headers=headers).status_code == 401
    assert client.simulate_get("/api/v2/status", params={"api_key": key}).status_code == 401
    wrong = client.simulate_get("/api/v2/status", headers={"Authorization": f"Bearer {TOKEN}x"})
    assert wrong.status_code == 401 and wrong.json["error"] == "Invalid operator token."

    ok = client.simulate_get("/api/v2/status", headers=BEARER)
    assert ok.status_code == 200 and ok.json["version"] == 1
    assert ok.json["checks"]["redis"]["ok"] and ok.json["checks"]["database"]["ok"]
    assert ok.json["connections"][0]["name"] == "simulator"  # no [[smsc]]: the built-in one
    assert ok.json["ok"] is False and "simulator has no bound bind" in ok.json["problems"][0]


def test_status_shows_every_bind_of_a_real_worker(worker, bridge_service, redis_client, sim):
    client = _client(worker.replace(operator_token=TOKEN), bridge_service, redis_client)

    def bound():
        doc = client.simulate_get("/api/v2/status", headers=BEARER).json
        return doc if doc["ok"] else None

    doc = wait_until(bound, timeout=15, message="the worker's bind in the status document")
    (bind,) = doc["binds"]
    assert bind["connection"] == "sim" and bind["state"] == "bound" and not bind["stale"]
    assert bind["smsc"] == f"{sim.host}:{sim.port}" and bind["system_id"] == "bridge"
    assert bind["pid"] == os.getpid() and bind["window"]["size"] == 10
    assert set(bind["rates"]) == {"submits", "receipts", "mo"}
    (conn,) = doc["connections"]
    assert (conn["name"], conn["bound"], conn["reported"], conn["ok"]) == ("sim", 1, 1, True)
    assert doc["queue"]["length"] == 0 and doc["queue"]["oldest_age"] == 0
    assert doc["webhooks"] == {"queued": 0, "sending": 0, "retrying": 0, "dead": 0}
    assert doc["inbound"] == {"unrouted": 0} and doc["scheduled"] == 0


def _ready(client) -> dict | None:
    r = client.simulate_get("/readyz")
    return r.json if r.status_code == 200 else None


def test_readyz_flips_when_redis_stops(worker, bridge_service, redis_server, redis_client):
    client = _client(worker, bridge_service, redis_client)
    ready = wait_until(lambda: _ready(client), timeout=15, message="/readyz 200")
    assert ready["ready"] is True and ready["problems"] == []
    redis_server.stop()
    r = client.simulate_get("/readyz")
    assert r.status_code == 503 and r.json["ready"] is False
    assert r.json["checks"]["redis"]["ok"] is False
    assert r.json["problems"][0].startswith("redis: ")
    assert r.json["checks"]["database"]["ok"] is True


def test_readyz_flips_when_the_database_is_unreachable(
    worker, bridge_service, redis_client, database_url, db
):
    client = _client(worker, bridge_service, redis_client)
    wait_until(lambda: _ready(client), timeout=15, message="/readyz 200")
    with _database_unreachable(database_url, db):
        r = client.simulate_get("/readyz")
        assert r.status_code == 503 and r.json["checks"]["database"]["ok"] is False
        assert [p for p in r.json["problems"] if p.startswith("database: ")]
        assert r.json["checks"]["redis"]["ok"] is True


def test_readyz_names_a_connection_without_a_bound_bind(
    worker,
    bridge_service,
    redis_client,
    make_simulator,  # noqa: F811
):
    client = _client(worker, bridge_service, redis_client)
    wait_until(lambda: _ready(client), timeout=15, message="/readyz 200")
    dark = make_simulator()
    more = worker.replace(smsc=(*(vars_of(c) for c in worker.smsc), _smsc(dark, "dark")))
    r = _client(more, bridge_service, redis_client).simulate_get("/readyz")
    assert r.status_code == 503
    assert r.json["problems"] == [
        "connection dark has no bound bind (none reported: is a worker running against this "
        "Redis with this connection configured?)"
    ]
    assert {c["name"]: c["ok"] for c in r.json["connections"]} == {"sim": True, "dark": False}


def vars_of(conn) -> dict:
    """A parsed Connection back as its [[smsc]] table."""
    from dataclasses import asdict

    return asdict(conn)


@contextlib.contextmanager
def _database_unreachable(database_url: str, db):
    """SQLite: its file is gone. PostgreSQL: the database refuses connections and the open
    ones are cut (what a failover or a dead server looks like to the API)."""
    if database_url.startswith("sqlite"):
        path = database_url.removeprefix("sqlite:///")
        os.rename(path, path + ".away")
        try:
            yield
        finally:
            os.rename(path + ".away", path)
        return
    import psycopg
    from sqlalchemy.engine import make_url

    url = make_url(database_url)
    admin = f"host={url.host} port={url.port} user=postgres dbname=postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'ALTER DATABASE "{url.database}" ALLOW_CONNECTIONS false')
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
            (url.database,),
        )
        try:
            yield
        finally:
            conn.execute(f'ALTER DATABASE "{url.database}" ALLOW_CONNECTIONS true')
