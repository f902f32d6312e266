"""A delivery receipt answered ESME_ROK is never lost (issue 12): it is in the Redis receipt
log before the SMSC is answered, so a worker SIGKILLed before its writer stored the receipt
leaves it to the next worker; a receipt that cannot be logged (Redis down) is answered with a
retryable status and applied when the SMSC sends it again."""

from __future__ import annotations

import os
import signal
from collections import Counter

from smpp.codec.status import ESME_ROK, ESME_RX_T_APPN
from tests.bridge.delivery.conftest import check_ground_truth, database_held
from tests.harness.procs import wait_until

COUNT = 300


def _answered(bridge, count: int) -> list:
    """The simulator's receipts once ``count`` of them have an answer."""
    return wait_until(
        lambda: (
            (r := bridge.sim.receipts)
            and len(r) >= count
            and all(x.response_status is not None for x in r)
            and r
        ),
        timeout=60,
        message=f"{count} receipts answered",
    )


def test_receipts_acknowledged_then_sigkilled_before_they_were_stored_are_applied_later(
    bridge, spawn_worker, database_url
):
    bridge.sim.reconfigure(dlr_delay=2.0)  # every submit committed before its receipt comes
    bridge.send(COUNT)
    first = spawn_worker()
    bridge.wait_final(COUNT, timeout=60, states={"submitted", "delivered"})
    with database_held(database_url, bridge.db, "messages"):
        receipts = _answered(bridge, COUNT)  # answered while no flush can commit
        assert {r.response_status for r in receipts} == {ESME_ROK}
        os.killpg(first.pid, signal.SIGKILL)
        first.wait(10)
        at_kill = bridge.states()
    # most receipts were acknowledged to the SMSC and never stored by the dead worker
    assert at_kill["submitted"] > COUNT // 2, at_kill
    spawn_worker()  # takes the dead worker's receipt-log entries over after claim_idle_seconds
    assert bridge.wait_final(COUNT, timeout=60) == {"delivered": COUNT}
    # the SMSC sent each receipt once and heard ESME_ROK once; nothing was submitted twice;
    # the receipt log is empty (check_ground_truth)
    receipts = bridge.sim.receipts
    assert len(receipts) == COUNT
    assert Counter(r.message_id for r in receipts).most_common(1)[0][1] == 1
    assert all(r.sends == 1 and r.statuses == [ESME_ROK] for r in receipts)
    assert check_ground_truth(bridge, COUNT) == {"twice": 0, "flagged": 0, "wire": COUNT}


def test_a_receipt_arriving_while_redis_is_down_is_refused_retryably_and_applied_when_resent(
    bridge, redis_server, start_worker
):
    count = 20
    bridge.sim.reconfigure(dlr_delay=3.0)
    # binds outlive the Redis outage (their leases are not renewed meanwhile)
    start_worker({"lease_ttl": 120.0})
    bridge.send(count)
    bridge.wait_final(count, timeout=30, states={"submitted"})
    redis_server.stop()
    try:
        receipts = _answered(bridge, count)
    finally:
        redis_server.start()
    assert {r.response_status for r in receipts} == {ESME_RX_T_APPN}  # "send it again later"
    assert bridge.states() == {"submitted": count}
    assert bridge.sim.resend_receipts() == count
    assert bridge.wait_final(count, timeout=30) == {"delivered": count}
    receipts = _answered(bridge, count)
    assert all(r.statuses == [ESME_RX_T_APPN, ESME_ROK] for r in receipts)
    check_ground_truth(bridge, count)
