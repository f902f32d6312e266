"""`smpp-bridge account|key|db` through bridge.cli.main (and once through the real script)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from bridge.config import Config
from bridge.service import BridgeService
from bridge.storage.db import Database


def fields(out):
    return dict(line.split(": ", 1) for line in out.splitlines() if ": " in line)


def test_commands_refuse_an_unmigrated_database(cli):
    code, out, err = cli("account", "show", "bob")
    assert code == 1 and out == ""
    assert err.count("\n") == 1 and "run `smpp-bridge db upgrade`" in err  # or: no database at


def test_the_admin_story(cli, database_url):
    assert cli("db", "upgrade")[0] == 0
    code, out, err = cli(
        "account",
        "create",
        "bob",
        "--password",
        "pw1",
        "--balance",
        "12.5",
        "--sender-id",
        "BOB",
        "--allow-sender-id",
        "NEWS",
    )
    assert code == 0, err
    shown = fields(out)
    assert (
        shown["username"],
        shown["balance"],
        shown["sender id"],
        shown["allowed sender ids"],
    ) == ("bob", "12.50 KES", "BOB", "NEWS")
    code, out, _ = cli("account", "topup", "bob", "7.5")
    assert code == 0 and fields(out)["balance"] == "20.00 KES"
    code, out, err = cli("key", "create", "bob", "--expiry-days", "7")
    assert code == 0 and "shown only this once" in err
    key = fields(out)["api key"]
    code, out, _ = cli("account", "show", "bob")
    assert code == 0 and fields(out)["balance"] == "20.00 KES"
    assert key not in out and f"sb_{fields(out)['key'][3:11]}" == key[:11]
    db = Database(database_url)  # the key really works and the password really is pw1
    try:
        svc = BridgeService(Config(database_url=database_url), db, None, run_sweeper=False)
        assert svc.verify_key(key).account_id == svc.authenticate("bob", "pw1").id
        assert svc.audit() == []
    finally:
        db.dispose()


@pytest.mark.parametrize(
    "argv, message",
    [
        (("account", "topup", "nobody", "5"), "No account named 'nobody'"),
        (
            ("account", "topup", "bob", "abc"),
            "amount must be a number like 100 or 99.50, got 'abc'",
        ),
        (("account", "topup", "bob", "-5"), "amount must be greater than zero, got '-5'"),
        (("account", "topup", "bob", "0"), "amount must be greater than zero, got '0'"),
        (("account", "create", "bob", "--password", "x"), "An account named 'bob' already exists"),
        (
            ("account", "create", "eve", "--password", "x", "--balance", "-1"),
            "balance must be zero or more, got '-1'",
        ),
        (("account", "create", "eve", "--password", ""), "the password must not be empty"),
        (
            ("account", "create", "eve", "--password", "x", "--rate-limit", "0"),
            "rate_limit_per_minute must be at least 1, got 0",
        ),
        (
            ("account", "create", "eve", "--password", "x", "--rate-limit", "-5"),
            "rate_limit_per_minute must be at least 1, got -5",
        ),
        (("account", "create", "e ve", "--password", "x"), "username must be 1 to 64 characters"),
        (("account", "show", "nobody"), "No account named 'nobody'"),
        (("key", "create", "nobody"), "No account named 'nobody'"),
        (("key", "create", "bob", "--expiry-days", "400"), "expiry_days must be between 1 and 365"),
        (("key", "create", "bob", "--expiry-days", "x"), "invalid int value: 'x'"),
        (("account", "frobnicate"), "invalid choice: 'frobnicate'"),
    ],
)
def test_bad_arguments_give_one_line_and_a_non_zero_exit(cli, argv, message):
    assert cli("db", "upgrade")[0] == 0
    assert cli("account", "create", "bob", "--password", "pw")[0] == 0
    code, out, err = cli(*argv)
    assert code not in (0, None) and out == ""
    assert err.count("\n") == 1 and message in err and "Traceback" not in err


def test_the_installed_script_with_an_unreachable_database(tmp_path):
    script = Path(sys.executable).with_name("smpp-bridge")
    if not script.exists():
        pytest.skip("smpp-bridge is not installed in this environment (pip install -e .)")
    env = dict(os.environ, DATABASE_URL="postgresql+psycopg://u:secret@127.0.0.1:1/x")
    env.pop("BRIDGE_CONFIG", None)
    proc = subprocess.run(
        [str(script), "account", "show", "bob"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 1 and proc.stdout == ""
    assert proc.stderr.startswith("smpp-bridge account: error: cannot use the database")
    assert proc.stderr.count("\n") == 1 and "secret" not in proc.stderr
