"""HTTP send -> stream -> worker -> simulator -> receipt -> delivered, with the money right."""

from __future__ import annotations

import json
import urllib.parse
import urllib.request
from decimal import Decimal

import pytest

from api.app import create_app
from tests.bridge.delivery.conftest import OPENING, numbers
from tests.harness.http import serve_wsgi


@pytest.fixture
def api_url(bridge):
    """The real API app served over a real socket (wsgiref, one thread)."""
    key = bridge.service.generate_key(bridge.account_id, expiry_days=1).api_key
    app = create_app(bridge.config, bridge.service, bridge.redis)
    with serve_wsgi(app, threads=False) as base:
        yield base, key


def _call(url: str, key: str, data: dict | None = None) -> dict:
    body = urllib.parse.urlencode(data, doseq=True).encode() if data else None
    req = urllib.request.Request(url, data=body, headers={"X-API-Key": key})
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.loads(resp.read())


def test_http_send_reaches_delivered_with_one_smsc_id_per_part(bridge, api_url, start_worker):
    base, key = api_url
    start_worker()
    long_text = "Long message: " + "x" * 200  # 2 GSM parts
    short = _call(
        f"{base}/api/v2/sms/send",
        key,
        {"numbers": ",".join(numbers(3)), "message_body": "Hello, engine"},
    )
    long = _call(
        f"{base}/api/v2/sms/send",
        key,
        {"numbers": numbers(1, start=50)[0], "message_body": long_text},
    )
    ids = [m["message_id"] for m in short["messages"] + long["messages"]]
    assert bridge.wait_final(4, timeout=30) == {"delivered": 4}

    rows = {r["id"]: r for r in bridge.rows(ids)}
    sent = {m.destination_addr: m for m in bridge.sim.messages}
    for mid in ids:
        row = rows[mid]
        at_smsc = sent[row["destination"][1:]]
        assert json.loads(row["smsc_message_ids"]) == list(at_smsc.message_ids)
        assert row["submitted_at"] is not None and row["done_at"] is not None
        assert row["connection"] == "sim" and not row["possible_duplicate"]
    assert len(json.loads(rows[ids[-1]]["smsc_message_ids"])) == 2
    assert sent[numbers(1, start=50)[0][1:]].text == long_text
    assert sent[numbers(1)[0][1:]].source_addr == "ACME"
    assert len(bridge.sim.messages) == 4  # each message exactly once on the wire

    cost = Decimal(short["cost"]) + Decimal(long["cost"])
    assert bridge.balance() == OPENING - cost  # delivered: charged, never refunded
    status = _call(f"{base}/api/v2/sms/{ids[-1]}", key)
    assert status["state"] == "delivered" and len(status["smsc_message_ids"]) == 2
    audit = bridge.audit()
    assert audit.returncode == 0, audit.stdout + audit.stderr
