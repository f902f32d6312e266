"""bridge.process.lifecycle.freeze_heap, in a fresh interpreter (the test's own heap is not touched)."""

from __future__ import annotations

import subprocess
import sys

PROGRAM = """
import gc, weakref
from bridge.process.lifecycle import freeze_heap

class Node:
    pass

gc.disable()  # no automatic collection before the checks: only freeze_heap's own

cycle = Node(); cycle.me = cycle  # garbage only a collection can free
dead = weakref.ref(cycle)
del cycle
kept = [Node() for _ in range(50_000)]  # long-lived start-up objects
before = gc.get_freeze_count()
freeze_heap()
assert dead() is None, "garbage was frozen instead of freed"
assert gc.get_freeze_count() - before >= 50_000, gc.get_freeze_count()
assert gc.get_count()[0] < 100, gc.get_count()
print("ok")
"""


def test_freeze_heap_frees_garbage_then_freezes_what_lives():
    done = subprocess.run(
        [sys.executable, "-c", PROGRAM], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"
