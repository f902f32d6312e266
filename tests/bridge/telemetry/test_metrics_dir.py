"""The multiprocess directory: processes that start while another counts keep its numbers;
the first process of a fresh start clears them; an early import of prometheus-client is
switched to the directory (each case in real subprocesses: the mode is per process)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from prometheus_client import CollectorRegistry
from prometheus_client.multiprocess import MultiProcessCollector

from tests.harness.procs import stop_process, wait_until

# imports bridge.telemetry.metrics (and so prometheus-client) BEFORE prepare, then counts one submit
COUNT_ONE = textwrap.dedent(
    """
    import sys
    from bridge.telemetry import metrics
    from bridge.telemetry import metrics_dir
    metrics_dir.prepare(sys.argv[1])
    metrics.count_submit("acme", "ESME_ROK")
    print("counted", flush=True)
    if sys.argv[2] == "hold":
        sys.stdin.readline()
    """
)


def _submits(path) -> float:
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=str(path))
    value = registry.get_sample_value(
        "smpp_bridge_submits_total", {"connection": "acme", "command_status": "ESME_ROK"}
    )
    return value or 0.0


def _count(var, hold: bool = False) -> subprocess.Popen:
    env = {"PATH": "/usr/bin:/bin"}  # no PROMETHEUS_MULTIPROC_DIR: prepare sets it
    return subprocess.Popen(
        [sys.executable, "-c", COUNT_ONE, str(var), "hold" if hold else "exit"],
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )


def test_counts_are_kept_while_a_process_lives_and_cleared_on_a_fresh_start(tmp_path):
    var = tmp_path / "var"
    holder = _count(var, hold=True)
    try:
        assert holder.stdout is not None and holder.stdin is not None
        assert holder.stdout.readline().strip() == "counted"
        assert _submits(var / "metrics") == 1  # an early import still counts into the directory
        second = _count(var)
        assert second.wait(30) == 0
        assert _submits(var / "metrics") == 2  # the holder lives: nothing cleared
    finally:
        if holder.stdin is not None:
            holder.stdin.close()
        stop_process(holder)
    third = _count(var)  # nobody holds the lock now: a fresh start
    assert third.wait(30) == 0
    wait_until(lambda: _submits(var / "metrics") == 1, timeout=5, message="a cleared count")
    assert (var / "metrics").stat().st_mode & 0o777 == 0o700
