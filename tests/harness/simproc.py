"""Start `smpp-bridge simulator` in its own process for a benchmark, and stop it."""

from __future__ import annotations

import subprocess
import sys

START_CLI = "import sys; from bridge.cli import main; sys.exit(main(sys.argv[1:]))"


def start_simulator(extra: list[str]) -> tuple[subprocess.Popen, tuple[str, int]]:
    """Run the simulator with ``extra`` arguments; returns the process and its address."""
    proc = subprocess.Popen(
        [sys.executable, "-c", START_CLI, "simulator", *extra], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None  # a pipe
    line = proc.stdout.readline()  # "smpp-bridge simulator listening on HOST:PORT (...)"
    if "listening on" not in line:
        proc.kill()
        raise SystemExit(f"simulator did not start: {line!r}")
    host, port = line.split("listening on ")[1].split()[0].rsplit(":", 1)
    return proc, (host, int(port))
