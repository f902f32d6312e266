"""Fleet coordination on a real redis-server: bind leases, the TPS bucket, bind heartbeats."""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
import logging
import multiprocessing
import os
import socket
import subprocess
import sys
import threading
import uuid

import pytest

from bridge.delivery.fleet import (
    BindLeases,
    TokenBucket,
    clear_bind_status,
    publish_bind_status,
    read_bind_statuses,
)
from bridge.delivery.holders import (
    Holder,
    current_holder,
    parse_holder,
    process_start_time,
    read_host_identity,
)
from bridge.redis import keys as redis_keys
from tests.bridge.delivery import fleet_procs
from tests.harness.procs import wait_until

SPAWN = multiprocessing.get_context("spawn")


@contextlib.contextmanager
def processes(targets):
    """Start (target, args) pairs as real processes; always stop and reap them."""
    procs = [SPAWN.Process(target=t, args=a, daemon=True) for t, a in targets]
    try:
        for p in procs:
            p.start()
        yield procs
    finally:
        for p in procs:
            if p.is_alive():
                p.terminate()
            p.join(10)


def start_together(client, count: int) -> None:
    """Let every hammer connect, then start them at once."""
    wait_until(
        lambda: int(client.get(fleet_procs.READY) or 0) >= count,
        timeout=60,
        message=f"{count} hammers to connect",
    )
    client.set(fleet_procs.GO, 1)


def results(client) -> list[dict]:
    return [json.loads(r) for r in client.lrange(fleet_procs.RESULTS, 0, -1)]


def redis_now(client) -> float:
    seconds, micros = client.time()
    return seconds + micros / 1e6


# --- bind leases --------------------------------------------------------------------------


def test_leases_cap_binds_and_release_frees_a_slot(redis_client):
    leases = BindLeases(redis_client, ttl=30)
    first = leases.acquire("acct", 2, "w1")
    second = leases.acquire("acct", 2, "w2")
    assert first and second and first != second and first.startswith("w1/")
    assert leases.acquire("acct", 2, "w3") is None
    assert leases.acquire("other-acct", 2, "w3") is not None  # caps are per account
    assert set(leases.holders("acct")) == {first, second}
    leases.release("acct", first)
    leases.release("acct", first)  # twice is harmless
    third = leases.acquire("acct", 2, "w3")
    assert third is not None and set(leases.holders("acct")) == {second, third}
    assert leases.renew("acct", second) and not leases.renew("acct", first)
    assert redis_client.zcard(redis_keys.bind_lease_key("acct")) == 2


