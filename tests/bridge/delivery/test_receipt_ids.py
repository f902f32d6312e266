"""Through the worker against an SMSC that numbers from 1 (every id also reads as hex) and
returns receipts at once or 0-3 s late in random order, with message_id_form "auto": every message is
delivered by its own receipt (issue 12 item 1), checked against the simulator's record."""

from __future__ import annotations

import json
from collections import Counter

import pytest
from sqlalchemy import select

from bridge.storage.models import message_parts
from tests.bridge.delivery.conftest import check_ground_truth

N = 3000


@pytest.fixture(params=[None, 3.0], ids=["immediate", "spread-0-3s"])
def sim(make_simulator, request):
    """Receipts at once (they race their own resp through the two binds, as in the issue),
    or each 0-3 s late, uniformly at random."""
    return make_simulator(
        system_id="bridge",
        password="secret",
        message_id_format="sequential",
        dlr_delay=0.0,
        dlr_delay_max=request.param,
        seed=12,
    )


def test_sequential_ids_with_late_receipts_all_settle_their_own_message(bridge, start_worker):
    start_worker(smsc={"message_id_form": "auto", "binds": 2, "window": 100})
    ids = bridge.send(N)
    assert bridge.wait_final(N, timeout=180) == Counter({"delivered": N})
    sent = {"+" + m.destination_addr: m for m in bridge.sim.messages}
    assert sorted(int(m.message_ids[0]) for m in sent.values()) == list(range(1, N + 1))
    for row in bridge.rows(ids):
        assert json.loads(row["smsc_message_ids"]) == list(sent[row["destination"]].message_ids)
    with bridge.db.connect() as conn:  # the receipt each part was settled by names that part
        parts = conn.execute(
            select(message_parts.c.message_id, message_parts.c.smsc_message_id)
        ).all()
    smsc_ids = {r["id"]: json.loads(r["smsc_message_ids"])[0] for r in bridge.rows(ids)}
    assert len(parts) == N and all(smsc_ids[mid] == sid for mid, sid in parts)
    receipts = bridge.sim.receipts
    assert len(receipts) == N and all(r.response_status == 0 for r in receipts)
    check_ground_truth(bridge, N)
