"""BoundedHasher: real argon2 verifies, never more than the cap at once, a bounded wait."""

from __future__ import annotations

import os
import threading
import time

import pytest
from argon2 import PasswordHasher
from argon2.exceptions import VerifyMismatchError

from bridge.storage.passwords import NICE, BoundedHasher, HashingBusy
from tests.harness.procs import wait_until


def test_eight_threads_never_run_more_than_the_cap():
    hasher = PasswordHasher()
    stored = hasher.hash("secret")
    bounded = BoundedHasher(hasher, concurrency=2, wait_seconds=60)
    results: list[object] = []
    lock = threading.Lock()

    def guess(password: str) -> None:
        try:
            outcome: object = bounded.verify(stored, password)
        except VerifyMismatchError as exc:
            outcome = exc
        with lock:
            results.append(outcome)

    threads = [
        threading.Thread(target=guess, args=("secret" if i % 2 else f"wrong{i}",)) for i in range(8)
    ]
    try:
        for t in threads:
            t.start()
    finally:
        for t in threads:
            t.join(60)
        bounded.close()
    assert results.count(True) == 4
    assert sum(isinstance(r, VerifyMismatchError) for r in results) == 4
    assert bounded.peak == 2  # reached, and never passed
    assert bounded.active == 0


def test_no_slot_within_the_wait_is_hashing_busy_and_nothing_queues():
    slow = PasswordHasher(time_cost=40)  # about a second per verify
    stored = slow.hash("secret")
    bounded = BoundedHasher(slow, concurrency=1, wait_seconds=0.05)
    holder = threading.Thread(target=bounded.verify, args=(stored, "secret"))
    holder.start()
    try:
        wait_until(lambda: bounded.active == 1, timeout=10, message="the slot taken")
        started = time.monotonic()
        with pytest.raises(HashingBusy) as refused:
            bounded.verify(stored, "secret")
        assert time.monotonic() - started < 0.5
        assert refused.value.extra["retry_after"] == 1
    finally:
        holder.join(30)
    assert bounded.peak == 1  # the refused verify never ran
    bounded.close()


@pytest.mark.skipif(not hasattr(os, "getpriority"), reason="no per-thread nice here")
def test_the_hashing_threads_run_at_a_lower_priority():
    bounded = BoundedHasher(PasswordHasher(), concurrency=1)
    mine = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    seen: list[int] = []
    bounded._pool.submit(
        lambda: seen.append(os.getpriority(os.PRIO_PROCESS, threading.get_native_id()))
    ).result(10)
    bounded.close()
    assert seen == [min(19, mine + NICE)]


def test_the_dummy_verify_takes_a_slot_and_its_hash_has_the_real_parameters():
    slow = PasswordHasher(time_cost=40)  # about a second per verify
    stored = slow.hash("secret")
    bounded = BoundedHasher(slow, concurrency=1, wait_seconds=0.05)
    holder = threading.Thread(target=bounded.verify_dummy, args=("a guess",))
    holder.start()
    try:
        wait_until(lambda: bounded.active == 1, timeout=10, message="the dummy holds the slot")
        with pytest.raises(HashingBusy):  # a real check waits for it like for any other
            bounded.verify(stored, "secret")
    finally:
        holder.join(30)
    dummy = bounded._dummy
    assert dummy is not None and dummy.split("$")[:4] == stored.split("$")[:4]  # argon2id, v, m/t/p
    bounded.verify_dummy("a guess")  # made once: the same hash is used again
    assert bounded._dummy == dummy
    bounded.close()
