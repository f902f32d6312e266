"""SMSCs we did not write, each run as its own process on a free port for the interoperability
tests: node-smpp (https://www.npmjs.com/package/smpp) under Node.js, and smpp34
(https://pypi.org/project/smpp34/) in its own virtualenv.

node-smpp comes from tests/interop/package-lock.json, smpp34 from
tests/interop/requirements-smpp34.txt into var/venv-smpp34: `make interop-deps` installs both,
and the fixtures here do when they are missing. A missing tool or a failed install is a FAILED
test, not a skip: CI runs on machines that have them, and a silently skipped interop test
proves nothing.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from smpp.session.client import SubmitOutcome
from tests.harness.procs import free_port, running

HERE = Path(__file__).parent
SMPP34_REQUIREMENTS = HERE / "requirements-smpp34.txt"
SMPP34_VENV = HERE.parent.parent / "var" / "venv-smpp34"  # the Makefile's SMPP34_VENV
SYSTEM_ID = "interop"
PASSWORD = "secret"


@dataclass
class LoggedSmsc:
    """A running third-party SMSC: its port and the events it logged (one JSON object a line)."""

    port: int
    log_path: Path

    def events(self, name: str | None = None) -> list[dict]:
        # Only whole lines: node may be half-way through writing the last one.
        lines = self.log_path.read_text(encoding="utf-8").split("\n")[:-1]
        events = [json.loads(line) for line in lines if line.startswith("{")]
        return [e for e in events if name is None or e["event"] == name]


def issued_ids(outcomes: Iterable[SubmitOutcome]) -> list[str]:
    """The message ids the SMSC issued, in order; every outcome must carry one."""
    ids = [o.message_id for o in outcomes]
    assert all(ids), f"an outcome without a message id: {ids}"
    return [i for i in ids if i is not None]


def _require(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        pytest.fail(
            f"{tool} not found: the interop tests need Node.js 18+ and npm "
            "(e.g. apt-get install nodejs npm); they are never skipped"
        )
    return path


@pytest.fixture(scope="session")
def node_modules() -> Path:
    """tests/interop/node_modules with node-smpp, installed from the lock file if missing."""
    node = _require("node")
    if not (HERE / "node_modules" / "smpp").is_dir():
        npm = _require("npm")
        result = subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
            cwd=HERE,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        if result.returncode != 0:
            pytest.fail(
                f"npm ci in {HERE} failed ({result.returncode}): {result.stderr[-2000:]}"
                " — run `make interop-deps` and check the npm registry is reachable"
            )
    version = subprocess.run(
        [node, "-e", "console.log(require('smpp/package.json').version)"],
        cwd=HERE,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert version.returncode == 0, version.stderr
    return HERE / "node_modules"


@pytest.fixture
def node_smsc(node_modules, tmp_path) -> Iterator[LoggedSmsc]:
    """node-smpp's server (tests/interop/smsc.js) in its own process, stopped after the test."""
    log_path = tmp_path / "node-smsc.log"
    log_path.touch()
    smsc = LoggedSmsc(0, log_path)

    def ready() -> bool:
        listening = smsc.events("listening")
        if listening:
            smsc.port = listening[0]["port"]
        return bool(listening)

    argv = [_require("node"), str(HERE / "smsc.js"), SYSTEM_ID, PASSWORD]
    with running(argv, ready, cwd=str(HERE), log_path=str(log_path)):
        yield smsc


@pytest.fixture(scope="session")
def smpp34_python() -> Path:
    """The Python of var/venv-smpp34 with smpp34 installed (installed here when missing)."""
    python, stamp = SMPP34_VENV / "bin" / "python", SMPP34_VENV / ".installed"
    if not (stamp.exists() and stamp.stat().st_mtime > SMPP34_REQUIREMENTS.stat().st_mtime):
        shutil.rmtree(SMPP34_VENV, ignore_errors=True)
        for argv in (
            [sys.executable, "-m", "venv", str(SMPP34_VENV)],
            [str(python), "-m", "pip", "install", "-q", "-r", str(SMPP34_REQUIREMENTS)],
        ):
            result = subprocess.run(argv, capture_output=True, text=True, timeout=300, check=False)
            if result.returncode != 0:
                pytest.fail(
                    f"{' '.join(argv)} failed ({result.returncode}): "
                    f"{result.stderr[-2000:]} — run `make interop-deps` and check "
                    "that PyPI is reachable"
                )
        stamp.touch()
    return python


@pytest.fixture
def smpp34_smsc(smpp34_python, tmp_path) -> Iterator[LoggedSmsc]:
    """smpp34's server (tests/interop/smpp34_smsc.py) in its own process, stopped after the
    test. smpp34 cannot report an OS-chosen port, so it gets a free one (tried 3 times)."""
    log_path = tmp_path / "smpp34-smsc.log"
    for attempt in range(3):
        log_path.write_text("")
        smsc = LoggedSmsc(free_port(), log_path)
        argv = [str(smpp34_python), str(HERE / "smpp34_smsc.py"), str(smsc.port)]
        try:

            def listening(smsc: LoggedSmsc = smsc) -> bool:
                return bool(smsc.events("listening"))

            with running(
                argv,
                listening,
                cwd=str(HERE),
                log_path=str(log_path),
            ):
                yield smsc
                return
        except RuntimeError:  # exited before ready: most likely the port was taken meanwhile
            if attempt == 2:
                raise
