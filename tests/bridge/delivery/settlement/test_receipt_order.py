"""A receipt settles exactly the message whose id it names (issue 12 item 1), at volume.

Message k is submitted at k / RATE seconds; its submit_sm_resp is stored up to 0.5 s later
(the writer's lag; 5 % of receipts overtake it) and its receipt comes 0-120 s after the resp,
uniformly at random (carriers are minutes late). The events are replayed in time order through
the real ReceiptBook on a real Redis, in writer-sized batches (maps before receipts within a
batch, as SettlementWriter._resolve does). Every receipt must reach its own message once, and
nothing may stay parked or held. Then the same through the real writer and the database.
"""

from __future__ import annotations

import random
import uuid
from collections import Counter
from decimal import Decimal

import pytest
from sqlalchemy import select

from bridge.delivery.settlement import ReceiptBook, ReceiptIn, SettlementWriter, Submitted
from bridge.redis import keys as redis_keys
from bridge.storage.models import message_parts
from smpp.codec.receipt import parse_receipt
from tests.bridge.delivery.settlement.helpers import states

RATE = 2000.0  # messages per second the emulated SMSC accepts
BATCH = 2000  # the writer's max_batch


def dlr(smsc_id: str):
    return parse_receipt(f"id:{smsc_id} sub:001 dlvrd:001 stat:DELIVRD err:000 text:x")


def timeline(n: int, seed: int, max_delay: float = 120.0) -> list[tuple[float, str, int]]:
    """(time, "map"|"receipt", k) for k in 0..n-1, in time order."""
    rng = random.Random(seed)
    events = []
    for k in range(n):
        sent = k / RATE
        stored = sent + rng.uniform(0.0, 0.5)
        if rng.random() < 0.05:  # immediate receipt that overtakes its own stored resp
            receipt_at = sent + rng.uniform(0.0, stored - sent)
        else:
            receipt_at = stored + rng.uniform(0.0, max_delay)
        events += [(stored, "map", k), (receipt_at, "receipt", k)]
    events.sort()
    return events


def replay(book: ReceiptBook, events, resp_id, receipt_id, connection="c") -> list:
    """Feed the timeline to the book in batches; returns every ReceiptEvent it produced."""
    out = []
    for start in range(0, len(events), BATCH):
        chunk = events[start : start + BATCH]
        maps = [(f"m{k}", 0, resp_id(k)) for _t, kind, k in chunk if kind == "map"]
        receipts = [(dlr(receipt_id(k)), 0.0) for _t, kind, k in chunk if kind == "receipt"]
        out += book.map_submit_ids(connection, "auto", maps)
        out += book.correlate(connection, "auto", receipts)[0]
    return out


def assert_each_settled_once_by_its_own(out, n, receipt_id):
    counts = Counter(e.message_id for e in out)
    assert len(out) == n, f"{n - len(set(counts))} never matched, {len(out) - len(counts)} twice"
    assert set(counts) == {f"m{k}" for k in range(n)} and set(counts.values()) == {1}
    wrong = [e for e in out if e.smsc_message_id != receipt_id(int(e.message_id[1:]))]
    assert wrong == [], f"{len(wrong)} receipts settled another message, e.g. {wrong[0]}"


def assert_nothing_waits(redis_client, connection="c"):
    left = list(redis_client.scan_iter(match=f"{redis_keys.DLR_ORPHAN_PREFIX}{connection}:*"))
    assert left == []
    assert redis_client.scard(redis_keys.dlr_held_key(connection)) == 0


CASES = {
    # name: (messages, resp id of k, receipt id of k, what the connection learns)
    "sequential decimal": (200_000, lambda k: str(k + 1), lambda k: str(k + 1), None),
    "sequential hex": (50_000, lambda k: f"{k + 1:X}", lambda k: f"{k + 1:X}", "same"),
    "uuid": (50_000, lambda k: _uuid(k), lambda k: _uuid(k), "same"),
    # hex resps quoted in decimal (receipt_id_format decimal); 8-digit hex, as the simulator
    "hex resp, decimal receipt": (
        50_000,
        lambda k: f"{0x10000000 + k:X}",
        lambda k: str(0x10000000 + k),
        "hex2dec",
    ),
    "decimal resp, hex receipt": (
        50_000,
        lambda k: str(1_000_000_000 + k),
        lambda k: f"{1_000_000_000 + k:X}",
        "dec2hex",
    ),
}


def _uuid(k: int) -> str:
    return str(uuid.UUID(int=(k * 0x9E3779B97F4A7C15 << 64) % (1 << 128), version=4))


@pytest.mark.parametrize("case", list(CASES))
def test_every_receipt_settles_its_own_message_once(redis_client, case):
    n, resp_id, receipt_id, learned = CASES[case]
    book = ReceiptBook(redis_client)
    out = replay(book, timeline(n, seed=12), resp_id, receipt_id)
    assert_each_settled_once_by_its_own(out, n, receipt_id)
    assert_nothing_waits(redis_client)
    assert book.forms("c").learned == learned


def test_through_the_writer_every_message_is_delivered_once(db, settlement, make, redis_client):
    """The same replay through SettlementWriter and Settlement.apply: every message delivered,
    one receipt event each, with its own smsc id."""
    n = 3000
    msgs = make(n, price=Decimal("0.10"))  # within the fixture account's 1000.00
    writer = SettlementWriter(settlement, on_settled=lambda ids: None, max_batch=500)
    writer.start()
    try:
        for _t, kind, k in timeline(n, seed=3, max_delay=2.0):
            sid = str(k + 1)
            if kind == "map":
                writer.put(Submitted(msgs[k].message_id, [sid], "conn", 1.0, id_form="auto"))
            else:
                writer.put(ReceiptIn("conn", "auto", dlr(sid), 2.0))
        assert writer.flush_now(timeout=120)
    finally:
        writer.stop(timeout=60)
    got = states(db, [m.message_id for m in msgs])
    assert Counter(got.values()) == Counter({"delivered": n})
    assert_nothing_waits(redis_client, "conn")
    with db.connect() as conn:
        rows = conn.execute(
            select(message_parts.c.message_id, message_parts.c.smsc_message_id)
        ).all()
    index = {m.message_id: k for k, m in enumerate(msgs)}
    assert len(rows) == n
    assert all(sid == str(index[mid] + 1) for mid, sid in rows)
