"""`smpp-bridge ... | head`: a reader that stops early ends the command quietly (exit 141, as
for SIGPIPE), with no traceback (a real subprocess writing into a pipe nobody reads)."""

from __future__ import annotations

import os
import subprocess
import sys


def test_a_closed_pipe_ends_the_command_without_a_traceback(tmp_path):
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before the first byte, as `| head -0` would be
    try:
        done = subprocess.run(
            [sys.executable, "-m", "bridge.cli", "db", "upgrade"],  # it prints two lines
            stdout=write_end,
            env={**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path / 'bridge.db'}"},
            stderr=subprocess.PIPE,
            timeout=60,
            check=False,
        )
    finally:
        os.close(write_end)
    assert done.returncode == 141, done.stderr
    assert b"Traceback" not in done.stderr, done.stderr.decode()
