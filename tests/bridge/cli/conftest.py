"""Fixtures of the command-line tests: the simulated SMSC (tests.harness.simulator) and the
command line itself, run in this process."""

import pytest

from bridge.cli import main
from tests.harness.simulator import make_simulator  # noqa: F401  (fixture)


@pytest.fixture
def cli(database_url, monkeypatch, capsys):
    """Run the CLI against `database_url` (no allow-listed networks); returns (exit code,
    stdout, stderr)."""
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.delenv("BRIDGE_CONFIG", raising=False)
    monkeypatch.delenv("BRIDGE_WEBHOOK_ALLOW_NETWORKS", raising=False)

    def run(*argv):
        code: str | int | None
        try:
            code = main(list(argv))
        except SystemExit as exc:  # argparse usage errors
            code = exc.code
        out, err = capsys.readouterr()
        return code, out, err

    return run
