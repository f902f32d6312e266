"""`smpp-bridge run` with no [[smsc]]: it starts the simulated SMSC and the worker, and the
follow-up line it prints shows the demo message reaching `delivered`; Ctrl-C stops them all."""

from __future__ import annotations

import json
import re
import signal
import subprocess

import pytest

from tests.api.helpers import pid_gone
from tests.harness.bridge_run import kill_group, run_env, start_run
from tests.harness.procs import free_port, wait_until

pytestmark = pytest.mark.slow


def test_run_delivers_the_demo_message_end_to_end(tmp_path):
    proc, out = start_run(tmp_path, run_env(tmp_path, free_port()))
    pids: list[int] = []
    try:
        wait_until(
            lambda: out.find("Press Ctrl-C to stop.") or proc.poll() is not None,
            timeout=120,
            message="smpp-bridge run to print its banner",
        )
        assert proc.poll() is None, out.text()
        started = dict(re.findall(r"started ([\w-]+) \(pid (\d+)\)", out.text()))
        assert {"simulator", "worker"} <= set(started), out.text()
        pids = [int(p) for p in started.values()]
        [follow] = [line.strip() for line in out.lines if line.strip().startswith("MID=$(")]
        shown = subprocess.run(
            ["bash", "-c", follow], capture_output=True, text=True, timeout=30, check=True
        )
        answer = json.loads(shown.stdout)
        assert answer["state"] == "delivered", answer
        assert len(answer["smsc_message_ids"]) == 1
        proc.send_signal(signal.SIGINT)  # what Ctrl-C does
        assert proc.wait(timeout=60) == 0, out.text()
    finally:
        kill_group(proc)
    wait_until(
        lambda: all(pid_gone(p) for p in pids),
        timeout=15,
        message=f"simulator and worker to be gone: {pids}",
    )
    assert "stopped simulator" in out.text() and "stopped worker" in out.text()
