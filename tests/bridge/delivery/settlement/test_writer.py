"""SettlementWriter: one thread, batched flushes, on_settled only after the commit, Redis
correlation done before the commit, retries when Redis is down, backpressure."""

from __future__ import annotations

import threading

import pytest

from bridge.delivery.settlement import Failed, ReceiptIn, Settlement, SettlementWriter, Submitted
from bridge.delivery.settlement.correlation import ReceiptBook
from smpp.codec.receipt import parse_receipt
from tests.bridge.delivery.settlement.helpers import refunds, row, states
from tests.harness.procs import wait_until

T = 1_900_000_100.0


def dlr(smsc_id: str, stat: str = "DELIVRD"):
    return parse_receipt(
        f"id:{smsc_id} sub:001 dlvrd:001 submit date:3003171747 "
        f"done date:3003171748 stat:{stat} err:000 text:x"
    )


class Settled:
    """on_settled: records ids and, at call time, the states the database already holds."""

    def __init__(self, db) -> None:
        self.db = db
        self.ids: list[str] = []
        self.seen_states: dict[str, str] = {}
        self.lock = threading.Lock()

    def __call__(self, ids: list[str]) -> None:
        found = states(self.db, ids)
        with self.lock:
            self.ids += ids
            self.seen_states.update(found)


@pytest.fixture
def settled(db):
    return Settled(db)


@pytest.fixture
def writer(settlement, settled):
    w = SettlementWriter(settlement, on_settled=settled, flush_interval=0.01, max_batch=50)
    w.start()
    try:
        yield w
    finally:
        w.stop(timeout=20)


def test_outcomes_are_stored_then_reported_settled(db, writer, settled, make):
    msgs = make(120)
    for i, m in enumerate(msgs):
        if i % 3:
            writer.put(Submitted(m.message_id, [f"S{i}"], "conn", T, id_form="str"))
        else:
            writer.put(Failed(m.message_id, "rejected", "ESME_RINVDSTADR", T))
    assert writer.flush_now(timeout=20)
    assert sorted(settled.ids) == sorted(m.message_id for m in msgs)
    # durable before on_settled: the callback already saw the final rows
    assert all(settled.seen_states[m.message_id] in ("submitted", "rejected") for m in msgs)
    assert sum(refunds(db, [m.message_id for m in msgs]).values()) == 40
    assert writer.stats.flushes >= 3  # max_batch=50 splits 120 outcomes


def test_receipt_before_resp_through_the_writer(db, writer, settled, make):
    [m] = make(1)
    writer.put(ReceiptIn("conn", "auto", dlr("01a2b"), T))
    assert writer.flush_now(timeout=20)
    assert row(db, m.message_id)["state"] == "accepted" and settled.ids == []  # parked
    writer.put(Submitted(m.message_id, ["1A2B"], "conn", T + 1))  # case, leading zeros
    assert writer.flush_now(timeout=20)
    assert row(db, m.message_id)["state"] == "delivered"
    assert settled.ids == [m.message_id]


def test_receipt_after_resp_through_the_writer(db, writer, make):
    [m] = make(1, parts=2)
    writer.put(Submitted(m.message_id, ["10", "11"], "conn", T, id_form="dec"))
    writer.put(ReceiptIn("conn", "dec", dlr("010"), T + 1))
    assert writer.flush_now(timeout=20)
    assert row(db, m.message_id)["state"] == "submitted"
    writer.put(ReceiptIn("conn", "dec", dlr("11"), T + 2))
    assert writer.flush_now(timeout=20)
    assert row(db, m.message_id)["state"] == "delivered"


def test_stop_flushes_what_is_queued(db, settlement, settled, make):
    msgs = make(30)
    w = SettlementWriter(settlement, on_settled=settled, flush_interval=0.01)
    w.start()
    for m in msgs:
        w.put(Failed(m.message_id, "expired", "validity elapsed", T))
    assert w.stop(timeout=20)
    assert set(states(db, [m.message_id for m in msgs]).values()) == {"expired"}
    assert len(settled.ids) == 30


def test_put_blocks_when_full_and_times_out(settlement, settled):
    w = SettlementWriter(settlement, on_settled=settled, max_queue=2)  # not started: no drain
    assert w.put(Failed("a" * 26, "failed", None, T), timeout=0.01)
    assert w.put(Failed("b" * 26, "failed", None, T), timeout=0.01)
    assert not w.put(Failed("c" * 26, "failed", None, T), timeout=0.05)
    assert w.pending() == 2


def test_a_flush_waits_out_a_redis_outage(db, redis_server, clock, settled, make):
    [m] = make(1)
    client = redis_server.client(socket_timeout=1, socket_connect_timeout=0.5)
    settlement = Settlement(db, client, clock=clock)
    w = SettlementWriter(settlement, on_settled=settled, flush_interval=0.01)
    w.start()
    try:
        redis_server.stop()
        w.put(Submitted(m.message_id, ["77"], "conn", T))
        wait_until(lambda: w.stats.retries >= 1, timeout=20, message="a failed flush")
        assert row(db, m.message_id)["state"] == "accepted" and settled.ids == []
        redis_server.start()
        wait_until(lambda: settled.ids == [m.message_id], timeout=30, message="the retry")
        assert row(db, m.message_id)["state"] == "submitted"
        events, _ = settlement.correlate("conn", "auto", [dlr("77")])  # the map was written
        assert [e.message_id for e in events] == [m.message_id]
    finally:
        if redis_server.proc is None:
            redis_server.start()
        w.stop(timeout=20)
        client.close()


