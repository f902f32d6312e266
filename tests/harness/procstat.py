"""CPU time and children of processes, from /proc (Linux), for the benches' CPU columns."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable
from pathlib import Path


def cpu_seconds(pids: Iterable[int]) -> float:
    """User + system CPU seconds used so far by these processes (gone ones count 0)."""
    ticks = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            ticks += int(fields[11]) + int(fields[12])  # utime + stime, in clock ticks
    return ticks / os.sysconf("SC_CLK_TCK")


def children(pid: int, *, recursive: bool = False) -> list[int]:
    """The child pids of ``pid`` (and theirs, with ``recursive``); [] once it is gone."""
    try:
        kids = [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []
    if recursive:
        kids += [g for k in kids for g in children(k, recursive=True)]
    return kids
