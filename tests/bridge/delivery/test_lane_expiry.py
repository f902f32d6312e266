"""A message whose validity runs out while it waits in a lane (here: a 0.25 msg/s connection) is
expired and refunded once, never submitted, through the real worker and simulator. The worker's
clock is injected and moved past the validity (1 minute, the API's least) while the messages
wait; the TPS bucket keeps Redis time, so the lane stays as slow as configured. A part whose
retry waits past the validity, another part accepted, is not sent either (the message fails)."""

from __future__ import annotations

import time
from decimal import Decimal

from sqlalchemy import func, select

from bridge.delivery.settlement import Settlement
from bridge.storage.models import ledger
from smpp.codec import status
from tests.bridge.delivery.conftest import FAST_WORKER, OPENING, check_ground_truth, numbers
from tests.harness.procs import wait_until

COUNT = 5
SLOW = {"tps": 0.25, "tps_burst": 1}  # one message every 4 s: the rest wait in the lane


class Clock:
    """The worker's wall clock: real time plus an offset the test moves on."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


def _send_and_hold(bridge, start_worker, clock: Clock):
    """A slow worker, COUNT one-minute messages, and a wait until the first is on the wire and
    every other one waits in the lane (admitted before the clock moves), stored as sent (the
    next goes 4 s later); (worker, ids)."""
    worker = start_worker(smsc=SLOW, clock=clock)
    body = bridge.service.send(bridge.account_id, numbers(COUNT), "late hello", validity=1).body
    ids = [m["message_id"] for m in body["messages"]]
    wait_until(
        lambda: (
            bridge.sim.messages and len(bridge.sim.messages) + worker.dispatcher.backlog >= COUNT
        ),
        timeout=20,
        message="one message sent, the others waiting in the lane",
    )
    wait_until(
        lambda: all(
            r["state"] in ("submitted", "delivered")
            for r in bridge.rows(ids)
            if r["destination"] in _on_wire(bridge)
        ),
        timeout=10,
        message="the one sent stored as sent",
    )
    assert len(bridge.sim.messages) == 1, "more sent at once than the 4 s rate lets go"
    return worker, ids


def _refunds(bridge, ids: list[str]) -> tuple[int, Decimal]:
    with bridge.db.connect() as conn:
        count, total = conn.execute(
            select(func.count(), func.sum(ledger.c.amount)).where(
                ledger.c.kind == "refund", ledger.c.message_id.in_(ids)
            )
        ).one()
    return count, total or Decimal(0)


def _on_wire(bridge) -> set[str]:
    return {"+" + m.destination_addr for m in bridge.sim.messages}


def test_validity_ending_in_the_lane_expires_and_refunds_instead_of_sending(bridge, start_worker):
    clock = Clock()
    _, ids = _send_and_hold(bridge, start_worker, clock)
    moved_at = time.time()
    clock.offset = 61.0  # past expires_at, not past the overdue sweep's grace
    bridge.wait_final(COUNT, timeout=30)
    rows = bridge.rows(ids)
    wire = _on_wire(bridge)
    late = [m for m in bridge.sim.messages if m.received_at > moved_at + 0.5]
    assert not late, f"{len(late)} submitted after their validity ended"
    expired = [r for r in rows if r["state"] == "expired"]
    assert len(expired) == COUNT - 1, bridge.states()
    for r in rows:  # expired <=> never reached the SMSC
        assert (r["state"] == "expired") == (r["destination"] not in wire), dict(r)
        if r["state"] == "expired":
            assert r["error_code"] == "validity elapsed"
    count, total = _refunds(bridge, ids)
    assert count == len(expired)  # once each
    refunded = sum((r["price"] for r in expired), Decimal(0))
    assert total == refunded
    cost = sum((r["price"] for r in rows), Decimal(0))
    assert bridge.balance() == OPENING - cost + refunded
    check_ground_truth(bridge, COUNT)  # stream empty, audit clean


def test_messages_the_overdue_sweep_refunded_are_never_sent_by_the_lane_holding_them(
    bridge, start_worker
):
    clock = Clock()
    worker, ids = _send_and_hold(bridge, start_worker, clock)
    moved_at = time.time()
    clock.offset = 200.0  # past expires_at + the sweep's 60 s grace
    # another worker's sweep (any worker's expires any message) refunds what this one holds
    swept = Settlement(bridge.db, bridge.redis, clock=clock).expire_overdue(grace_seconds=60)
    assert swept
    wait_until(
        lambda: len(worker.tracker) == 0,
        timeout=30,
        message="the lane's held messages settled",
    )
    late = {"+" + m.destination_addr for m in bridge.sim.messages if m.received_at > moved_at + 0.5}
    rows = {r["id"]: r for r in bridge.rows(ids)}
    sent_free = [mid for mid in swept if rows[mid]["destination"] in late]
    assert not sent_free, f"{len(sent_free)} refunded messages were submitted afterwards"
    expired = {mid for mid, r in rows.items() if r["state"] == "expired"}
    assert set(swept) <= expired and len(expired) == COUNT - 1
    count, total = _refunds(bridge, ids)
    assert count == len(expired)  # once each: the lane's expiry of swept ones adds nothing
    assert total == sum((rows[mid]["price"] for mid in expired), Decimal(0))
    check_ground_truth(bridge, COUNT)


def test_a_part_retried_after_the_validity_ended_is_not_sent_and_the_message_fails(
    bridge, start_worker
):
    """Part 1 accepted, part 2 throttled; the validity ends before its retry: the retry is not
    sent, and the message follows the retry path's rule for a message with an accepted part
    (failed, refunded once: Failed always refunds), not expired."""
    clock = Clock()
    retry = {**FAST_WORKER["retry"], "ESME_RTHROTTLED": {"delay": 2.0, "max_attempts": 30}}
    bridge.sim.set_scenarios("throttle:tps=0.01,burst=1")  # the first submit only
    worker = start_worker(worker={"retry": {**retry, "max_delay": 5.0}}, clock=clock)
    body = bridge.service.send(bridge.account_id, numbers(1), "x" * 200, validity=1).body
    (mid,) = [m["message_id"] for m in body["messages"]]

    def answers() -> list[int]:
        """The SMSC's answers to the submit_sm it received so far (answered ones)."""
        return [p["answer"] for p in bridge.sim.pdus("submit_sm") if p["answer"] is not None]

    wait_until(
        lambda: sorted(answers()) == [0, status.ESME_RTHROTTLED] and worker.dispatcher.backlog == 1,
        timeout=20,
        message="part 1 accepted, part 2 throttled and waiting for its retry",
    )
    bridge.sim.set_scenarios()  # a resend would now be accepted
    clock.offset = 61.0
    bridge.wait_final(1, timeout=30)
    (row,) = bridge.rows([mid])
    assert (row["state"], row["error_code"]) == ("failed", "not_sent")
    assert sorted(answers()) == [0, status.ESME_RTHROTTLED]
    assert len(bridge.sim.pdus("submit_sm")) == 2  # part 2 never sent again
    count, total = _refunds(bridge, [mid])
    assert (count, total) == (1, row["price"])
    assert bridge.balance() == OPENING
    audit = bridge.audit()
    assert audit.returncode == 0, audit.stdout + audit.stderr