def test_threads_never_hold_more_than_max_binds(redis_server, redis_client):
    out: list[dict] = []
    threads = [
        threading.Thread(
            target=lambda i=i: out.append(
                fleet_procs.lease_hammer(redis_server.url, "acct", 2, 60, f"t{i}")
            )
        )
        for i in range(6)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not any(t.is_alive() for t in threads)
    assert len(out) == 6
    assert max(r["most"] for r in out) == 2  # the cap was reached, never passed
    assert sum(r["denials"] for r in out) > 0
    assert BindLeases(redis_client).holders("acct") == {}


def test_two_processes_never_hold_more_than_max_binds(redis_server, redis_client):
    args = (redis_server.url, "acct", 3, 60, 4)
    with processes([(fleet_procs.lease_process, args)] * 2) as procs:
        start_together(redis_client, 2)
        wait_until(
            lambda: redis_client.llen(fleet_procs.RESULTS) >= 8,
            timeout=90,
            message="both lease processes to report",
        )
        for p in procs:
            p.join(10)
        assert [p.exitcode for p in procs] == [0, 0]
    out = results(redis_client)
    assert max(r["most"] for r in out) == 3
    assert sum(r["grants"] for r in out) >= 60 and sum(r["denials"] for r in out) > 0
    assert BindLeases(redis_client).holders("acct") == {}


def test_unrenewed_lease_expires_while_a_renewed_one_lives(redis_client):
    leases = BindLeases(redis_client, ttl=0.4)
    kept = leases.acquire("acct", 2, "alive")
    assert kept is not None
    dead = leases.acquire("acct", 2, "dead")
    assert dead is not None
    assert leases.acquire("acct", 2, "late") is None

    def dead_gone() -> bool:
        assert leases.renew("acct", kept)  # a live bind renews on every tick
        return dead not in leases.holders("acct")

    wait_until(dead_gone, timeout=10, interval=0.05, message="the unrenewed lease to expire")
    assert not leases.renew("acct", dead)  # its bind must unbind
    assert leases.renew("acct", kept)
    late = leases.acquire("acct", 2, "late")
    assert late is not None and set(leases.holders("acct")) == {kept, late}


def test_lease_expiry_by_an_injected_clock(redis_client):
    now = [1000.0]
    leases = BindLeases(redis_client, ttl=15, clock=lambda: now[0])
    lease = leases.acquire("acct", 1, "w1")
    assert lease is not None
    now[0] += 14.9
    assert leases.acquire("acct", 1, "w2") is None
    assert leases.renew("acct", lease)  # good for 15 s from now
    now[0] += 14.9
    assert leases.acquire("acct", 1, "w2") is None
    now[0] += 0.2
    assert leases.acquire("acct", 1, "w2") is not None
    assert not leases.renew("acct", lease)


def _dead_child_holder():
    """A Holder of this machine whose process ran and is gone (a real, reaped child)."""
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        start = process_start_time(child.pid)
    finally:
        child.kill()
        child.wait(10)
    here = read_host_identity()
    assert here is not None and start is not None
    return Holder(here, child.pid, start)


def _same(holder: Holder | None) -> Holder | None:
    return holder


needs_proc = pytest.mark.skipif(read_host_identity() is None, reason="needs Linux /proc")


@needs_proc
def test_a_dead_same_host_holders_lease_is_taken_over_at_once(redis_client, caplog):
    now = [1000.0]
    dead = _dead_child_holder()
    theirs = BindLeases(redis_client, ttl=60, clock=lambda: now[0], identity=lambda: dead)
    old = theirs.acquire("acct", 1, f"{dead.host.hostname}:{dead.pid}:sim#1")
    assert old is not None and parse_holder(old) == dead
    leases = BindLeases(redis_client, ttl=60, clock=lambda: now[0])
    now[0] += 1.0  # 59 s before the TTL would free it
    with caplog.at_level(logging.WARNING, logger="bridge.delivery.fleet"):
        mine = leases.acquire("acct", 1, "me:1:sim#1")
    assert mine is not None and set(leases.holders("acct")) == {mine}
    assert parse_holder(mine) == current_holder()
    assert not theirs.renew("acct", old)  # the dead one's id is gone for good
    took = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(took) == 1 and f"{dead.host.hostname}:{dead.pid}:sim#1" in took[0]
    assert f"pid {dead.pid}" in took[0] and "59.0s left" in took[0]
    assert leases.holders("acct")[mine] == 60.0


@needs_proc
def test_a_dead_holders_bind_statuses_go_with_its_lease(redis_client):
    """Its heartbeats would read `down` for STALE_KEEP next to its successor's binds."""
    dead = _dead_child_holder()
    BindLeases(redis_client, ttl=60, identity=lambda: dead).acquire("acct", 1, "dead:sim#1")
    theirs = [f"{dead.host.hostname}:{dead.pid}:sim:sim#{i}" for i in (1, 2)]
    for field in theirs:  # what publish_bind_status wrote in that process
        redis_client.hset(redis_keys.BIND_STATUS_HASH, field, json.dumps({"state": "bound"}))
        redis_client.zadd(redis_keys.BIND_STATUS_EXPIRY, {field: 1e12})
    publish_bind_status(redis_client, "sim", "sim#3", {"state": "bound"})  # ours: stays
    assert BindLeases(redis_client, ttl=60).acquire("acct", 1, "me:sim#1") is not None
    left = {f.decode() for f in redis_client.hkeys(redis_keys.BIND_STATUS_HASH)}
    assert left == {f"{socket.gethostname()}:{os.getpid()}:sim:sim#3"}
    assert redis_client.zcard(redis_keys.BIND_STATUS_EXPIRY) == 1


@needs_proc
def test_a_reused_pids_lease_is_taken_over(redis_client):
    me = current_holder()
    assert me is not None
    # the lease names our pid but another start time: its holder was an earlier process
    earlier = dataclasses.replace(me, start_time=me.start_time - 1)
    BindLeases(redis_client, ttl=60, identity=lambda: earlier).acquire("acct", 1, "old")
    assert BindLeases(redis_client, ttl=60).acquire("acct", 1, "new") is not None


@needs_proc
def test_a_live_holders_lease_is_not_taken(redis_client):
    leases = BindLeases(redis_client, ttl=60)
    mine = leases.acquire("acct", 1, "w1")  # this process: alive
    assert mine is not None
    assert leases.acquire("acct", 1, "w2") is None
    assert BindLeases(redis_client, ttl=60).acquire("acct", 1, "w3") is None
    assert set(leases.holders("acct")) == {mine}


@needs_proc
def test_foreign_and_old_form_holders_keep_the_ttl_rule(redis_client):
    now = [1000.0]
    dead = _dead_child_holder()
    elsewhere: list[Holder | None] = [
        dataclasses.replace(dead, host=dataclasses.replace(dead.host, hostname="other-vm")),
        dataclasses.replace(dead, host=dataclasses.replace(dead.host, boot_id=str(uuid.uuid4()))),
        dataclasses.replace(dead, host=dataclasses.replace(dead.host, pid_ns=1)),
        None,  # a holder that could not read /proc writes the old form
    ]
    for i, holder in enumerate(elsewhere):
        theirs = BindLeases(
            redis_client, ttl=15, clock=lambda: now[0], identity=functools.partial(_same, holder)
        )
        assert theirs.acquire(f"acct{i}", 1, "them") is not None
    # a lease id an older release wrote: "<host>:<pid>:<bind>/<random>"
    key = redis_keys.bind_lease_key("acct-old")
    redis_client.zadd(key, {f"{dead.host.hostname}:{dead.pid}:sim#1/0123456789abcdef": 1015.0})
    accounts = [f"acct{i}" for i in range(len(elsewhere))] + ["acct-old"]
    leases = BindLeases(redis_client, ttl=15, clock=lambda: now[0])
    now[0] += 14.9
    assert [leases.acquire(a, 1, "me") for a in accounts] == [None] * len(accounts)
    now[0] += 0.2  # past the TTL: free as before
    assert all(leases.acquire(a, 1, "me") is not None for a in accounts)


@needs_proc
def test_two_takers_of_one_dead_lease_get_one_slot(redis_client):
    dead = _dead_child_holder()
    BindLeases(redis_client, ttl=60, identity=lambda: dead).acquire("acct", 1, "dead")
    takers = [BindLeases(redis_client, ttl=60) for _ in range(8)]
    got: list[str | None] = []
    threads = [
        threading.Thread(target=lambda t=t: got.append(t.acquire("acct", 1, "taker")))
        for t in takers
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert len(got) == 8 and sum(g is not None for g in got) == 1
    assert set(BindLeases(redis_client).holders("acct")) == {g for g in got if g}


def test_lease_arguments_are_checked(redis_client):
    with pytest.raises(ValueError, match="max_binds must be at least 1"):
        BindLeases(redis_client).acquire("acct", 0, "w")
    with pytest.raises(ValueError, match="lease ttl must be positive"):
        BindLeases(redis_client, ttl=0)


# --- token bucket ---------------------------------------------------------------------------


def test_bucket_arithmetic_with_an_injected_clock(redis_client):
    now = [500.0]
    bucket = TokenBucket(redis_client, clock=lambda: now[0])
    assert [bucket.take("acct", 10, 5) for _ in range(5)] == [0.0] * 5  # starts full
    assert bucket.take("acct", 10, 5) == pytest.approx(0.1)
    now[0] += 0.05
    assert bucket.take("acct", 10, 5) == pytest.approx(0.05)  # nothing was taken by the refusal
    now[0] += 0.05
    assert bucket.take("acct", 10, 5) == 0.0
    now[0] += 0.25  # 2.5 tokens
    assert bucket.take("acct", 10, 5, n=3) == pytest.approx(0.05)
    assert bucket.take_up_to("acct", 10, 5, n=10) == (2, 0.0)
    assert bucket.take_up_to("acct", 10, 5, n=10) == (0, pytest.approx(0.05))
    now[0] += 100  # idle: refills to the burst, no more
    assert bucket.take_up_to("acct", 10, 5, n=10) == (5, 0.0)
    assert bucket.take_up_to("other", 10, None, n=10) == (1, 0.0)  # default burst = rate/10


def test_bucket_arguments_are_checked(redis_client):
    bucket = TokenBucket(redis_client)
    with pytest.raises(ValueError, match="cannot take 6 tokens at once from a bucket of burst 5"):
        bucket.take("acct", 10, 5, n=6)
    with pytest.raises(ValueError, match="rate must be a positive number"):
        bucket.take("acct", 0)
    with pytest.raises(ValueError, match="n must be at least 1"):
        bucket.take_up_to("acct", 10, 5, n=0)


def test_processes_hammering_the_bucket_never_exceed_rate(redis_server, redis_client):
    rate, burst, seconds = 300.0, 30, 2.0
    targets = [
        (fleet_procs.bucket_process, (redis_server.url, "acct", rate, burst, seconds, mode, n))
        for mode, n in (("take", 1), ("take", 3), ("upto", 25), ("upto", 7))
    ]
    with processes(targets) as procs:
        start_together(redis_client, len(targets))
        started = redis_now(redis_client)
        wait_until(
            lambda: redis_client.llen(fleet_procs.RESULTS) >= len(targets),
            timeout=60,
            message="every bucket hammer to report",
        )
        finished = redis_now(redis_client)
        for p in procs:
            p.join(10)
        assert [p.exitcode for p in procs] == [0] * len(targets)
    out = results(redis_client)
    granted = sum(r["granted"] for r in out)
    assert granted <= burst + rate * (finished - started) + 1e-6
    assert granted > burst + rate * 0.5  # it refilled: well past the first burst
    assert all(r["bad_waits"] == 0 for r in out), out
    # (no per-process floor: an all-or-nothing take(n=3) may starve beside smaller takers)


# --- bind status heartbeats -------------------------------------------------------------------


def test_bind_statuses_are_published_read_and_expire(redis_server, redis_client):
    publish_bind_status(
        redis_client,
        "saf",
        "1",
        {"state": "bound_trx", "since": 1.5, "counters": {"submitted": 3}},
        ttl=30,
    )
    with processes([(fleet_procs.status_process, (redis_server.url, "saf", "1"))]) as procs:
        procs[0].join(60)
        assert procs[0].exitcode == 0
    # published after the slow part (spawning a process) so a loaded machine cannot expire it
    # before the first read; short enough that the wait below stays brief
    publish_bind_status(redis_client, "air", "1", {"state": "binding"}, ttl=3)
    rows = read_bind_statuses(redis_client)
    assert [(r["connection"], r["bind_id"]) for r in rows] == [
        ("air", "1"),
        ("saf", "1"),
        ("saf", "1"),
    ]
    mine = [r for r in rows if r["pid"] == os.getpid()]
    other = [r for r in rows if r["pid"] != os.getpid()]
    assert {r["connection"] for r in mine} == {"air", "saf"}
    assert other[0]["counters"] == {"submitted": 7} and other[0]["state"] == "bound_trx"
    assert mine[1]["counters"] == {"submitted": 3} and mine[1]["hostname"]

    def air() -> dict:
        return next(r for r in read_bind_statuses(redis_client) if r["connection"] == "air")

    assert air()["state"] == "binding" and air()["stale"] is False
    wait_until(lambda: air()["stale"], timeout=10, message="the air bind's heartbeat to go stale")
    stale = air()  # a stale heartbeat reads down, saying whose and since when
    assert stale["state"] == "down" and stale["reported_state"] == "binding"
    assert stale["heartbeat_age"] >= 3 and f"{os.getpid()}" in stale["last_error"]
    assert "no heartbeat" in stale["last_error"]
    assert len(read_bind_statuses(redis_client)) == 3  # still shown ...
    assert len(read_bind_statuses(redis_client, keep=0)) == 2  # ... until `keep` has passed
    publish_bind_status(redis_client, "saf", "1", {"state": "unbinding"})
    states = {r["pid"]: r["state"] for r in read_bind_statuses(redis_client)}
    assert states[os.getpid()] == "unbinding" and len(states) == 2
    clear_bind_status(redis_client, "saf", "1")
    assert [r["pid"] for r in read_bind_statuses(redis_client)] == [other[0]["pid"]]
    assert redis_client.hlen(redis_keys.BIND_STATUS_HASH) == 1


def test_a_heartbeat_reads_down_once_overdue_by_the_clock(redis_client):
    """With the reader's clock injected: live until ttl, then down, then dropped after keep."""
    now = redis_now(redis_client)
    publish_bind_status(redis_client, "saf", "1", {"state": "bound"}, ttl=30)

    def read(at: float, keep: float = 900) -> list[dict]:
        return read_bind_statuses(redis_client, clock=lambda: at, keep=keep)

    assert [(r["state"], r["stale"]) for r in read(now + 29)] == [("bound", False)]
    assert 28 <= read(now + 29)[0]["heartbeat_age"] <= 31
    assert [(r["state"], r["stale"]) for r in read(now + 31)] == [("down", True)]
    assert read(now + 31 + 900 - 5)[0]["state"] == "down"
    assert read(now + 31 + 900 + 5) == []  # dropped for good
    assert redis_client.hlen(redis_keys.BIND_STATUS_HASH) == 0
