"""Bad settings and bad arguments, through the installed `smpp-bridge` script in an empty
directory: one stderr line, a non-zero exit, no traceback and no file left behind (issue 12
item 10). Also `--version`, the bare command's usage, and `worker --simulator`'s credentials."""

from __future__ import annotations

import os
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest

from bridge.cli.worker import worker_config
from bridge.config import Config
from tests.harness.procs import stop_process, wait_until

SMPP_BRIDGE = str(Path(sys.executable).with_name("smpp-bridge"))
UNREACHABLE_REDIS = "redis://127.0.0.1:1/0"  # never reached: each case stops before


def _env(**settings: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("BRIDGE_") and k not in ("DATABASE_URL", "REDIS_URL")
    }
    env.update(settings)
    return env


def _run(cwd: Path, argv: list[str], stdin: str = "", **settings: str):
    return subprocess.run(
        [SMPP_BRIDGE, *argv],
        env=_env(**settings),
        cwd=cwd,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.fixture
def empty_dir(tmp_path: Path) -> Path:
    if not Path(SMPP_BRIDGE).exists():
        pytest.skip("smpp-bridge is not installed in this environment (pip install -e .)")
    directory = tmp_path / "cwd"
    directory.mkdir()
    return directory


def _refused_in_one_line(proc, command: str) -> str:
    assert proc.returncode not in (0, None), proc
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    assert proc.stdout == ""
    assert lines[0].startswith(f"smpp-bridge {command}: error: "), lines[0]
    return lines[0]


BAD_SETTINGS = {
    "database url garbage": (
        ["account", "show", "bob"],
        {"DATABASE_URL": "garbage"},
        "database_url (DATABASE_URL) must be a URL: sqlite:///PATH",
    ),
    "database url mysql": (
        ["account", "show", "bob"],
        {"DATABASE_URL": "mysql://bob:secret@127.0.0.1/bridge"},
        "database_url (DATABASE_URL) uses 'mysql', which the bridge cannot store to",
    ),
    "database url with a bad port": (
        ["audit"],
        {"DATABASE_URL": "postgresql+psycopg://bob:secret@127.0.0.1:five/bridge"},
        "database_url (DATABASE_URL) is not a valid URL",
    ),
    "redis url not a url": (
        ["status"],
        {"REDIS_URL": "notaurl"},
        "redis_url (REDIS_URL) must be redis://",
    ),
    "redis url with a bad port": (
        ["status"],
        {"REDIS_URL": "redis://:secret@127.0.0.1:six/0"},
        "redis_url (REDIS_URL) is not a valid URL",
    ),
    "api port out of range": (
        ["api"],
        {"BRIDGE_PORT": "99999"},
        "port (BRIDGE_PORT) must be a TCP port from 1 to 65535, got 99999",
    ),
    "api port out of range for run": (
        ["run", "--no-demo"],
        {"BRIDGE_PORT": "0"},
        "port (BRIDGE_PORT) must be a TCP port from 1 to 65535, got 0",
    ),
    "worker log level": (
        ["worker", "--log-level", "LOUD"],
        {},
        "argument --log-level: invalid choice: 'LOUD'",
    ),
    "run skips a child that does not exist": (
        ["run", "--skip", "bogus"],
        {},
        "argument --skip: invalid choice: 'bogus' (choose from 'simulator', 'worker', 'webhooks')",
    ),
    "run redis port out of range": (
        ["run", "--redis-port", "99999"],
        {},
        "argument --redis-port: must be a TCP port from 0 to 65535, got '99999'",
    ),
    "simulator credentials without --simulator": (
        ["worker", "--simulator-system-id", "acme"],
        {"REDIS_URL": UNREACHABLE_REDIS},
        "--simulator-system-id and --simulator-password go with --simulator HOST:PORT",
    ),
    "simulator password too long": (
        ["worker", "--simulator", "127.0.0.1:2775", "--simulator-password", "123456789"],
        {"REDIS_URL": UNREACHABLE_REDIS},
        "--simulator-password must be 0 to 8 characters",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_SETTINGS))
def test_a_bad_setting_is_one_line_and_creates_nothing(case, empty_dir):
    argv, settings, message = BAD_SETTINGS[case]
    line = _refused_in_one_line(_run(empty_dir, argv, **settings), argv[0])
    assert message in line
    assert "secret" not in line  # a password in a URL is never echoed
    assert sorted(os.listdir(empty_dir)) == []


# each command that must not create the database, with what it needs to reach the check
READ_ONLY = {
    "account show": (["account", "show", "bob"], {}),
    "account topup": (["account", "topup", "bob", "5"], {}),
    "account create": (["account", "create", "bob", "--password", "pw"], {}),
    "key create": (["key", "create", "bob"], {}),
    "audit": (["audit"], {}),
    "api": (["api"], {}),
    "worker": (["worker", "--simulator", "127.0.0.1:2775"], {"REDIS_URL": UNREACHABLE_REDIS}),
}


@pytest.mark.parametrize("command", sorted(READ_ONLY))
def test_a_missing_database_is_named_not_created(command, empty_dir):
    argv, settings = READ_ONLY[command]
    line = _refused_in_one_line(_run(empty_dir, argv, **settings), argv[0])
    missing = empty_dir / "var" / "bridge.db"
    assert line.endswith(
        f"error: no database at {missing}: run `smpp-bridge db upgrade` or `smpp-bridge run`"
        " (or set DATABASE_URL / BRIDGE_VAR_DIR to the one you meant)"
    )
    assert sorted(os.listdir(empty_dir)) == []


@pytest.mark.slow
def test_topup_takes_plain_decimals_only(empty_dir):
    assert _run(empty_dir, ["db", "upgrade"]).returncode == 0
    created = _run(empty_dir, ["account", "create", "acme", "--password", "pw", "--balance", "7"])
    assert created.returncode == 0, created.stderr
    files = sorted(os.listdir(empty_dir / "var"))
    for amount in ("1e3", "inf", "NaN", "0.00001"):  # the rest of the rule: test_units.py
        proc = _run(empty_dir, ["account", "topup", "acme", amount])
        line = _refused_in_one_line(proc, "account")
        assert "amount " in line and repr(amount) in line
    shown = _run(empty_dir, ["account", "show", "acme"])
    assert "balance: 7.00 KES" in shown.stdout.splitlines()
    assert sorted(os.listdir(empty_dir)) == ["var"]
    assert sorted(os.listdir(empty_dir / "var")) == files


def test_no_arguments_print_the_usage_and_exit_2(empty_dir):
    proc = _run(empty_dir, [])
    assert proc.returncode == 2 and proc.stdout == ""
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("usage: smpp-bridge [-h] [--version] COMMAND")
    assert "COMMAND is one of run, api, account, key, db, simulator, worker, status" in lines[0]
    assert os.listdir(empty_dir) == []


def test_version_prints_the_installed_version(empty_dir):
    proc = _run(empty_dir, ["--version"])
    assert proc.returncode == 0 and proc.stderr == ""
    assert proc.stdout == f"smpp-bridge {version('smpp-bridge')}\n"
    assert os.listdir(empty_dir) == []


def test_worker_config_binds_to_the_simulator_with_the_credentials_given():
    conn = worker_config(Config(), "127.0.0.1:2775", "acme", "s3cret").smsc[0]
    assert (conn.host, conn.port, conn.system_id, conn.password) == (
        "127.0.0.1",
        2775,
        "acme",
        "s3cret",
    )
    default = worker_config(Config(), "127.0.0.1:2775").smsc[0]
    assert (default.system_id, default.password) == ("bridge", "bridge")


def test_worker_binds_to_a_simulator_that_wants_other_credentials(
    make_simulator, redis_server, empty_dir
):
    """A simulator started with its own system_id/password: the worker binds with the flags
    (the password read from stdin with '-'), and every bind it made was accepted."""
    sim = make_simulator(system_id="acme", password="s3cret")
    host, port = sim.address
    assert _run(empty_dir, ["db", "upgrade"]).returncode == 0
    argv = [
        SMPP_BRIDGE,
        "worker",
        "--simulator",
        f"{host}:{port}",
        "--simulator-system-id",
        "acme",
        "--simulator-password",
        "-",
    ]
    log = empty_dir.parent / "worker.log"
    with open(log, "w") as stderr:
        proc = subprocess.Popen(
            argv,
            env=_env(REDIS_URL=redis_server.url),
            cwd=empty_dir,
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            text=True,
            start_new_session=True,
        )
        assert proc.stdin is not None  # stdin=PIPE
        try:
            proc.stdin.write("s3cret\n")
            proc.stdin.close()
            bound = wait_until(
                lambda: proc.poll() is None and sim.bound, timeout=30, message="the worker's bind"
            )
        finally:
            stop_process(proc)
    assert {(b.system_id, b.password) for b in bound} == {("acme", "s3cret")}, log.read_text()
    assert all(b.bind_status == 0 for b in sim.binds if b.bind_status is not None)
