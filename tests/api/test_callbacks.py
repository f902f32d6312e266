"""callback_url and callback_events at send time, over HTTP on SQLite and PostgreSQL: internal
targets are refused with 400 naming callback_url (nothing charged, nothing queued) unless the
operator's webhook_allow_networks names them; the choice of events is stored per message."""

from __future__ import annotations

from decimal import Decimal

import pytest
from falcon import testing
from sqlalchemy import func, select

from api.app import create_app
from bridge.service import BridgeService
from bridge.storage.models import messages

V2 = "/api/v2/sms/send"
INTERNAL = [
    ("http://127.0.0.1:8080/hook", "loopback"),
    ("http://10.1.2.3/hook", "private"),
    ("http://169.254.169.254/latest/meta-data/", "link-local"),
    ("http://localhost:9000/hook", "loopback"),  # a name resolving to 127.0.0.1
    ("http://[::1]/hook", "loopback"),
]


def _stored(db) -> list[tuple[str | None, str | None]]:
    with db.connect() as conn:
        return [
            (r.callback_url, r.callback_events)
            for r in conn.execute(select(messages.c.callback_url, messages.c.callback_events))
        ]


def _count(db) -> int:
    with db.connect() as conn:
        return conn.execute(select(func.count()).select_from(messages)).scalar_one()


@pytest.mark.parametrize("url,reason", INTERNAL)
def test_internal_callback_targets_are_refused_and_nothing_is_charged(
    client, key_headers, bridge_service, demo_account, db, url, reason
):
    for send in (client.simulate_post, client.simulate_get):
        params = {"numbers": "0701234567", "message_body": "hi", "callback_url": url}
        r = send(V2, headers=key_headers, params=params)
        assert r.status_code == 400, r.text
        assert r.json["field"] == "callback_url"
        assert reason in r.json["error"] and "webhook_allow_networks" in r.json["error"]
    assert _count(db) == 0
    assert bridge_service.balance(demo_account.id).balance == Decimal("1000.00")


@pytest.mark.parametrize("url", ["ftp://example.com/x", "javascript:alert(1)", "http:///x"])
def test_callback_url_must_be_http_or_https(client, key_headers, db, url):
    r = client.simulate_post(
        V2,
        headers=key_headers,
        json={"numbers": "0701234567", "message_body": "hi", "callback_url": url},
    )
    assert r.status_code == 400 and r.json["field"] == "callback_url", r.text
    assert _count(db) == 0


def test_allow_listed_networks_are_accepted(bridge_config, db, redis_client, demo_account):
    config = bridge_config.replace(
        webhook_allow_networks=("127.0.0.0/8", "10.0.0.0/8", "169.254.169.254/32", "::1/128")
    )
    service = BridgeService(config, db, redis_client, run_sweeper=False)
    service.start()
    try:
        client = testing.TestClient(create_app(config, service, redis_client))
        for url, _ in INTERNAL:
            r = client.simulate_post(
                V2,
                headers={"X-API-Key": demo_account.api_key},
                json={"numbers": "0701234567", "message_body": "hi", "callback_url": url},
            )
            assert r.status_code == 200, (url, r.text)
    finally:
        service.stop()
    # key=str: a stored None (no callback_url) then differs instead of failing to sort
    assert sorted((u for u, _ in _stored(db)), key=str) == sorted(u for u, _ in INTERNAL)


def test_callback_events_is_stored_with_each_message(client, key_headers, db):
    url = "https://hooks.example.com/sms"  # does not resolve here (no DNS): accepted, see docs
    for events in ("all", "final", None):
        params = {"numbers": "0701234567", "message_body": "hi", "callback_url": url}
        if events:
            params["callback_events"] = events
        r = client.simulate_post(V2, headers=key_headers, json=params)
        assert r.status_code == 200, r.text
    r = client.simulate_post(
        V2, headers=key_headers, json={"numbers": "0701234567", "message_body": "no callback"}
    )
    assert r.status_code == 200
    assert sorted(_stored(db), key=str) == sorted(
        [(url, "all"), (url, "final"), (url, "final"), (None, None)], key=str
    )


@pytest.mark.parametrize("value", ["every", "FINAL", "1"])
def test_callback_events_must_be_final_or_all(client, key_headers, db, value):
    r = client.simulate_get(
        V2,
        headers=key_headers,
        params={"numbers": "0701234567", "message_body": "hi", "callback_events": value},
    )
    assert r.status_code == 400
    assert r.json == {"error": "callback_events must be final or all.", "field": "callback_events"}
    assert _count(db) == 0


def test_the_account_default_applies(bridge_service, db):
    info = bridge_service.create_account(
        "hooks",
        "pw",
        balance=Decimal("10"),
        callback_url="https://hooks.example.com/a",
        callback_events="all",
    )
    assert info.callback_events == "all"
    bridge_service.send(info.id, "0701234567", "hi")
    assert _stored(db) == [("https://hooks.example.com/a", "all")]


def test_an_account_default_callback_url_follows_the_same_rules(bridge_service):
    from bridge.errors import InvalidInput

    with pytest.raises(InvalidInput) as err:
        bridge_service.create_account("inward", "pw", callback_url="http://10.0.0.5/x")
    assert err.value.extra["field"] == "callback_url" and "private" in err.value.message
