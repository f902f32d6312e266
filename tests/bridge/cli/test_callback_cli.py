"""`smpp-bridge account set-callback`: an account's default callback URL and events change after
create, under create's rules (SSRF, final/all), shown by `account show`, used by later sends."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import select

from bridge.storage.db import Database, upgrade
from bridge.storage.models import accounts, messages


@pytest.fixture(autouse=True)
def _acme(cli, database_url):
    upgrade(database_url)
    assert cli("account", "create", "acme", "--password", "acme-pass-123")[0] == 0


def _stored(database_url: str) -> tuple[str | None, str | None]:
    db = Database(database_url)
    try:
        with db.connect() as conn:
            row = conn.execute(select(accounts.c.callback_url, accounts.c.callback_events)).one()
    finally:
        db.dispose()
    return row.callback_url, row.callback_events


def _shown(cli) -> list[str]:
    out = cli("account", "show", "acme")[1]
    return [line for line in out.splitlines() if line.startswith("callback ")]


def test_set_show_and_clear_the_default_callback(cli, database_url):
    assert _shown(cli) == ["callback url: -", "callback events: final"]
    code, out, _ = cli(
        "account", "set-callback", "acme", "--url", "https://1.1.1.1/dlr", "--events", "all"
    )
    assert code == 0
    assert out.splitlines() == [
        "username: acme",
        "callback url: https://1.1.1.1/dlr",
        "callback events: all",
    ]
    assert _stored(database_url) == ("https://1.1.1.1/dlr", "all")
    assert _shown(cli) == ["callback url: https://1.1.1.1/dlr", "callback events: all"]
    assert cli("account", "set-callback", "acme", "--events", "final")[0] == 0  # URL kept
    assert _stored(database_url) == ("https://1.1.1.1/dlr", "final")
    assert cli("account", "set-callback", "acme", "--url", "-", "--events", "-")[0] == 0
    assert _stored(database_url) == (None, None)
    assert _shown(cli) == ["callback url: -", "callback events: final"]


@pytest.mark.parametrize(
    "url,reason",
    [
        ("http://169.254.169.254/latest/meta-data/", "link-local"),
        ("http://10.1.2.3/hook", "private"),
        ("http://127.0.0.1:9000/hook", "loopback"),
    ],
)
def test_an_internal_url_is_refused_as_at_create(cli, database_url, monkeypatch, url, reason):
    assert cli("account", "set-callback", "acme", "--url", "https://1.1.1.1/dlr")[0] == 0
    code, out, err = cli("account", "set-callback", "acme", "--url", url, "--events", "all")
    assert code == 1 and out == ""
    assert "callback_url host" in err and reason in err and "webhook_allow_networks" in err
    assert create_refusal(cli, url) == err  # the same sentence as account create
    assert _stored(database_url) == ("https://1.1.1.1/dlr", None)  # nothing changed
    monkeypatch.setenv("BRIDGE_WEBHOOK_ALLOW_NETWORKS", "0.0.0.0/0")  # the operator allows it
    assert cli("account", "set-callback", "acme", "--url", url)[0] == 0
    assert _stored(database_url) == (url, None)


def create_refusal(cli, url: str) -> str:
    code, _, err = cli("account", "create", "other", "--password", "pw-1", "--callback-url", url)
    assert code == 1
    return err


def test_bad_input_is_refused(cli, database_url):
    assert cli("account", "set-callback", "acme")[0] == 1  # nothing to change
    assert cli("account", "set-callback", "acme", "--url", "ftp://example.com/x")[0] == 1
    assert cli("account", "set-callback", "acme", "--events", "some")[0] == 2  # argparse
    assert cli("account", "set-callback", "nobody", "--events", "all")[0] == 1
    assert _stored(database_url) == (None, None)


def test_later_sends_use_the_new_default(cli, bridge_service, db):
    info = bridge_service.account_by_username("acme")
    bridge_service.topup(info.id, Decimal("10.00"))
    assert cli("account", "set-callback", "acme", "--url", "https://1.1.1.1/dlr")[0] == 0
    bridge_service.send(info.id, ["0701234567"], "hi")
    with db.connect() as conn:
        stored = conn.execute(select(messages.c.callback_url)).scalar_one()
    assert stored == "https://1.1.1.1/dlr"
