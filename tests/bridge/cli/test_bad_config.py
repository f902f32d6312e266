"""A bad key in any table of the BRIDGE_CONFIG file stops every long-running command at start:
exit 1 and one stderr line that names the file and the key, never a traceback."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

SMSC = """
[[smsc]]
name = "saf"
host = "127.0.0.1"
port = 2775
system_id = "bridge"
password = "pw"
"""

BAD_TABLES = {
    "smsc": (
        SMSC.replace("port = 2775", "port = 70000"),
        "[[smsc]] #1 ('saf'): port must be an integer from 1 to 65535, got 70000",
    ),
    "route": (
        SMSC + '\n[[route]]\nname = "ke"\nprefixes = ["+254"]\nconnections = ["saf", "nope"]\n',
        "[[route]] #1 ('ke'): connections names 'nope', which is not an [[smsc]] name",
    ),
    "worker": (
        SMSC + "\n[worker]\nbatch_size = 0\n",
        "[worker]: batch_size must be an integer from 1 to 10000, got 0",
    ),
    "worker.retry": (
        SMSC + "\n[worker.retry]\nESME_RNOPE = { delay = 1 }\n",
        "[worker.retry]: 'ESME_RNOPE' is neither an SMPP status name",
    ),
}


def _run(command: list[str], toml: str, tmp_path) -> subprocess.CompletedProcess:
    path = tmp_path / "bridge.toml"
    path.write_text(toml)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BRIDGE_", "DATABASE_URL"))}
    env.update(
        BRIDGE_CONFIG=str(path),
        BRIDGE_VAR_DIR=str(tmp_path / "var"),
        REDIS_URL="redis://127.0.0.1:1/0",  # never reached: the config is refused first
    )
    return subprocess.run(
        [sys.executable, "-m", "bridge.cli", *command],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize("command", [["worker"], ["api"], ["run", "--no-demo"]])
@pytest.mark.parametrize("table", sorted(BAD_TABLES))
def test_a_bad_key_stops_the_command_at_start_with_one_line(command, table, tmp_path):
    toml, message = BAD_TABLES[table]
    result = _run(command, toml, tmp_path)
    assert result.returncode == 1, result
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"smpp-bridge {command[0]}: error: {tmp_path / 'bridge.toml'}: ")
    assert message in lines[0]
    assert not (tmp_path / "var").exists()  # nothing was started or created


def test_a_table_that_is_not_an_array_of_tables_is_named(tmp_path):
    result = _run(["worker"], 'smsc = "saf"\n', tmp_path)
    assert result.returncode == 1
    assert result.stderr.strip().endswith("bridge.toml: smsc must be [[smsc]] tables, got str")
