"""Fleet caps with real worker processes: bind leases cap binds of one SMSC account across
workers, and the Redis token bucket caps its messages per second across workers."""

from __future__ import annotations

import time

import pytest

from bridge.delivery.holders import parse_holder
from bridge.redis import keys as redis_keys
from tests.bridge.delivery.conftest import check_ground_truth
from tests.harness.procs import wait_until

pytestmark = pytest.mark.slow
TPS = 150
BURST = 15  # the default: a tenth of a second's worth


def _sample_until_final(bridge, count: int, timeout: float, during=None) -> list[tuple[float, int]]:
    """(time, messages the SMSC accepted) every 0.1 s until ``count`` rows are final."""
    samples: list[tuple[float, int]] = []
    deadline = time.monotonic() + timeout
    while True:
        samples.append((time.monotonic(), bridge.sim.counters.get("accepted", 0)))
        if during is not None:
            during(samples[-1][1])
        states = bridge.states()
        if (
            sum(n for s, n in states.items() if s not in ("accepted", "queued", "submitted"))
            >= count
        ):
            return samples
        assert time.monotonic() < deadline, f"not final after {timeout}s: {dict(states)}"
        time.sleep(0.1)


def _worst_rate_excess(samples: list[tuple[float, int]], window: float = 2.0) -> float:
    """Max over windows >= ``window`` s of (accepted - TPS * elapsed): must stay <= burst."""
    worst = float("-inf")
    for i, (t0, n0) in enumerate(samples):
        for t1, n1 in samples[i + 1 :]:
            if t1 - t0 >= window:
                worst = max(worst, n1 - n0 - TPS * (t1 - t0))
    return worst


def _submitting_binds(sim) -> list:
    return [
        b
        for b in sim.binds
        if b.system_id == "bridge" and any(p["command"] == "submit_sm" for p in b.pdus)
    ]


def test_one_bind_fleet_wide_and_the_lease_moves_on_graceful_stop(bridge, spawn_worker):
    bridge.sim.reconfigure(max_binds_per_system_id=1)  # the SMSC refuses a second bind
    smsc = {"binds": 1, "max_binds": 1, "tps": TPS}
    first = spawn_worker(smsc=smsc)
    wait_until(lambda: len(bridge.sim.bound) == 1, timeout=30, message="the first bind")
    spawn_worker(smsc=smsc)  # finds the account's one lease taken: does not bind, reads nothing
    count = 1200
    bridge.send(count)

    def stop_first_midway(accepted: int) -> None:
        if accepted >= 400 and first.poll() is None:
            first.terminate()  # graceful: drains, unbinds, releases its lease

    samples = _sample_until_final(bridge, count, timeout=90, during=stop_first_midway)
    assert bridge.states() == {"delivered": count}
    binds = [b for b in bridge.sim.binds if b.system_id == "bridge"]
    assert all(b.bind_status == 0 for b in binds), "a bind was refused: the cap was exceeded"
    assert len(_submitting_binds(bridge.sim)) == 2  # the second worker took over
    assert _worst_rate_excess(samples) <= BURST + 5
    check_ground_truth(bridge, count)


def test_a_sigkilled_workers_binds_are_taken_over_at_once(bridge, spawn_worker):
    # a lease_ttl of 60 s: a replacement that waited for the dead worker's leases to expire
    # (at least 40 s after the kill, renewed every 20 s) would miss the 30 s bound below
    worker, smsc = {"lease_ttl": 60.0}, {"binds": 2, "max_binds": 2}
    first = spawn_worker(worker=worker, smsc=smsc)
    wait_until(lambda: len(bridge.sim.bound) == 2, timeout=30, message="the first worker's binds")
    old = {b.id for b in bridge.sim.bound}
    first.kill()  # SIGKILL: nothing released, its two leases stay in Redis
    first.wait(10)
    killed = time.monotonic()
    assert len(_leases(bridge)) == 2
    wait_until(lambda: not bridge.sim.bound, timeout=10, message="the SMSC to see the binds go")
    second = spawn_worker(worker=worker, smsc=smsc)
    wait_until(
        lambda: len([b for b in bridge.sim.bound if b.id not in old]) == 2,
        timeout=max(1.0, 30.0 - (time.monotonic() - killed)),
        message="the replacement's two binds well before the 60 s lease TTL",
    )
    leases = _leases(bridge)
    assert len(leases) == 2
    assert {getattr(parse_holder(lease), "pid", None) for lease in leases} == {second.pid}
    log = (bridge.tmp / "worker-2.log").read_text()
    assert log.count("took over the bind lease") == 2, log
    assert f":{first.pid}:sim#" in log  # the dead holder is named
    count = 50
    bridge.send(count)
    assert bridge.wait_final(count, timeout=60) == {"delivered": count}


def _leases(bridge) -> list[str]:
    keys = list(bridge.redis.scan_iter(redis_keys.BIND_LEASE_PREFIX + "*"))
    assert len(keys) == 1, keys
    return [m.decode() for m in bridge.redis.zrange(keys[0], 0, -1)]


def test_tps_cap_holds_across_two_sending_workers(bridge, spawn_worker):
    smsc = {"binds": 1, "max_binds": 2, "tps": TPS}
    spawn_worker(smsc=smsc)
    spawn_worker(smsc=smsc)
    wait_until(lambda: len(bridge.sim.bound) == 2, timeout=30, message="two binds")
    count = 1200
    bridge.send(count)
    samples = _sample_until_final(bridge, count, timeout=90)
    assert bridge.states() == {"delivered": count}
    assert len(_submitting_binds(bridge.sim)) == 2  # both workers sent
    assert _worst_rate_excess(samples) <= BURST + 5
    check_ground_truth(bridge, count)
