"""`smpp-bridge prove faults`: the installed script runs a quick fault scenario for real (embedded
Redis, SQLite, the simulator, a worker subprocess) and prints the summary table; a scenario whose
result disagrees with ground truth is a FAIL row with the problem named, and exit 1."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import update

from bridge.cli import main
from bridge.proof import SCENARIOS, scenario
from bridge.storage.models import messages

SMPP_BRIDGE = str(Path(sys.executable).with_name("smpp-bridge"))
HEADER = (
    "| scenario | messages | delivered | refunded | real duplicates | flagged duplicates"
    " | audit | seconds | result |"
)


def _prove(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    """The installed script in an empty directory, its temporary directories under tmp/."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BRIDGE_")}
    (tmp_path / "tmp").mkdir(exist_ok=True)
    env["TMPDIR"] = str(tmp_path / "tmp")
    env.pop("DATABASE_URL", None)
    env.pop("REDIS_URL", None)
    return subprocess.run(
        [SMPP_BRIDGE, "prove", "faults", *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.slow
def test_one_quick_scenario_prints_its_row(tmp_path):
    quick = [s.name for s in SCENARIOS.values() if s.quick]
    assert "receipts-first" in quick
    table = _prove(tmp_path, "--only", "receipts-first", "--keep", str(tmp_path / "runs"))
    assert table.returncode == 0, table.stdout + table.stderr
    lines = table.stdout.splitlines()
    assert lines[0] == HEADER
    cells = [c.strip() for c in lines[2].strip("|").split("|")]
    assert cells[:7] == ["receipts-first", "600", "600", "0", "0", "0", "ok"]
    assert cells[-1] == "pass" and len(lines) == 3
    # --keep: the run's files stay (the worker's log says it bound to the simulator)
    assert "bound" in (tmp_path / "runs" / "receipts-first" / "worker-1.log").read_text()

    as_json = _prove(tmp_path, "--only", "silent", "--json")
    assert as_json.returncode == 0, as_json.stdout + as_json.stderr
    (row,) = json.loads(as_json.stdout)
    assert row["scenario"] == "silent" and row["ok"] is True
    assert (row["messages"], row["delivered"], row["refunded"]) == (20, 0, 20)
    assert row["flagged_duplicates"] == 20 and row["real_duplicates"] == 0
    assert row["audit"] == "ok" and row["states"] == {"failed": 20}
    assert list((tmp_path / "tmp").iterdir()) == []  # a passing run leaves nothing behind


def test_unknown_scenario_names_the_choices(tmp_path):
    got = _prove(tmp_path, "--only", "nope")
    assert got.returncode == 2 and "Traceback" not in got.stderr
    assert "no fault scenario nope; choose from worker-sigkill" in got.stderr


@pytest.mark.slow
def test_a_result_that_disagrees_with_ground_truth_fails(tmp_path, capsys):
    """A flag the duplicate counter never counted: the check must catch it."""

    @scenario("test-miscounted", "a flag set behind the counter's back", messages=5)
    def miscounted(rig, n):
        rig.spawn_worker()
        rig.send(n)
        rig.wait_final(n, timeout=60)
        with rig.db.begin() as conn:
            conn.execute(update(messages).values(possible_duplicate=True))
        return {"delivered": n}

    try:
        code = main(["prove", "faults", "--only", "test-miscounted", "--keep", str(tmp_path)])
    finally:
        del SCENARIOS["test-miscounted"]
    out = capsys.readouterr().out
    assert code == 1, out
    assert "| test-miscounted | 5 | 5 | 0 | 0 | 5 | ok |" in out and "| FAIL |" in out
    assert "test-miscounted: reported 0 possible duplicates, 5 rows flagged" in out
    assert f"test-miscounted: logs and database kept in {tmp_path / 'test-miscounted'}" in out
