"""GET /api/v2/inbox and /api/v2/optouts over the real app, service and databases: each
account sees only its own inbound messages and opt-outs; an opt-out refuses sends per number,
without charge; every endpoint is in the OpenAPI document and rate limited like /api/v2."""

from __future__ import annotations

from decimal import Decimal
from itertools import count

import pytest

from bridge.inbound.store import InboundStore
from smpp.session.mo import MoMessage
from tests.api.helpers import assert_rate_headers

ROUTES = (
    {"number": "22141", "account": "demo"},
    {"number": "22141", "keyword": "BETA", "account": "beta"},
)


@pytest.fixture
def beta(bridge_service):
    info = bridge_service.create_account("beta", "beta-password-1", balance=Decimal("100.00"))
    key = bridge_service.generate_key(info.id, expiry_days=30)
    return info.id, {"X-API-Key": key.api_key}


@pytest.fixture
def deliver(bridge_config, bridge_service, demo_account, beta):
    """deliver(source, text, dest="22141") stores an MO as the worker does; its row."""
    config = bridge_config.replace(inbound=ROUTES)
    clock = count(1_800_000_000)
    store = InboundStore(config, bridge_service.db, clock=lambda: float(next(clock)))

    def deliver(source: str, text: str, dest: str = "22141"):
        return store.store("sim", MoMessage(source, dest, text, 1, 0))

    return deliver


def test_an_account_lists_and_reads_only_its_own_inbox(client, key_headers, beta, deliver):
    _, beta_headers = beta
    mine = [deliver("254701000001", f"hello {i}") for i in range(3)]
    theirs = deliver("254701000002", "beta wants in")
    deliver("254701000003", "nobody routes this", dest="99999")
    first = client.simulate_get("/api/v2/inbox", headers=key_headers, params={"limit": 2})
    assert first.status_code == 200, first.json
    assert_rate_headers(first)
    assert [m["text"] for m in first.json["messages"]] == ["hello 2", "hello 1"]
    assert first.json["messages"][0] == {
        "id": mine[2].id,
        "number": "+254701000001",
        "to": "22141",
        "text": "hello 2",
        "keyword": "HELLO",
        "parts": 1,
        "action": None,
        "received_at": mine[2]
        .received_at.isoformat(timespec="milliseconds")
        .replace("+00:00", "Z"),
    }
    rest = client.simulate_get(
        "/api/v2/inbox",
        headers=key_headers,
        params={"limit": 2, "cursor": first.json["next_cursor"]},
    )
    assert [m["id"] for m in rest.json["messages"]] == [mine[0].id]
    assert rest.json["next_cursor"] is None
    theirs_list = client.simulate_get("/api/v2/inbox", headers=beta_headers).json["messages"]
    assert [m["id"] for m in theirs_list] == [theirs.id]
    assert client.simulate_get(f"/api/v2/inbox/{theirs.id}", headers=key_headers).status_code == 404
    own = client.simulate_get(f"/api/v2/inbox/{mine[0].id}", headers=key_headers)
    assert own.status_code == 200 and own.json["text"] == "hello 0"


def test_inbox_filters_combine_and_bad_ones_name_the_parameter(client, key_headers, deliver):
    deliver("254701000001", "Join now")
    deliver("254701000004", "join later")
    deliver("254701000004", "something else")
    get = lambda **params: client.simulate_get("/api/v2/inbox", headers=key_headers, params=params)  # noqa: E731
    assert [m["text"] for m in get(keyword="join").json["messages"]] == ["join later", "Join now"]
    assert len(get(number="0701000004").json["messages"]) == 2
    assert [m["text"] for m in get(number="+254701000004", keyword="JOIN").json["messages"]] == [
        "join later"
    ]
    assert get(to="99999").json["messages"] == []
    assert len(get(to="+22141").json["messages"]) == 3
    assert len(get(since="2027-01-15T08:00:02Z").json["messages"]) == 2
    for params, field in (
        ({"limit": "0"}, "limit"),
        ({"cursor": "nonsense!"}, "cursor"),
        ({"number": "12"}, "number"),
        ({"since": "yesterday"}, "since"),
        ({"to": "abc"}, "to"),  # was 200 with no messages: no inbound number is "abc"
        ({"to": "12"}, "to"),
        ({"to": "1" * 16}, "to"),
    ):
        answer = get(**params)
        assert answer.status_code == 400 and answer.json["field"] == field, answer.json
        assert answer.json["error"].startswith(f"{field} "), answer.json


