"""`smpp-bridge inbox unrouted` and `smpp-bridge account set-inbound-url` (SSRF rules)."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from bridge.config import Config
from bridge.inbound.store import InboundStore
from bridge.storage.db import Database, upgrade
from bridge.storage.models import accounts
from smpp.session.mo import MoMessage


@pytest.fixture(autouse=True)
def _migrated(database_url):
    upgrade(database_url)


def test_unrouted_mo_are_listed_for_operators(cli, database_url):
    db = Database(database_url)
    try:
        store = InboundStore(Config(database_url=database_url), db)
        store.store("sim", MoMessage("254701000009", "40400", "who gets this?", 1, 0))
    finally:
        db.dispose()
    code, out, _ = cli("inbox", "unrouted")
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == "unrouted inbound messages: 1"
    assert "from +254701000009 to 40400: who gets this?" in lines[1]


def test_set_inbound_url_applies_the_webhook_rules(cli, database_url, monkeypatch):
    assert cli("account", "create", "acme", "--password", "acme-pass-123")[0] == 0
    code, _, err = cli("account", "set-inbound-url", "acme", "http://169.254.169.254/latest")
    assert code == 1 and "inbound_url is refused" in err and "link-local" in err
    monkeypatch.setenv("BRIDGE_WEBHOOK_ALLOW_NETWORKS", "127.0.0.0/8")
    code, out, _ = cli("account", "set-inbound-url", "acme", "http://127.0.0.1:8099/mo")
    assert code == 0 and out.strip() == "acme: inbound url http://127.0.0.1:8099/mo"
    db = Database(database_url)
    try:
        with db.connect() as conn:
            url = conn.execute(select(accounts.c.inbound_url)).scalar_one()
    finally:
        db.dispose()
    assert url == "http://127.0.0.1:8099/mo"
    assert "inbound url: http://127.0.0.1:8099/mo\n" in cli("account", "show", "acme")[1]
    assert cli("account", "set-inbound-url", "acme", "-")[0] == 0
    assert "inbound url: -\n" in cli("account", "show", "acme")[1]
