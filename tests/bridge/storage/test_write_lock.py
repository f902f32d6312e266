"""The cross-process SQLite write lock (bridge.storage.write_lock): exclusive, and a no-op elsewhere."""

from __future__ import annotations

import subprocess
import sys
import threading
import time

from bridge.storage.write_lock import LOCK_SUFFIX, WriteLock, lock_path
from tests.harness.procs import wait_until

_HOLDER = """
import sys, time
from bridge.storage.write_lock import WriteLock
lock = WriteLock(sys.argv[1])
with lock.held():
    print("held", flush=True)
    sys.stdin.readline()  # hold until the test says so
"""


def test_lock_file_sits_beside_a_sqlite_file_only(tmp_path):
    assert lock_path(f"sqlite:///{tmp_path}/b.db") == f"{tmp_path}/b.db{LOCK_SUFFIX}"
    assert lock_path("sqlite://") is None
    assert lock_path("sqlite:///:memory:") is None
    assert lock_path("postgresql+psycopg://u@127.0.0.1:5432/x") is None
    assert not WriteLock("postgresql+psycopg://u@127.0.0.1:5432/x").active


def test_a_writer_in_another_process_waits_for_the_holder(tmp_path):
    url = f"sqlite:///{tmp_path}/b.db"
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, url],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    lock = WriteLock(url)
    got = threading.Event()

    def take():
        with lock.held():
            got.set()

    taker = threading.Thread(target=take)
    assert holder.stdout is not None and holder.stdin is not None  # both are pipes
    try:
        assert holder.stdout.readline().strip() == "held"
        taker.start()
        time.sleep(0.2)  # give the taker every chance to get it wrongly
        assert not got.is_set(), "the lock was taken while another process held it"
        holder.stdin.write("\n")
        holder.stdin.flush()
        wait_until(got.is_set, message="the lock after the holder let go")
    finally:
        holder.kill()
        holder.wait(10)
        taker.join(10)
        lock.close()
    assert not taker.is_alive()


def test_two_locks_in_one_process_exclude_each_other(tmp_path):
    url = f"sqlite:///{tmp_path}/b.db"
    first, second = WriteLock(url), WriteLock(url)
    inside: list[int] = []
    overlaps: list[int] = []

    def work(lock):
        for _ in range(50):
            with lock.held():
                inside.append(1)
                if len(inside) > 1:
                    overlaps.append(1)
                time.sleep(0.0005)
                inside.pop()

    threads = [threading.Thread(target=work, args=(lk,)) for lk in (first, second, first)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    first.close()
    second.close()
    assert not overlaps


def test_acquire_holds_across_calls_and_held_inside_it_is_a_no_op(tmp_path):
    url = f"sqlite:///{tmp_path}/b.db"
    lock, other = WriteLock(url), WriteLock(url)
    got = threading.Event()

    def take():
        with other.held():
            got.set()

    lock.acquire()
    taker = threading.Thread(target=take)
    try:
        with lock.held():  # the owner's own block: no deadlock on itself
            pass
        taker.start()
        assert not got.wait(0.2), "another lock got in while acquire() held it"
        threading.Thread(target=lock.release).start()  # not the owner: changes nothing
        assert not got.wait(0.2)
        lock.release()
        wait_until(got.is_set, message="the other lock after release()")
        lock.release()  # a second release is a no-op
    finally:
        lock.release()
        taker.join(10)
        lock.close()
        other.close()
    assert not taker.is_alive()


def test_a_writer_waits_a_bounded_time_then_goes_on_without_the_lock(tmp_path):
    url = f"sqlite:///{tmp_path}/b.db"
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, url],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    lock = WriteLock(url, wait=0.3)
    assert holder.stdout is not None and holder.stdin is not None  # both are pipes
    try:
        assert holder.stdout.readline().strip() == "held"
        started = time.monotonic()
        with lock.held():  # runs anyway: SQLite's own lock is the guarantee
            waited = time.monotonic() - started
        assert waited >= 0.3
        assert lock.acquire() is False
        lock.release()
        holder.stdin.write("\n")
        holder.stdin.flush()
        holder.wait(10)
        assert lock.acquire() is True  # free again: taken at once
        lock.release()
    finally:
        holder.kill()
        holder.wait(10)
        lock.close()
