"""`smpp-bridge account show|rotate-webhook-secret`, `webhooks dead` and the status line."""

from __future__ import annotations

from typing import Any

import pytest
from standardwebhooks import Webhook

from bridge.cli import main
from bridge.redis import keys
from bridge.storage import webhook_secrets
from bridge.storage.db import Database
from bridge.webhooks.events import encode_event
from bridge.webhooks.secret_cache import SecretCache


@pytest.fixture
def cli(tmp_path, monkeypatch, capsys, redis_server):
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'bridge.db'}")
    monkeypatch.setenv("REDIS_URL", redis_server.url)
    monkeypatch.delenv("BRIDGE_CONFIG", raising=False)

    def run(*argv):
        code: Any
        try:
            code = main(list(argv))
        except SystemExit as exc:
            code = exc.code
        out, err = capsys.readouterr()
        return code, out, err

    assert run("db", "upgrade")[0] == 0
    return run


def _fields(out):
    return dict(line.split(": ", 1) for line in out.splitlines() if ": " in line)


def test_show_prints_the_secret_and_rotation_keeps_the_old_one_for_the_overlap(cli):
    code, out, err = cli("account", "create", "bob", "--password", "pw1")
    assert code == 0, err
    secret = _fields(out)["webhook secret"]
    assert secret.startswith("whsec_") and Webhook(secret)  # the package takes it
    assert _fields(cli("account", "show", "bob")[1])["webhook secret"] == secret

    code, out, err = cli("account", "rotate-webhook-secret", "bob")
    assert code == 0, err
    shown = _fields(out)
    assert shown["webhook secret"] != secret and shown["webhook secret"].startswith("whsec_")
    assert shown["previous webhook secret"].startswith(secret + " (also signs until ")
    assert _fields(cli("account", "show", "bob")[1])["webhook secret"] == shown["webhook secret"]

    code, out, err = cli("account", "rotate-webhook-secret", "nobody")
    assert code == 1 and err.count("\n") == 1


def test_an_account_older_than_the_secrets_gets_one_lazily(cli, tmp_path):
    cli("account", "create", "old", "--password", "pw1")
    db = Database(f"sqlite:///{tmp_path / 'bridge.db'}")
    try:
        with db.begin() as conn:
            conn.execute(webhook_secrets.accounts.update().values(webhook_secret=None))
        secret = SecretCache(db).get(1).current  # what the sender does
        assert secret.startswith("whsec_")
        assert _fields(cli("account", "show", "old")[1])["webhook secret"] == secret
    finally:
        db.dispose()


def test_dead_letters_are_listed_and_counted_in_status(cli, redis_server):
    client = redis_server.client()
    try:
        code, out, _ = cli("webhooks", "dead")
        assert code == 0 and "(0 shown of 0 dead-lettered webhook events)" in out
        for i in range(3):
            fields = encode_event(f"evt_{i}", 1, "https://x.example/h", "message", "{}")
            client.xadd(keys.webhooks_dead_key(), {**fields, "reason": "HTTP 410", "dead_at": "0"})
        client.zadd(keys.webhooks_retry_key(), {"{}": 1})
    finally:
        client.close()
    code, out, _ = cli("webhooks", "dead", "--limit", "2")
    assert code == 0
    lines = out.splitlines()
    assert "evt_2" in lines[0] and "HTTP 410" in lines[0] and "evt_1" in lines[1]
    assert lines[-1] == "(2 shown of 3 dead-lettered webhook events)"
    assert cli("webhooks", "dead", "--limit", "0")[0] == 2
    code, out, _ = cli("status")
    assert "webhooks: 0 on the stream (0 being sent), 1 waiting to retry, 3 dead-lettered" in out
