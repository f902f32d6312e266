"""SMSC faults, each ending with every message final, the simulator's record as ground truth
and `smpp-bridge audit` passing: dropped connections, throttling, silence, receipts first."""

from __future__ import annotations

import pytest

from tests.bridge.delivery.conftest import OPENING, check_ground_truth, wire_counts

pytestmark = pytest.mark.slow
COUNT = 600


def test_smsc_dropping_every_few_hundred_pdus(bridge, start_worker):
    bridge.sim.set_scenarios("drop-after:pdus=200")  # ~100 messages per connection
    start_worker()
    bridge.send(COUNT)
    assert bridge.wait_final(COUNT, timeout=90) == {"delivered": COUNT}
    truth = check_ground_truth(bridge, COUNT)
    assert bridge.sim.counters["connections"] >= 5  # it really dropped and we reconnected
    assert truth["flagged"] >= truth["twice"]


@pytest.mark.parametrize("status", ["ESME_RTHROTTLED", "ESME_RMSGQFUL"])
def test_thirty_percent_throttled(bridge, start_worker, status):
    # 3 of every 10 submits refused for now: retried after the rule's delay, charged once
    bridge.sim.set_scenarios(f"msgqful:every=7,burst=3,status={status}")
    w = start_worker()
    bridge.send(COUNT)
    assert bridge.wait_final(COUNT, timeout=90) == {"delivered": COUNT}
    truth = check_ground_truth(bridge, COUNT)
    # a throttled submit was refused, not accepted: nothing is on the wire twice or flagged
    assert truth == {"twice": 0, "flagged": 0, "wire": COUNT}
    assert w.dispatcher.counters["retries"] >= COUNT * 0.3 * 0.8
    assert bridge.balance() == OPENING - sum(r["price"] for r in bridge.rows())  # charged once


def test_partly_silent_smsc_times_out_and_retries(bridge, start_worker):
    bridge.sim.set_scenarios("silent:every=5")  # a fifth of submits never answered
    start_worker(
        worker={"retry": {"timeout": {"delay": 0.1, "max_attempts": 8}}},
        smsc={"response_timeout": 1.0},
    )
    bridge.send(COUNT)
    assert bridge.wait_final(COUNT, timeout=120) == {"delivered": COUNT}
    truth = check_ground_truth(bridge, COUNT)
    assert truth["flagged"] >= COUNT * 0.1  # re-sent after a timeout: the SMSC may have it


def test_silent_smsc_fails_and_refunds_after_the_attempts(bridge, start_worker):
    bridge.sim.set_scenarios("silent")
    start_worker(
        worker={"retry": {"timeout": {"delay": 0.05, "max_attempts": 2}}},
        smsc={"response_timeout": 0.5},
    )
    bridge.send(20)
    assert bridge.wait_final(20, timeout=60) == {"failed": 20}
    rows = bridge.rows()
    assert {r["error_code"] for r in rows} == {"timeout"} and all(
        r["possible_duplicate"] for r in rows
    )
    silent_submits = bridge.sim.pdus("submit_sm")
    assert len(silent_submits) == 40 and wire_counts(bridge) == {}  # 2 tries each, none accepted
    assert bridge.balance() == OPENING  # all refunded, once
    check_ground_truth(bridge, 20)


def test_receipts_before_responses(bridge, start_worker):
    bridge.sim.set_scenarios("receipt-first")
    start_worker()
    bridge.send(COUNT)
    assert bridge.wait_final(COUNT, timeout=90) == {"delivered": COUNT}
    assert check_ground_truth(bridge, COUNT) == {"twice": 0, "flagged": 0, "wire": COUNT}
    assert bridge.sim.unanswered_receipts == []


def test_failover_to_the_next_connection_when_one_goes_down(bridge, make_simulator, start_worker):
    from tests.bridge.delivery.conftest import smsc_table
    from tests.harness.procs import wait_until

    backup = make_simulator(system_id="bridge", password="secret")
    bridge.sim.set_scenarios("latency:ms=20")
    route = {"name": "all", "default": True, "connections": ["sim", "backup"]}
    start_worker(more_smsc=(smsc_table(backup, name="backup"),), routes=(route,))
    bridge.send(COUNT)
    wait_until(
        lambda: bridge.sim.counters.get("accepted", 0) >= 100,
        timeout=30,
        message="the primary to carry traffic",
    )
    bridge.sim.stop()  # the primary SMSC goes away mid-run: connections reset, binds refused
    assert bridge.wait_final(COUNT, timeout=90) == {"delivered": COUNT}
    by_connection = {r["connection"] for r in bridge.rows()}
    assert by_connection == {"sim", "backup"}
    assert len(backup.messages) >= COUNT - len(bridge.sim.messages)
    check_ground_truth(bridge, COUNT, backup)


def test_refused_unroutable_and_expired_are_refunded_exactly_once(bridge, start_worker):
    import time

    from sqlalchemy import func, select

    from bridge.service import BridgeService
    from bridge.storage.models import ledger
    from tests.harness.procs import wait_until

    bridge.sim.set_scenarios("reject-prefix:prefixes=25471000000")  # the first 10 numbers
    bridge.send(40)
    svc = bridge.service
    svc.send(bridge.account_id, ["+255712345678"], "no route in Tanzania")
    short = BridgeService(
        bridge.config.replace(validity_seconds=1), bridge.db, bridge.redis, run_sweeper=False
    )
    short.send(bridge.account_id, [f"+25479900000{i}" for i in range(5)], "too late")
    deadline = time.time() + 1.2
    wait_until(lambda: time.time() > deadline, timeout=5, message="their validity to pass")
    kenya = {"name": "ke", "prefixes": ["+254"], "connections": ["sim"]}
    start_worker(routes=(kenya,))
    got = bridge.wait_final(46, timeout=60)
    assert got == {"delivered": 30, "rejected": 10, "failed": 1, "expired": 5}
    codes = {(r["state"], r["error_code"]) for r in bridge.rows() if r["state"] != "delivered"}
    assert codes == {
        ("rejected", "ESME_RINVDSTADR"),
        ("failed", "no route"),
        ("expired", "validity elapsed"),
    }
    delivered = sum(r["price"] for r in bridge.rows() if r["state"] == "delivered")
    assert bridge.balance() == OPENING - delivered  # the 16 others refunded
    with bridge.db.connect() as conn:
        refunds = conn.execute(
            select(func.count()).select_from(ledger).where(ledger.c.kind == "refund")
        ).scalar_one()
    assert refunds == 16
    assert not {"+" + m.destination_addr for m in bridge.sim.messages} & {
        r["destination"] for r in bridge.rows() if r["state"] in ("failed", "expired")
    }
    check_ground_truth(bridge, 46)
