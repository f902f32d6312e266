"""node-smpp (https://www.npmjs.com/package/smpp), an SMSC we did not write, run as its own
process on an ephemeral port for the interoperability tests.

The npm packages come from tests/interop/package-lock.json (`make interop-deps`, or `npm ci`
here when node_modules is missing). No Node.js means a FAILED test, not a skip: CI runs on
machines that have it, and a silently skipped interop test proves nothing.
"""
from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.procs import running

HERE = Path(__file__).parent
SYSTEM_ID = "interop"
PASSWORD = "secret"


@dataclass
class NodeSmsc:
    """The running node-smpp SMSC: its port and the events it logged (one JSON object a line)."""

    port: int
    log_path: Path

    def events(self, name: str | None = None) -> list[dict]:
        # Only whole lines: node may be half-way through writing the last one.
        lines = self.log_path.read_text(encoding="utf-8").split("\n")[:-1]
        events = [json.loads(line) for line in lines if line.startswith("{")]
        return [e for e in events if name is None or e["event"] == name]


def _require(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        pytest.fail(f"{tool} not found: the interop tests need Node.js 18+ and npm "
                    "(e.g. apt-get install nodejs npm); they are never skipped")
    return path


@pytest.fixture(scope="session")
def node_modules() -> Path:
    """tests/interop/node_modules with node-smpp, installed from the lock file if missing."""
    node = _require("node")
    if not (HERE / "node_modules" / "smpp").is_dir():
        npm = _require("npm")
        result = subprocess.run([npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
                                cwd=HERE, capture_output=True, text=True, timeout=300, check=False)
        if result.returncode != 0:
            pytest.fail(f"npm ci in {HERE} failed ({result.returncode}): {result.stderr[-2000:]}"
                        " — run `make interop-deps` and check the npm registry is reachable")
    version = subprocess.run([node, "-e", "console.log(require('smpp/package.json').version)"],
                             cwd=HERE, capture_output=True, text=True, timeout=30, check=False)
    assert version.returncode == 0, version.stderr
    return HERE / "node_modules"


@pytest.fixture
def node_smsc(node_modules, tmp_path) -> NodeSmsc:
    """node-smpp's server (tests/interop/smsc.js) in its own process, stopped after the test."""
    log_path = tmp_path / "node-smsc.log"
    log_path.touch()
    smsc = NodeSmsc(0, log_path)

    def ready() -> bool:
        listening = smsc.events("listening")
        if listening:
            smsc.port = listening[0]["port"]
        return bool(listening)

    argv = [_require("node"), str(HERE / "smsc.js"), SYSTEM_ID, PASSWORD]
    with running(argv, ready, cwd=str(HERE), log_path=str(log_path)):
        yield smsc
