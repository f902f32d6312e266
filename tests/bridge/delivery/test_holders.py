"""Lease holders' identity and the same-machine liveness check, with real processes and the
real /proc (bridge/delivery/holders.py)."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bridge.delivery.holders import (
    Holder,
    HostIdentity,
    current_holder,
    holder_is_dead,
    holder_label,
    parse_holder,
    parse_stat,
    process_start_time,
    read_host_identity,
)
from tests.harness.procs import wait_until

BOOT = "3496503e-19fd-417a-9e16-1d2f44e64e11"
HOST = HostIdentity("vm1", BOOT, 4026531836)

needs_proc = pytest.mark.skipif(read_host_identity() is None, reason="needs Linux /proc")


def _child() -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])


# --- pure parts ---------------------------------------------------------------------------


def test_a_lease_id_round_trips_its_holder():
    holder = Holder(HOST, 4242, 279712)
    lease = "vm1:4242:sim#1/0123456789abcdef" + holder.suffix()
    assert lease.endswith(f"~h1~vm1~{BOOT}~4026531836~4242~279712")
    assert parse_holder(lease) == holder
    assert holder_label(lease) == "vm1:4242:sim#1"


@pytest.mark.parametrize(
    "lease",
    [
        "vm1:4242:sim#1/0123456789abcdef",  # the old form: no identity, a foreign holder
        f"w~1/abc~h2~vm1~{BOOT}~1~4242~5",  # another version's suffix
        "w/abc~h1~vm1~not-a-boot-id~1~4242~5",
        f"w/abc~h1~vm1~{BOOT}~1~0~5",  # pid 0 would mean "my process group" to kill()
        f"w/abc~h1~vm1~{BOOT}~1~-3~5",
        f"w/abc~h1~vm1~{BOOT}~x~4242~5",
    ],
)
def test_ids_without_a_valid_identity_name_no_holder(lease):
    assert parse_holder(lease) is None


def test_labels_of_old_and_odd_ids():
    assert holder_label("vm1:4242:sim#1/0123456789abcdef") == "vm1:4242:sim#1"
    assert holder_label("w1") == "w1"
    # a connection name with a slash keeps it (the random part has none)
    assert holder_label("vm1:1:a/b#1/0123" + Holder(HOST, 1, 2).suffix()) == "vm1:1:a/b#1"


def test_stat_fields_are_counted_after_the_command_name():
    # field 2 may hold spaces and parentheses; field 3 is the state, field 22 the start time
    rest = "S 1 1 1 0 -1 4194304 100 0 0 0 0 0 0 0 20 0 1 0 279712 3133440 413"
    assert parse_stat(f"31104 (cat) {rest}") == ("S", 279712)
    assert parse_stat(f"31104 (we ird) (x)) {rest}") == ("S", 279712)
    with pytest.raises(ValueError, match="not a /proc/<pid>/stat line"):
        parse_stat("31104 cat S 1")


def test_liveness_by_injected_start_times():
    holder = Holder(HOST, 4242, 100)
    assert not holder_is_dead(holder, HOST, lambda pid: 100)  # running, same start
    assert holder_is_dead(holder, HOST, lambda pid: None)  # no such pid (or a zombie)
    assert holder_is_dead(holder, HOST, lambda pid: 555)  # the pid was reused
    other_host = dataclasses.replace(HOST, hostname="vm2")
    other_boot = dataclasses.replace(HOST, boot_id=BOOT.replace("3", "4"))
    other_ns = dataclasses.replace(HOST, pid_ns=1)
    for here in (other_host, other_boot, other_ns, None):  # nothing can be proven there
        assert not holder_is_dead(holder, here, lambda pid: None)

    def hidden(pid: int) -> int | None:
        raise PermissionError("hidepid")

    assert not holder_is_dead(holder, HOST, hidden)


# --- against the real /proc ---------------------------------------------------------------


@needs_proc
def test_this_process_is_a_live_holder():
    here = read_host_identity()
    me = current_holder()
    assert here is not None and me is not None
    assert me.host == here and me.pid == os.getpid()
    assert here.boot_id == Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    assert here.pid_ns == os.stat("/proc/self/ns/pid").st_ino
    assert process_start_time(os.getpid()) == me.start_time
    assert not holder_is_dead(me, here)


@needs_proc
def test_a_dead_child_is_dead_and_its_zombie_too():
    here = read_host_identity()
    assert here is not None
    child = _child()
    try:
        start = process_start_time(child.pid)
        assert start is not None
        holder = Holder(here, child.pid, start)
        assert not holder_is_dead(holder, here)
        child.kill()
        # not reaped yet: a zombie holds no socket and renews nothing
        wait_until(lambda: process_start_time(child.pid) is None, timeout=10, message="the zombie")
        assert holder_is_dead(holder, here)
    finally:
        child.kill()
        child.wait(10)
    assert process_start_time(child.pid) is None  # reaped: the pid is gone
    assert holder_is_dead(holder, here)
    # the same dead pid on another machine proves nothing
    assert not holder_is_dead(dataclasses.replace(holder, host=HOST), here)


@needs_proc
def test_a_reused_pid_is_not_the_holder():
    here = read_host_identity()
    me = current_holder()
    assert here is not None and me is not None
    # the holder had our pid but started at another time: our process is not it
    assert holder_is_dead(dataclasses.replace(me, start_time=me.start_time - 1), here)
    assert holder_is_dead(dataclasses.replace(me, start_time=me.start_time + 1), here)


def test_a_pid_must_be_positive():
    with pytest.raises(ValueError, match="pid must be positive"):
        process_start_time(0)
