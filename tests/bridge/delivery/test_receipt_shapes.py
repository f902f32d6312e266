"""Through the worker against an SMSC whose receipts are shaped as other SMSCs send them
(smpp.simulator.ReceiptShape): text only, TLVs only, text in message_payload only, UCS-2 text,
and a text whose id: names the previous message while receipted_message_id names this one (the
TLV wins, SMPP 3.4 5.3.2.12). Every message settles by its own receipt's stat."""

from __future__ import annotations

import pytest

from smpp.simulator import ReceiptShape
from smpp.simulator.scenarios import RECEIPT_SHAPES
from tests.bridge.delivery.conftest import check_ground_truth

N = 40
STATES = {"DELIVRD": "delivered", "UNDELIV": "undelivered"}


@pytest.fixture(params=RECEIPT_SHAPES)
def sim(make_simulator, request):
    """Half the messages delivered, half not (seeded), so a receipt settling another message
    than its own shows as a wrong state."""
    return make_simulator(
        system_id="bridge",
        password="secret",
        outcomes={"DELIVRD": 1, "UNDELIV": 1},
        scenarios=[ReceiptShape(shape=request.param)],
        seed=7,
    )


def test_each_receipt_shape_settles_its_own_message(bridge, start_worker):
    start_worker()
    ids = bridge.send(N)
    bridge.wait_final(N, timeout=60)
    expected = {"+" + m.destination_addr: STATES[m.outcomes[0]] for m in bridge.sim.messages}
    assert len(set(expected.values())) == 2
    assert {r["destination"]: r["state"] for r in bridge.rows(ids)} == expected
    assert all(r.response_status == 0 for r in bridge.sim.receipts)
    check_ground_truth(bridge, N)
