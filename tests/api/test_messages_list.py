"""GET /api/v2/sms (listing and search), GET /api/v2/batches/{id} and the send answer's
status_url, through the real app on SQLite and PostgreSQL with a real Redis."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import update

from bridge.delivery.settlement import Failed, Settlement
from bridge.redis import keys as redis_keys
from bridge.redis.outbox import decode_entry
from bridge.storage.models import messages
from tests.api.helpers import assert_common_headers, assert_rate_headers, sqlite_only

LIST = "/api/v2/sms"
SEND = "/api/v2/sms/send"


@pytest.fixture
def api_config(bridge_config):
    return bridge_config.replace(rate_limit_per_minute=100_000)  # these tests ask a lot


def number(n: int) -> str:
    return f"070{n:07d}"


def e164(n: int) -> str:
    return f"+25470{n:07d}"


def send(client, headers, numbers, **params):
    r = client.simulate_post(
        SEND,
        headers=headers,
        json={"numbers": ",".join(number(n) for n in numbers), "message_body": "hi", **params},
    )
    assert r.status_code == 200, r.text
    return r.json


def listing(client, headers, **params):
    r = client.simulate_get(LIST, headers=headers, params=params)
    assert r.status_code == 200, r.text
    return r.json


def ids(page) -> list[str]:
    return [m["message_id"] for m in page["messages"]]


def walk(client, headers, **params) -> list[str]:
    """Every id of a listing, following next_cursor to the end (bounded)."""
    out, cursor = [], None
    for _ in range(1000):
        page = listing(client, headers, **params, **({"cursor": cursor} if cursor else {}))
        out += ids(page)
        cursor = page["next_cursor"]
        if cursor is None:
            return out
    raise AssertionError("the walk did not end")


def test_newest_first_each_entry_as_the_message_answer_without_events(
    client, key_headers, bridge_service
):
    first = send(client, key_headers, [1, 2], reference="r-1")
    second = send(client, key_headers, [3])
    bridge_service.flusher.flush()  # `queued` now, not between the list and the GETs
    r = client.simulate_get(LIST, headers=key_headers)
    assert r.status_code == 200
    assert_common_headers(r)
    assert_rate_headers(r)
    sent = [m["message_id"] for m in first["messages"] + second["messages"]]
    assert ids(r.json) == sorted(sent, reverse=True)
    assert r.json["next_cursor"] is None
    for entry in r.json["messages"]:
        one = client.simulate_get(f"/api/v2/sms/{entry['message_id']}", headers=key_headers).json
        del one["events"], one["webhook_attempts"]  # the detail's own (one Redis read each)
        assert entry == one
    from api.resources.listing import MessageListAnswer

    assert MessageListAnswer().validate(r.json) == {}


def test_every_field_of_settled_messages_is_listed_as_the_message_answer_shows_it(
    client, key_headers, bridge_service, db
):
    """Rows with every column set (times with microseconds, SMSC ids, error codes, a price of
    more than two decimals, a duplicate, a schedule, a reference outside ASCII) are listed
    exactly as GET /api/v2/sms/{id} answers them, on both databases."""
    sent = send(client, key_headers, [1, 2, 3], reference="réf-ü 1")
    bridge_service.flusher.flush()
    mids = [m["message_id"] for m in sent["messages"]]
    at = datetime(2030, 3, 17, 17, 48, 0, 123987, tzinfo=UTC)
    lives = [
        {
            "state": "delivered",
            "queued_at": at + timedelta(microseconds=999),
            "submitted_at": at + timedelta(seconds=1, microseconds=500_500),
            "done_at": at + timedelta(minutes=1),
            "smsc_message_ids": '["0a1b2c", "0A1B2D"]',
            "possible_duplicate": True,
            "price": Decimal("0.1250"),
        },
        {
            "state": "rejected",
            "queued_at": at,
            "done_at": at + timedelta(seconds=2),
            "error_code": "ESME_RINVDSTADR",
            "price": Decimal("12.3456"),
        },
        {"state": "scheduled", "send_at": at + timedelta(days=3), "queued_at": None},
    ]
    with db.begin() as conn:
        for mid, values in zip(mids, lives, strict=True):
            conn.execute(update(messages).where(messages.c.id == mid).values(**values))
    page = listing(client, key_headers, reference="réf-ü 1")
    assert ids(page) == sorted(mids, reverse=True)
    entries = {entry["message_id"]: entry for entry in page["messages"]}
    for mid in mids:
        one = client.simulate_get(f"/api/v2/sms/{mid}", headers=key_headers).json
        del one["events"], one["webhook_attempts"]
        assert entries[mid] == one
    first = entries[mids[0]]
    assert first["queued_at"] == "2030-03-17T17:48:00.124Z"  # ms, cut (not rounded)
    assert first["submitted_at"] == "2030-03-17T17:48:01.624Z"
    assert first["smsc_message_ids"] == ["0a1b2c", "0A1B2D"]
    assert first["possible_duplicate"] is True
    assert first["cost"] == "0.125"
    assert entries[mids[1]]["cost"] == "12.3456"
    assert entries[mids[2]]["send_at"] == "2030-03-20T17:48:00.123Z"
    assert first["reference"] == "réf-ü 1"


def test_every_filter(client, key_headers, bridge_service, redis_client, db):
    a = send(client, key_headers, [1, 2, 3], reference="order-1")
    b = send(client, key_headers, [1, 4], reference="order-2")
    c = send(client, key_headers, [5])
    a_ids = [m["message_id"] for m in a["messages"]]
    b_ids = [m["message_id"] for m in b["messages"]]
    c_ids = [m["message_id"] for m in c["messages"]]
    everything = sorted(a_ids + b_ids + c_ids, reverse=True)

    assert walk(client, key_headers, batch_id=a["batch_id"]) == sorted(a_ids, reverse=True)
    assert walk(client, key_headers, batch_id=b["batch_id"].lower()) == sorted(b_ids, reverse=True)
    assert walk(client, key_headers, reference="order-2") == sorted(b_ids, reverse=True)
    assert walk(client, key_headers, reference="order-") == []  # exact match only
    # the number in any form the send takes
    to_1 = sorted([a_ids[0], b_ids[0]], reverse=True)
    assert walk(client, key_headers, number=number(1)) == to_1
    assert walk(client, key_headers, number=e164(1)) == to_1
    assert walk(client, key_headers, number="254700000001") == to_1
    assert walk(client, key_headers, number=e164(1), batch_id=b["batch_id"]) == [b_ids[0]]

    bridge_service.flusher.flush()  # every batch queued
    settlement = Settlement(bridge_service.db, redis_client)
    entries = [decode_entry(f) for _id, f in redis_client.xrange(redis_keys.OUTBOUND_STREAM)]
    settlement.claim(entries, recovered=False, connection="conn-a")
    settlement.apply([Failed(a_ids[1], "rejected", "ESME_RINVDSTADR", 1_900_000_000.0)])
    assert walk(client, key_headers, state="rejected") == [a_ids[1]]
    assert walk(client, key_headers, state="delivered") == []
    assert len(walk(client, key_headers, state="queued")) == len(everything) - 1

    # since (inclusive) and until (exclusive) on the acceptance time, with any offset
    base = datetime(2030, 3, 17, 12, 0, tzinfo=UTC)
    with db.begin() as conn:
        for i, batch in enumerate((a_ids, b_ids, c_ids)):
            conn.execute(
                update(messages)
                .where(messages.c.id.in_(batch))
                .values(created_at=base + timedelta(hours=i))
            )
    assert walk(client, key_headers, since="2030-03-17T13:00:00Z") == sorted(
        b_ids + c_ids, reverse=True
    )
    assert walk(client, key_headers, until="2030-03-17T16:00:00+03:00") == sorted(
        a_ids, reverse=True
    )
    assert walk(
        client, key_headers, since="2030-03-17T12:30:00Z", until="2030-03-17T14:00:00.000Z"
    ) == sorted(b_ids, reverse=True)
    assert walk(client, key_headers) == everything


def test_pages_have_no_duplicates_or_gaps_while_messages_arrive(client, key_headers):
    present = []
    for start in range(0, 40, 8):  # 5 batches of 8, several sharing a millisecond
        present += [
            m["message_id"] for m in send(client, key_headers, range(start, start + 8))["messages"]
        ]
    walked, cursor, pages = [], None, 0
    while True:
        params = {"limit": 7, **({"cursor": cursor} if cursor else {})}
        page = listing(client, key_headers, **params)
        pages += 1
        assert len(page["messages"]) <= 7
        walked += ids(page)
        send(client, key_headers, [100 + pages, 200 + pages])  # new messages arrive mid-walk
        cursor = page["next_cursor"]
        if cursor is None:
            break
        assert pages < 20
    assert pages == 6  # 40 messages, 7 a page: the last page is not an empty one
    assert walked == sorted(present, reverse=True)  # each exactly once, in order
    # a fresh walk from the top sees the arrivals first, then the same messages
    fresh = walk(client, key_headers, limit=1000)
    assert len(fresh) == 40 + 2 * pages and fresh[-40:] == walked


def test_a_full_page_of_a_thousand(client, key_headers):
    sent = send(client, key_headers, range(1001))
    page = listing(client, key_headers, limit=1000)
    assert len(page["messages"]) == 1000 and page["next_cursor"]
    rest = listing(client, key_headers, limit="1000", cursor=page["next_cursor"])
    assert len(rest["messages"]) == 1 and rest["next_cursor"] is None
    assert sorted(ids(page) + ids(rest)) == sorted(m["message_id"] for m in sent["messages"])
    assert len(listing(client, key_headers)["messages"]) == 100  # the default


def _cursor(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).rstrip(b"=").decode()


GOOD_ID = "01HV5Y0Z8X7W6V5T4S3R2Q1P0N"


@sqlite_only
@pytest.mark.parametrize(
    "params, field",
    [
        ({"cursor": "not a cursor"}, "cursor"),
        ({"cursor": "%%%"}, "cursor"),
        ({"cursor": "AAAA"}, "cursor"),
        ({"cursor": _cursor(f"2.1700000000000000.{GOOD_ID}")}, "cursor"),  # another version
        ({"cursor": _cursor("1.1700000000000000.not-an-id")}, "cursor"),
        ({"cursor": _cursor(f"1.-5.{GOOD_ID}")}, "cursor"),
        ({"cursor": _cursor(f"1.99999999999999999999.{GOOD_ID}")}, "cursor"),
        ({"cursor": "x" * 121}, "cursor"),
        ({"limit": "0"}, "limit"),
        ({"limit": "1001"}, "limit"),
        ({"limit": "-1"}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"limit": "1.5"}, "limit"),
        ({"since": "yesterday"}, "since"),
        ({"since": "2030-03-17T17:48:00"}, "since"),  # no offset: which zone?
        ({"since": "2030-03-17"}, "since"),
        ({"since": "2030-02-30T00:00:00Z"}, "since"),
        ({"until": "2030-03-17T17:48:00+25:00"}, "until"),
        ({"since": "2030-03-17T18:00:00Z", "until": "2030-03-17T18:00:00Z"}, "until"),
        ({"state": "lost"}, "state"),
        ({"number": "12345"}, "number"),
        ({"batch_id": "not an id!"}, "batch_id"),
        ({"batch_id": "X" * 27}, "batch_id"),
        ({"reference": "r" * 129}, "reference"),
    ],
)
def test_bad_parameters_are_400_naming_the_field(client, key_headers, params, field):
    r = client.simulate_get(LIST, headers=key_headers, params=params)
    assert r.status_code == 400, r.text
    assert r.json["field"] == field and field in r.json["error"], r.json
    assert_rate_headers(r)


@sqlite_only
@pytest.mark.parametrize(
    "path, names",
    [
        (LIST, ("batch_id", "reference", "state", "number", "since", "until", "limit", "cursor")),
        ("/api/v2/inbox", ("number", "to", "keyword", "since", "until", "limit", "cursor")),
        ("/api/v2/optouts", ("limit", "cursor")),
    ],
)
def test_an_empty_parameter_of_a_list_endpoint_is_400_naming_it(client, key_headers, path, names):
    """?reference= filtered on an empty reference (and the inbox ignored an empty filter): a
    client whose variable is unset must learn it, not get every message or none."""
    send(client, key_headers, [1], reference="kept")
    for name in names:
        r = client.simulate_get(path, headers=key_headers, query_string=f"{name}=")
        assert r.status_code == 400, (name, r.text)
        assert r.json["error"] == f"{name} is empty; give it a value or leave {name} out."
        assert r.json["field"] == name
        assert_rate_headers(r)
    assert client.simulate_get(path, headers=key_headers).status_code == 200


@sqlite_only
@pytest.mark.parametrize("field", ["since", "until"])
@pytest.mark.parametrize("path", [LIST, "/api/v2/inbox"])
def test_a_time_outside_utcs_range_is_out_of_range_not_offsetless(client, key_headers, path, field):
    for value, edge in (
        ("0001-01-01T00:00:00+14:00", "before 0001-01-01T00:00:00Z"),
        ("9999-12-31T23:59:59-00:30", "after 9999-12-31T23:59:59Z"),
    ):
        r = client.simulate_get(path, headers=key_headers, params={field: value})
        assert (r.status_code, r.json["field"]) == (400, field), r.text
        assert r.json["error"].startswith(f"{field} is out of range: {value} is {edge} in UTC")


@sqlite_only
def test_json_body_limit_and_bad_types(client, key_headers):
    r = client.simulate_get(LIST, headers=key_headers, json={"limit": 5000})
    assert (r.status_code, r.json["field"]) == (400, "limit")
    r = client.simulate_get(LIST, headers=key_headers, json={"limit": True})
    assert (r.status_code, r.json["field"]) == (400, "limit")
    r = client.simulate_get(LIST, headers=key_headers, json={"since": 1700000000})
    assert (r.status_code, r.json["field"]) == (400, "since")
    assert client.simulate_get(LIST, headers=key_headers, json={"limit": 3}).status_code == 200


def test_another_accounts_messages_and_batches_stay_hidden(client, key_headers, bridge_service):
    mine = send(client, key_headers, [1, 2], reference="shared")
    other = bridge_service.create_account("other", "other-password-1", balance=Decimal("50.00"))
    other_headers = {"X-API-Key": bridge_service.generate_key(other.id, expiry_days=30).api_key}
    theirs = send(client, other_headers, [1, 3], reference="shared")

    mine_ids = {m["message_id"] for m in mine["messages"]}
    theirs_ids = {m["message_id"] for m in theirs["messages"]}
    assert set(walk(client, key_headers)) == mine_ids
    assert set(walk(client, other_headers)) == theirs_ids
    assert set(walk(client, key_headers, reference="shared")) == mine_ids
    assert set(walk(client, key_headers, number=number(1))) & theirs_ids == set()
    assert walk(client, key_headers, batch_id=theirs["batch_id"]) == []
    for path in (
        f"/api/v2/batches/{theirs['batch_id']}",
        f"/api/v2/sms/{theirs['messages'][0]['message_id']}",
    ):
        r = client.simulate_get(path, headers=key_headers)
        assert r.status_code == 404, path
        assert r.json["error"] in ("Batch not found.", "Message not found.")
    # a cursor names a position, not an account: another account's cursor shows only your own
    page = listing(client, other_headers, limit=1)
    assert set(walk(client, key_headers, cursor=page["next_cursor"])) <= mine_ids


def test_batch_totals_states_and_refunds(client, key_headers, bridge_service, redis_client):
    # no background flusher: the batch stays `accepted` until flush() below marks it `queued`
    # (its thread, every 150 ms, marked it between the send and the first GET under load)
    bridge_service.flusher.stop()
    long_text = "x" * 200  # two parts each
    r = client.simulate_post(
        SEND,
        headers=key_headers,
        json={"numbers": "0700000001,0700000002,0700000003", "message_body": long_text},
    )
    sent = r.json
    batch = f"/api/v2/batches/{sent['batch_id']}"
    answer = client.simulate_get(batch, headers=key_headers)
    assert answer.status_code == 200
    assert_common_headers(answer)
    assert_rate_headers(answer)
    body = answer.json
    from api.resources.batches import BatchAnswer

    assert BatchAnswer().validate(body) == {}
    assert body["batch_id"] == sent["batch_id"]
    assert (body["count"], body["parts"], body["cost"]) == (3, 6, sent["cost"])
    assert (body["refunded"], body["currency"]) == ("0.00", sent["currency"])
    assert body["states"]["accepted"] == 3 and sum(body["states"].values()) == 3
    assert set(body["states"]) >= {"accepted", "queued", "submitted", "delivered", "failed"}

    bridge_service.flusher.flush()
    settlement = Settlement(bridge_service.db, redis_client)
    entries = [decode_entry(f) for _id, f in redis_client.xrange(redis_keys.OUTBOUND_STREAM)]
    settlement.claim(entries, recovered=False, connection="conn-a")
    failed = sent["messages"][2]
    settlement.apply([Failed(failed["message_id"], "failed", "no route", 1_900_000_000.0)])
    body = client.simulate_get(batch, headers=key_headers).json
    assert body["refunded"] == failed["cost"]
    assert (body["states"]["failed"], body["states"]["queued"]) == (1, 2)
    assert body["cost"] == sent["cost"]  # what was charged; cost - refunded is what it cost


@sqlite_only
def test_unknown_and_malformed_batch_ids_are_404(client, key_headers):
    for ident in ("0" * 26, "not-an-id!", "x" * 40):
        r = client.simulate_get(f"/api/v2/batches/{ident}", headers=key_headers)
        assert (r.status_code, r.json) == (404, {"error": "Batch not found."}), ident
        assert_rate_headers(r)


@sqlite_only
def test_the_key_is_required_and_counted(client, key_headers, demo_account):
    for path in (LIST, "/api/v2/batches/" + GOOD_ID):
        r = client.simulate_get(path)
        assert r.status_code == 401 and r.json["error"] == "API key is required"
        assert_rate_headers(r)
    first = client.simulate_get(LIST, headers=key_headers)
    again = client.simulate_get(LIST, params={"api_key": demo_account.api_key})
    assert int(again.headers["x-ratelimit-remaining"]) == (
        int(first.headers["x-ratelimit-remaining"]) - 1
    )


def test_each_sent_message_carries_its_status_url(client, key_headers, demo_account):
    body = send(client, key_headers, [1, 2])
    for m in body["messages"]:
        assert m["status_url"] == f"/api/v2/sms/{m['message_id']}"
        r = client.simulate_get(m["status_url"], headers=key_headers)
        assert r.status_code == 200 and r.json["message_id"] == m["message_id"]
    headers = {**key_headers, "Idempotency-Key": "k-1"}
    params = {"numbers": number(3), "message_body": "once"}
    first = client.simulate_post(SEND, headers=headers, json=params).json
    again = client.simulate_post(SEND, headers=headers, json=params)
    assert again.headers["idempotent-replayed"] == "true" and again.json == first
    assert first["messages"][0]["status_url"].endswith(first["messages"][0]["message_id"])
    legacy = client.simulate_post(
        "/v1/sms/send",
        json={
            "numbers": number(4),
            "message_body": "hi",
            "username": demo_account.username,
            "password": demo_account.password,
        },
    ).json
    assert legacy["messages"][0]["status_url"] == (
        f"/api/v2/sms/{legacy['messages'][0]['message_id']}"
    )


@sqlite_only
def test_the_operations_are_in_the_openapi_document(client):
    from openapi_spec_validator import validate

    doc = client.simulate_get("/api/v2/openapi.json").json
    validate(doc)
    op = doc["paths"]["/api/v2/sms"]["get"]
    assert {"200", "400", "401", "429", "503"} == set(op["responses"])
    params = {p["name"]: p for p in op["parameters"]}
    assert set(params) == {
        "batch_id",
        "reference",
        "state",
        "number",
        "since",
        "until",
        "limit",
        "cursor",
    }
    assert all(p["in"] == "query" and p["description"] for p in params.values())
    assert (params["limit"]["schema"]["minimum"], params["limit"]["schema"]["maximum"]) == (1, 1000)
    assert params["limit"]["schema"]["default"] == 100
    assert "delivered" in params["state"]["schema"]["enum"]
    assert params["since"]["schema"]["format"] == "date-time"
    assert "x-ratelimit-remaining" in op["responses"]["200"]["headers"]
    assert op["security"] == [{"ApiKeyHeader": []}, {"ApiKeyQuery": []}]
    schemas = doc["components"]["schemas"]
    assert "events" not in schemas["MessageSummary"]["properties"]
    assert set(schemas["MessageList"]["properties"]) == {"messages", "next_cursor"}
    batch = doc["paths"]["/api/v2/batches/{batch_id}"]["get"]
    assert {"200", "401", "404", "429", "503"} == set(batch["responses"])
    assert set(schemas["Batch"]["properties"]) >= {
        "batch_id",
        "count",
        "parts",
        "cost",
        "refunded",
        "currency",
        "states",
    }
    assert "status_url" in schemas["Message"]["properties"]
