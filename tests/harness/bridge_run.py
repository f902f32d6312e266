"""`smpp-bridge run` as a user starts it, for the tests that drive the whole bridge: the console
script in its own session (so a test can SIGKILL the whole group), an environment with none of the
caller's BRIDGE_*/REDIS_URL/DATABASE_URL settings, and its output read line by line."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

from tests.api.helpers import LineReader

SMPP_BRIDGE = str(Path(sys.executable).parent / "smpp-bridge")  # the console script `make run` uses
READY = "Press Ctrl-C to stop."  # the banner's last line


def run_env(tmp_path: Path, port: int, **settings: str) -> dict[str, str]:
    """This process's environment without bridge settings, plus a port, var/ under
    ``tmp_path``, one API worker (``settings`` override or add any BRIDGE_* value)."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("BRIDGE_") and k not in ("REDIS_URL", "DATABASE_URL")
    }
    env.update(
        BRIDGE_PORT=str(port),
        BRIDGE_API_WORKERS="1",
        BRIDGE_VAR_DIR=str(tmp_path / "var"),
        PYTHONUNBUFFERED="1",
    )
    env.update(settings)
    return env


def start_run(
    tmp_path: Path, env: dict[str, str], *extra: str, command: str = "run"
) -> tuple[subprocess.Popen, LineReader]:
    """``smpp-bridge <command> *extra`` in ``tmp_path``; its stdout and stderr as one reader."""
    proc = subprocess.Popen(
        [SMPP_BRIDGE, command, *extra],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    return proc, LineReader(proc.stdout)


def kill_group(proc: subprocess.Popen) -> None:
    """SIGKILL the process and every child in its session, if it is still running."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)


def wait_banner(proc: subprocess.Popen, out: LineReader, timeout: float = 120) -> dict[str, int]:
    """Wait for run's banner (failing if run exits first); the children started, name -> pid."""
    from tests.harness.procs import wait_until

    wait_until(
        lambda: out.find(READY) or proc.poll() is not None,
        timeout=timeout,
        message="smpp-bridge run to print its banner",
    )
    assert proc.poll() is None, out.text()
    return {k: int(v) for k, v in re.findall(r"started ([\w-]+) \(pid (\d+)\)", out.text())}


def cli(tmp_path: Path, env: dict[str, str], *args: str) -> str:
    """The stdout of ``smpp-bridge *args`` run as the user would, next to a running `run`."""
    return subprocess.run(
        [SMPP_BRIDGE, *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
