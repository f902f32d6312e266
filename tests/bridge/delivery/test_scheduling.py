"""Scheduled sends through the real worker and simulator: never early, released after restarts
of the worker and of Redis, the validity on the wire, and cancels racing the worker."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from sqlalchemy import func, select

from bridge.delivery.settlement.cancel import Canceller
from bridge.errors import Conflict
from bridge.redis import keys as redis_keys
from bridge.storage.models import ledger
from smpp.codec.smpp_time import absolute_time, parse_absolute_time, parse_relative_time
from tests.bridge.delivery.conftest import OPENING, numbers
from tests.harness.procs import wait_until


def _schedule(bridge, count: int, seconds: float, start: int = 0, **kw) -> tuple[list, float]:
    """Send ``count`` messages due ``seconds`` from now; (ids, send_at epoch)."""
    send_at = datetime.now(UTC) + timedelta(seconds=seconds)
    body = bridge.service.send(
        bridge.account_id, numbers(count, start), "scheduled hello", send_at=send_at, **kw
    ).body
    return [m["message_id"] for m in body["messages"]], send_at.timestamp()


def _wire(bridge) -> dict:
    """destination (E.164) -> the simulator's record of it."""
    return {"+" + m.destination_addr: m for m in bridge.sim.messages}


def test_scheduled_messages_wait_for_send_at_and_survive_a_worker_restart(bridge, start_worker):
    ids, due = _schedule(bridge, 5, 4.0)
    first = start_worker()
    # the worker runs (an immediate send goes through it) while the scheduled ones wait
    now_ids = bridge.send(1, start=100)
    bridge.wait_final(1, timeout=30)
    assert set(_wire(bridge)) == set(numbers(1, 100)) and time.time() < due
    first.stop(drain_timeout=2.0)
    start_worker()  # a new worker process's engine, same Redis and database
    assert bridge.wait_final(6, timeout=30) == {"delivered": 6}
    wire = _wire(bridge)
    for number in numbers(5):
        assert wire[number].received_at >= due  # never early (the SMSC's own record)
    assert max(wire[n].received_at for n in numbers(5)) < due + 5
    rows = {r["id"]: r for r in bridge.rows(ids + now_ids)}
    assert all(rows[i]["send_at"].timestamp() == due for i in ids)
    assert bridge.redis.zcard(redis_keys.SCHEDULE_SET) == 0


def test_released_after_redis_lost_its_data_and_restarted(bridge, start_worker, redis_server):
    ids, due = _schedule(bridge, 3, 3.0)
    assert bridge.redis.zcard(redis_keys.SCHEDULE_SET) == 3
    bridge.redis.flushall()  # Redis loses everything (the set and its "built" mark)...
    redis_server.restart()  # ...and comes back
    start_worker()
    assert bridge.wait_final(3, timeout=40) == {"delivered": 3}
    wire = _wire(bridge)
    assert all(wire[n].received_at >= due for n in numbers(3))


def test_validity_is_the_submit_sm_validity_period(bridge, start_worker):
    ids, due = _schedule(bridge, 1, 1.0, validity=7)
    start_worker()
    bridge.wait_final(1, timeout=30)
    (row,) = bridge.rows(ids)
    sent = _wire(bridge)[numbers(1)[0]]
    assert row["expires_at"] == datetime.fromtimestamp(due, UTC) + timedelta(minutes=7)
    assert sent.validity_period == absolute_time(row["expires_at"])  # absolute, UTC
    end = row["expires_at"]
    assert parse_absolute_time(sent.validity_period) == end.replace(
        microsecond=end.microsecond // 100_000 * 100_000  # the format carries tenths
    )
    assert sent.validity_end == parse_absolute_time(sent.validity_period)  # as the SMSC reads it


def test_a_relative_validity_connection_sends_the_time_left(bridge, start_worker):
    ids = bridge.service.send(bridge.account_id, numbers(1), "relative hello", validity=7).body[
        "messages"
    ]
    # held in the queue a while before any worker runs: the relative duration must not count it
    time.sleep(2.0)  # not a readiness wait: this is the queue time under test
    start_worker(smsc={"validity_form": "relative"})
    bridge.wait_final(1, timeout=30)
    (row,) = bridge.rows([ids[0]["message_id"]])
    sent = _wire(bridge)[numbers(1)[0]]
    assert sent.validity_period.endswith("000R")  # YYMMDDhhmmss000R, SMPP 3.4 §7.1.1.2
    left = parse_relative_time(sent.validity_period)
    assert timedelta(minutes=7) - timedelta(seconds=10) <= left <= timedelta(minutes=7, seconds=-2)
    end = row["expires_at"]  # the SMSC's end (its receipt + the duration) is the queue's end
    assert end - timedelta(seconds=3) <= sent.validity_end <= end + timedelta(seconds=1)


def test_cancels_racing_the_worker_refund_exactly_what_never_reached_the_smsc(bridge, start_worker):
    count = 400
    ids = bridge.send(count, batch=100)
    cost = sum((r["price"] for r in bridge.rows(ids)), Decimal(0))
    canceller = Canceller(bridge.db, bridge.redis)
    outcomes: dict[str, str] = {}
    errors: list[BaseException] = []

    def cancel(part: list[str]) -> None:
        for mid in part:
            try:
                canceller.cancel_message(bridge.account_id, mid)
                outcomes[mid] = "cancelled"
            except Conflict as exc:
                outcomes[mid] = exc.extra["state"]
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)

    threads = [threading.Thread(target=cancel, args=(ids[i::4],)) for i in range(4)]
    start_worker()
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors and len(outcomes) == count
    final = bridge.wait_final(count, timeout=60, states={"delivered", "cancelled"})
    cancelled = {mid for mid, o in outcomes.items() if o == "cancelled"}
    assert final["cancelled"] == len(cancelled)
    wire = {m.destination_addr for m in bridge.sim.messages}
    rows = {r["id"]: r for r in bridge.rows(ids)}
    for mid in ids:  # cancelled <=> never on the wire, and the row agrees with the answer
        on_wire = rows[mid]["destination"][1:] in wire
        assert (mid in cancelled) == (not on_wire), (mid, outcomes[mid], rows[mid]["state"])
        assert (rows[mid]["state"] == "cancelled") == (mid in cancelled)
    with bridge.db.connect() as conn:
        refunds = conn.execute(
            select(func.count(), func.sum(ledger.c.amount)).where(
                ledger.c.kind == "refund", ledger.c.message_id.in_(ids)
            )
        ).one()
    refunded = sum((rows[mid]["price"] for mid in cancelled), Decimal(0))
    assert refunds[0] == len(cancelled)  # one refund per cancelled message, no more
    assert bridge.balance() == OPENING - cost + refunded
    for mid in list(cancelled)[:20]:  # a repeat refunds nothing more
        assert canceller.cancel_message(bridge.account_id, mid).view.state == "cancelled"
    assert bridge.balance() == OPENING - cost + refunded
    wait_until(lambda: bridge.audit().returncode == 0, timeout=30, interval=0.5, message="audit")
