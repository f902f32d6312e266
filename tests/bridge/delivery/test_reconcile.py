"""The reconciler (issue 12 item 5): a `queued` message whose stream entry Redis lost is found,
re-enqueued and delivered once, instead of waiting a day for its validity; `smpp-bridge audit`
reports such messages until then.

Lost entries are made the way a power loss makes them: the entry was XADDed and the message
marked `queued`, then the entry is gone (XDEL)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from bridge.delivery.reconcile import Reconciler, find_lost
from bridge.redis import keys as redis_keys
from bridge.redis.outbox import OutboundMessage, entry_message_id
from tests.bridge.delivery.conftest import check_ground_truth
from tests.harness.procs import wait_until

COUNT = 300
FAST_RECONCILE = {"reconcile_interval_seconds": 0.5, "reconcile_grace_seconds": 1.0}


def queued(bridge, count: int) -> list[str]:
    """Accept ``count`` messages and wait until the accept path has marked them queued."""
    ids = bridge.send(count)
    wait_until(
        lambda: bridge.states().get("queued", 0) == count,
        timeout=30,
        message=f"{count} messages queued",
    )
    return ids


def lose_entries(bridge, keep: Callable[[str], object]) -> list[str]:
    """XDEL every stream entry whose message id fails ``keep``; the message ids lost."""
    lost = []
    for entry_id, fields in bridge.redis.xrange(redis_keys.OUTBOUND_STREAM):
        mid = entry_message_id(fields)
        assert mid is not None, f"unreadable outbound entry {entry_id!r}: {fields!r}"
        if not keep(mid):
            bridge.redis.xdel(redis_keys.OUTBOUND_STREAM, entry_id)
            lost.append(mid)
    return lost


def test_lost_entries_are_reported_reenqueued_and_delivered_once(bridge, start_worker):
    ids = queued(bridge, COUNT)
    lost = lose_entries(bridge, keep=lambda mid: ids.index(mid) % 3)  # every third one
    assert len(lost) == COUNT // 3

    audit = bridge.audit("--stream-grace", "0")
    assert audit.returncode == 1, audit.stdout + audit.stderr
    reported = [line for line in audit.stdout.splitlines() if "no entry on the outbound" in line]
    assert len(reported) == 50 and f"and {len(lost) - 50} more" in audit.stdout  # capped at 50
    assert all(line.split(":")[0].removeprefix("message ") in lost for line in reported)

    w = start_worker(worker=FAST_RECONCILE)
    assert bridge.wait_final(COUNT, timeout=60) == {"delivered": COUNT}
    assert w.reconciler.requeued == len(lost)
    # never claimed by a worker before: re-sent without a possible-duplicate flag, and once
    assert check_ground_truth(bridge, COUNT) == {"twice": 0, "flagged": 0, "wire": COUNT}
    ok = bridge.audit("--stream-grace", "0")
    assert ok.returncode == 0 and "outbound stream not checked" not in ok.stdout, ok.stdout


def test_a_lost_message_a_dead_worker_had_claimed_is_flagged(bridge, start_worker):
    """A worker claimed (attempts + 1) and may have written it, then died with Redis losing
    its pending entry: the recovery entry flags it; the never-claimed ones are not."""
    from bridge.delivery.settlement import Settlement

    ids = queued(bridge, 20)
    claimed = [OutboundMessage(mid, "", 0, "", "", "", "gsm", 1, Decimal(0), 0) for mid in ids[:5]]
    Settlement(bridge.db, bridge.redis).claim(claimed, recovered=False)
    lose_entries(bridge, keep=lambda mid: mid not in ids[:10])

    start_worker(worker=FAST_RECONCILE)
    assert bridge.wait_final(20, timeout=60) == {"delivered": 20}
    rows = {r["id"]: r for r in bridge.rows()}
    assert {mid for mid, r in rows.items() if r["possible_duplicate"]} == set(ids[:5])
    assert check_ground_truth(bridge, 20)["twice"] == 0


def test_one_reconciler_at_a_time_and_nothing_within_the_grace(bridge):
    queued(bridge, 10)
    lose_entries(bridge, keep=lambda mid: False)
    now = [datetime.now(UTC).timestamp()]
    a = Reconciler(bridge.db, bridge.redis, interval=30, grace=60, clock=lambda: now[0])
    assert a.run_once() == 0  # younger than the grace: left alone
    bridge.redis.set(redis_keys.RECONCILER_LOCK, "another worker")
    now[0] += 61
    assert a.run_once() == 0  # someone else holds the lock
    bridge.redis.delete(redis_keys.RECONCILER_LOCK)
    assert a.run_once() == 10
    assert a.run_once() == 0  # their recovery entries are on the stream now
    assert bridge.redis.xlen(redis_keys.OUTBOUND_STREAM) == 10


def test_find_lost_pages_through_candidates_with_bounded_chunks(bridge):
    ids = queued(bridge, 25)
    lost = set(lose_entries(bridge, keep=lambda mid: ids.index(mid) % 4))
    later = datetime.now(UTC) + timedelta(seconds=1)
    with bridge.db.connect() as conn:
        chunks = list(find_lost(conn, bridge.redis, later, chunk=4))
        assert list(find_lost(conn, bridge.redis, later - timedelta(hours=1))) == []
    assert {r.id for chunk in chunks for r in chunk} == lost
    assert all(len(chunk) <= 4 for chunk in chunks)