def test_on_settled_failure_is_logged_and_settlement_goes_on(db, settlement, make, caplog):
    msgs = make(2)
    calls = []

    def broken(ids):
        calls.append(ids)
        raise RuntimeError("xack failed")

    w = SettlementWriter(settlement, on_settled=broken, flush_interval=0.01)
    w.start()
    try:
        w.put(Failed(msgs[0].message_id, "failed", None, T))
        assert w.flush_now(timeout=20)
        w.put(Failed(msgs[1].message_id, "failed", None, T))
        assert w.flush_now(timeout=20)
    finally:
        w.stop(timeout=20)
    assert calls == [[msgs[0].message_id], [msgs[1].message_id]]
    assert "on_settled callback failed" in caplog.text


def test_a_poison_outcome_is_logged_and_the_rest_of_its_batch_stored(
    db, writer, settled, make, caplog
):
    from bridge.delivery.settlement import Finalised

    a, b, c = make(3)
    writer.put(Failed(a.message_id, "failed", "no route", T))
    poison = "not a datetime"  # a bug's output, wrong on purpose: the writer must survive it
    writer.put(Finalised(b.message_id, "delivered", None, poison, T))  # type: ignore[arg-type]
    writer.put(Failed(c.message_id, "failed", "no route", T))
    assert writer.flush_now(timeout=20)
    assert states(db, [a.message_id, b.message_id, c.message_id]) == {
        a.message_id: "failed",
        b.message_id: "accepted",
        c.message_id: "failed",
    }
    assert writer.stats.dropped == 1 and sorted(settled.ids) == sorted([a.message_id, c.message_id])
    assert "could not store outcome" in caplog.text and b.message_id in caplog.text


class RedisDiesBeforeReceipts(ReceiptBook):
    """A ReceiptBook whose first receipt correlation finds the real redis-server stopped:
    Redis going away between the map step and the receipt step of one flush."""

    def __init__(self, redis, server) -> None:
        super().__init__(redis)
        self.server, self.armed = server, False

    def correlate(self, connection, form, receipts):
        if self.armed:
            self.armed = False
            self.server.stop()
        return super().correlate(connection, form, receipts)


def test_a_flush_retried_after_redis_failed_midway_keeps_the_orphans_it_took(
    db, redis_server, clock, settled, make
):
    """The map step took m's parked receipt out of Redis; Redis then failed in the receipt
    step and the flush was retried: the receipt still settles m (it was lost: m stayed
    submitted)."""
    [m] = make(1)
    client = redis_server.client(socket_timeout=1, socket_connect_timeout=0.5)
    settlement = Settlement(db, client, clock=clock)
    settlement.receipts = RedisDiesBeforeReceipts(client, redis_server)
    _, parked = settlement.receipts.correlate("a", "str", [(dlr("77"), T)])
    assert parked == 1  # m's receipt overtook its resp
    settlement.receipts.armed = True
    w = SettlementWriter(settlement, on_settled=settled, flush_interval=0.5)
    w.put(Submitted(m.message_id, ["77"], "a", T + 1, id_form="str"))
    w.put(ReceiptIn("b", "str", dlr("99"), T + 1))  # another connection's, same flush
    w.start()
    try:
        wait_until(lambda: w.stats.retries >= 1, timeout=20, message="a failed flush")
        redis_server.start()
        wait_until(lambda: settled.ids == [m.message_id], timeout=30, message="the retry")
        assert row(db, m.message_id)["state"] == "delivered"
    finally:
        if redis_server.proc is None:
            redis_server.start()
        w.stop(timeout=20)
        client.close()


def test_a_batch_whose_receipt_step_fails_on_bad_data_keeps_the_orphans_its_map_took(
    db, redis_client, settlement, settled, make
):
    """A corrupt map value (no part index) makes the receipt step of a flush raise; the batch
    goes one by one, and the receipt the map step already took out of Redis still settles its
    message (it was resolved again, found nothing, and m stayed submitted)."""
    from bridge.redis import keys as redis_keys

    [m] = make(1)
    _, parked = settlement.receipts.correlate("a", "str", [(dlr("77"), T)])
    assert parked == 1
    redis_client.set(redis_keys.dlr_map_key("b", "99"), "garbage")
    w = SettlementWriter(settlement, on_settled=settled, flush_interval=0.5)
    w.put(Submitted(m.message_id, ["77"], "a", T + 1, id_form="str"))
    w.put(ReceiptIn("b", "str", dlr("99"), T + 1))
    w.start()
    try:
        assert w.flush_now(timeout=20)
    finally:
        w.stop(timeout=20)
    assert row(db, m.message_id)["state"] == "delivered"
    assert settled.ids == [m.message_id] and w.stats.dropped == 1