def test_opt_outs_refuse_sends_per_number_without_charge(client, key_headers, demo_account, beta):
    _, beta_headers = beta
    added = client.simulate_post(
        "/api/v2/optouts", headers=key_headers, json={"number": "0701000005"}
    )
    assert added.status_code == 201 and added.json["number"] == "+254701000005"
    assert added.json["source"] == "api"
    again = client.simulate_post(
        "/api/v2/optouts", headers=key_headers, json={"number": "+254701000005"}
    )
    assert again.status_code == 200
    balance = client.simulate_get("/api/v2/account/balance", headers=key_headers).json["balance"]
    refused = client.simulate_post(
        "/api/v2/sms/send",
        headers=key_headers,
        json={"numbers": "0701000005", "message_body": "promo"},
    )
    assert refused.status_code == 400, refused.json
    assert refused.json["refused"] == [{"number": "+254701000005", "reason": "opted out"}]
    assert (
        client.simulate_get("/api/v2/account/balance", headers=key_headers).json["balance"]
        == balance
    )
    sent = client.simulate_post(
        "/api/v2/sms/send",
        headers=key_headers,
        json={"numbers": "0701000005, 0701000006", "message_body": "promo"},
    )
    assert sent.status_code == 200, sent.json
    assert sent.json["count"] == 1 and sent.json["cost"] == "0.80"
    assert [m["number"] for m in sent.json["messages"]] == ["+254701000006"]
    assert sent.json["refused"] == [{"number": "+254701000005", "reason": "opted out"}]
    # the list is the account's own: beta sees nothing and cannot remove it
    assert client.simulate_get("/api/v2/optouts", headers=beta_headers).json["optouts"] == []
    assert (
        client.simulate_delete("/api/v2/optouts/254701000005", headers=beta_headers).status_code
        == 404
    )
    listed = client.simulate_get("/api/v2/optouts", headers=key_headers).json
    assert [o["number"] for o in listed["optouts"]] == ["+254701000005"]
    removed = client.simulate_delete("/api/v2/optouts/%2B254701000005", headers=key_headers)
    assert removed.status_code == 200 and removed.json == {
        "number": "+254701000005",
        "removed": True,
    }
    assert (
        client.simulate_delete("/api/v2/optouts/254701000005", headers=key_headers).status_code
        == 404
    )
    ok = client.simulate_post(
        "/api/v2/sms/send",
        headers=key_headers,
        json={"numbers": "0701000005", "message_body": "hi"},
    )
    assert ok.status_code == 200 and "refused" not in ok.json


def test_an_inbound_stop_lands_on_the_routed_accounts_list(client, key_headers, beta, deliver):
    _, beta_headers = beta
    deliver("254701000007", "STOP")
    deliver("254701000008", "beta stop")  # the keyword BETA then STOP: out of beta's messages
    [entry] = client.simulate_get("/api/v2/optouts", headers=key_headers).json["optouts"]
    assert (entry["number"], entry["source"]) == ("+254701000007", "sms")
    [theirs] = client.simulate_get("/api/v2/optouts", headers=beta_headers).json["optouts"]
    assert theirs["number"] == "+254701000008"
    [stop] = client.simulate_get(
        "/api/v2/inbox", headers=key_headers, params={"keyword": "stop"}
    ).json["messages"]
    assert stop["action"] == "optout"


def test_paging_opt_outs_and_the_openapi_document(client, key_headers):
    for n in range(5):
        client.simulate_post(
            "/api/v2/optouts", headers=key_headers, json={"number": f"070100001{n}"}
        )
    seen, cursor = [], None
    for _ in range(5):
        params = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        page = client.simulate_get("/api/v2/optouts", headers=key_headers, params=params).json
        seen += [o["number"] for o in page["optouts"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [f"+25470100001{n}" for n in range(5)]
    paths = client.simulate_get("/api/v2/openapi.json").json["paths"]
    assert set(paths["/api/v2/optouts"]) == {"get", "post"}
    assert "delete" in paths["/api/v2/optouts/{number}"]
    assert "get" in paths["/api/v2/inbox"] and "get" in paths["/api/v2/inbox/{inbound_id}"]
    assert client.simulate_get("/api/v2/inbox").status_code == 401


@pytest.mark.parametrize("bad", ["%00", "01ABC%00", "x" * 27, "%C3%A9", "a-b"])
def test_an_id_no_message_can_have_is_not_found_on_every_database(client, key_headers, bad):
    """A NUL byte reached PostgreSQL, which refuses it in text: a 500 instead of the 404."""
    for path in ("/api/v2/inbox/", "/api/v2/sms/", "/api/v2/batches/"):
        got = client.simulate_get(path + bad, headers=key_headers)
        assert got.status_code == 404, (path, bad, got.status_code, got.text)
