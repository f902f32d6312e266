"""The status document (bridge.ops.status) over a real worker, Redis, SQLite and PostgreSQL:
stale heartbeats read down, the queue's oldest entry, and messages by state from settlement."""

from __future__ import annotations

from bridge.delivery.fleet import publish_bind_status
from bridge.ops.status import collect_status, readiness
from tests.harness.procs import wait_until


def test_a_stale_heartbeat_reads_down_and_fails_its_connection(bridge):
    publish_bind_status(bridge.redis, "sim", "sim#1", {"state": "bound"}, ttl=0.5)
    doc = collect_status(bridge.config, bridge.redis, bridge.db)
    assert doc["ok"] is True and doc["binds"][0]["state"] == "bound"  # fresh: bound

    def stale():
        d = collect_status(bridge.config, bridge.redis, bridge.db)
        return d if d["binds"][0]["stale"] else None

    doc = wait_until(stale, timeout=10, message="the heartbeat to go stale")
    (bind,) = doc["binds"]
    assert bind["state"] == "down" and bind["reported_state"] == "bound"
    assert "no heartbeat" in bind["last_error"]
    assert doc["ok"] is False
    assert doc["problems"] == ["connection sim has no bound bind (1 reported: down)"]
    assert readiness(bridge.config, bridge.redis, bridge.db)["ready"] is False


def test_messages_by_state_and_the_queue_come_from_a_real_worker(bridge, start_worker):
    ids = bridge.send(30)
    doc = collect_status(bridge.config, bridge.redis, bridge.db)
    assert doc["queue"]["length"] == 30 and doc["queue"]["oldest_age"] >= 0
    assert doc["messages"] == {"last_minute": {}, "last_hour": {}}  # nothing settled yet
    start_worker()
    bridge.wait_final(len(ids), timeout=30)

    def counted():
        d = collect_status(bridge.config, bridge.redis, bridge.db)
        minute = d["messages"]["last_minute"]
        submitted = sum(b["counters"].get("submitted", 0) for b in d["binds"])
        return d if minute.get("delivered") == 30 and d["ok"] and submitted == 30 else None

    doc = wait_until(counted, timeout=15, message="30 deliveries counted, and heartbeats")
    assert doc["messages"]["last_minute"]["submitted"] == 30
    assert doc["messages"]["last_hour"] == doc["messages"]["last_minute"]
    assert doc["queue"]["length"] == 0 and doc["queue"]["oldest_age"] == 0
    assert [b["state"] for b in doc["binds"]] == ["bound", "bound"]  # binds = 2


def test_an_unreachable_redis_is_a_problem_not_a_traceback(bridge, redis_server):
    redis_server.stop()
    doc = collect_status(bridge.config, bridge.redis, bridge.db)
    assert doc["ok"] is False and doc["binds"] is None and doc["queue"] is None
    assert doc["problems"][0].startswith("redis: ")
    assert doc["checks"]["database"]["ok"] is True
    assert doc["connections"][0]["bound"] is None
