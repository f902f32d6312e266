"""The delivery engine's metrics (submits by connection and command_status, receipts by stat,
accept-to-delivered latency) and its logs: `smpp-bridge worker` with BRIDGE_LOG_FORMAT=json
writes one JSON object a line, without the message text or any credential, and counts into the
machine's metrics directory that /metrics reads."""

from __future__ import annotations

import json

import pytest
from prometheus_client import REGISTRY, CollectorRegistry
from prometheus_client.multiprocess import MultiProcessCollector
from sqlalchemy import select

from bridge.storage.models import accounts
from bridge.telemetry.metrics_dir import SUBDIR
from tests.harness.procs import wait_until

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
TEXT = "metrics-and-logs secret text 7f3a"


def _value(registry, name: str, **labels: str) -> float:
    return registry.get_sample_value(name, labels) or 0.0


def test_submits_receipts_and_delivery_latency_are_counted(bridge, start_worker):
    name = bridge.config.smsc[0].name
    submits = ("smpp_bridge_submits_total", {"connection": name, "command_status": "ESME_ROK"})
    receipts = ("smpp_bridge_receipts_total", {"connection": name, "stat": "DELIVRD"})
    latency = ("smpp_bridge_accept_to_delivered_seconds_count", {"connection": name})
    before = [_value(REGISTRY, n, **labels) for n, labels in (submits, receipts, latency)]
    start_worker()
    bridge.send(3, text="x" * 200)  # 2 parts each: 6 submits and 6 receipts
    assert bridge.wait_final(3, timeout=30) == {"delivered": 3}
    wait_until(
        lambda: _value(REGISTRY, latency[0], **latency[1]) - before[2] >= 3,
        timeout=10,
        message="three delivery latencies",
    )
    after = [_value(REGISTRY, n, **labels) for n, labels in (submits, receipts, latency)]
    assert [a - b for a, b in zip(after, before, strict=True)] == [6, 6, 3]
    assert (
        0 < _value(REGISTRY, "smpp_bridge_accept_to_delivered_seconds_sum", connection=name) < 1e6
    )


def test_worker_json_logs_parse_and_hold_no_secret_and_its_counts_reach_the_directory(
    bridge, spawn_worker
):
    key = bridge.service.generate_key(bridge.account_id, expiry_days=1).api_key
    with bridge.db.connect() as conn:
        secret = conn.execute(
            select(accounts.c.webhook_secret).where(accounts.c.id == bridge.account_id)
        ).scalar_one()
    bridge.env["BRIDGE_LOG_FORMAT"] = "json"
    proc = spawn_worker()
    bridge.send(4, text=TEXT)
    assert bridge.wait_final(4, timeout=60) == {"delivered": 4}
    metrics_dir = bridge.tmp / SUBDIR
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=str(metrics_dir))
    name = bridge.config.smsc[0].name
    wait_until(
        lambda: (
            _value(registry, "smpp_bridge_receipts_total", connection=name, stat="DELIVRD") == 4
        ),
        timeout=10,
        message="the worker's receipts in the metrics directory",
    )
    assert (
        _value(registry, "smpp_bridge_submits_total", connection=name, command_status="ESME_ROK")
        == 4
    )
    proc.terminate()
    proc.wait(30)
    raw = (bridge.tmp / "worker-1.log").read_text()
    lines = raw.splitlines()
    assert lines, "the worker logged nothing"
    records = [json.loads(line) for line in lines]  # each line one JSON object
    assert all({"time", "level", "logger", "pid", "message"} <= r.keys() for r in records)
    assert any("bound" in r["message"] for r in records)
    for needle in (TEXT, key, "engine-password-1", "secret", *([secret] if secret else [])):
        assert needle not in raw, needle
