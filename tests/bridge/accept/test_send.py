"""The accept path: validation, pricing, one transaction, the stream, idempotency."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from bridge.config import Config
from bridge.errors import (
    DependencyDown,
    InsufficientBalance,
    InvalidInput,
    InvalidNumbers,
    Unauthorized,
)
from bridge.redis import keys as redis_keys
from bridge.redis import outbox
from bridge.service import BridgeService
from bridge.storage.db import Database
from bridge.storage.models import idempotency_keys, ledger, messages
from tests.bridge.conftest import count_statements
from tests.harness.procs import free_port, wait_until


def stream(redis_client):
    return [
        outbox.decode_entry(fields)
        for _id, fields in redis_client.xrange(redis_keys.OUTBOUND_STREAM)
    ]


def stored(db):
    with db.connect() as conn:
        return conn.execute(select(messages).order_by(messages.c.id)).mappings().all()


def test_a_send_charges_stores_and_enqueues(service, db, account, redis_client, clock):
    result = service.send(
        account.id, "0701234567, 0711 111 111", "Hello there", reference="order-42"
    )
    body = result.body
    assert not result.replayed
    assert body == {
        "status": "accepted",
        "batch_id": body["batch_id"],
        "count": 2,
        "parts": 2,
        "cost": "1.60",
        "currency": "KES",
        "balance": "98.40",
        "reference": "order-42",
        "messages": [
            {
                "number": "+254701234567",
                "message_id": body["messages"][0]["message_id"],
                "status": "accepted",
                "parts": 1,
                "cost": "0.80",
            },
            {
                "number": "+254711111111",
                "message_id": body["messages"][1]["message_id"],
                "status": "accepted",
                "parts": 1,
                "cost": "0.80",
            },
        ],
    }
    rows = stored(db)
    assert [r["id"] for r in rows] == [m["message_id"] for m in body["messages"]]
    first = rows[0]
    assert (
        first["batch_id"],
        first["account_id"],
        first["destination"],
        first["sender_id"],
        first["text"],
        first["encoding"],
        first["parts"],
        first["price"],
        first["client_reference"],
        first["attempts"],
        first["possible_duplicate"],
    ) == (
        body["batch_id"],
        account.id,
        "+254701234567",
        "ACME",
        "Hello there",
        "gsm",
        1,
        Decimal("0.80"),
        "order-42",
        0,
        False,
    )
    assert first["expires_at"].timestamp() == clock.now + 86_400
    entries = stream(redis_client)
    assert [e.message_id for e in entries] == [r["id"] for r in rows]
    assert entries[0] == outbox.OutboundMessage(
        first["id"],
        body["batch_id"],
        account.id,
        "+254701234567",
        "ACME",
        "Hello there",
        "gsm",
        1,
        Decimal("0.8000"),
        clock.now + 86_400,
    )
    with db.connect() as conn:
        charges = conn.execute(
            select(ledger.c.kind, ledger.c.amount, ledger.c.batch_id).where(
                ledger.c.kind == "charge"
            )
        ).all()
    assert charges == [("charge", Decimal("-1.60"), body["batch_id"])]
    assert service.balance(account.id).balance == Decimal("98.40")
    assert service.audit() == []


def test_the_flusher_marks_the_batch_queued(service, db, account, clock):
    body = service.send(account.id, "0701234567", "hi").body
    assert stored(db)[0]["state"] in ("accepted", "queued")
    rows = wait_until(lambda: [r for r in stored(db) if r["state"] == "queued"], timeout=10)
    assert rows[0]["queued_at"].timestamp() == clock.now
    assert rows[0]["batch_id"] == body["batch_id"]


def test_duplicates_are_sent_once(service, db, account, redis_client):
    body = service.send(
        account.id, ["0701234567", "+254701234567", "254701234567", "0701 234 567"], "hi"
    ).body
    assert (body["count"], body["cost"], len(body["messages"])) == (1, "0.80", 1)
    assert len(stored(db)) == 1 and len(stream(redis_client)) == 1


def test_invalid_numbers_refuse_the_whole_request(service, db, account, redis_client):
    with pytest.raises(InvalidNumbers) as err:
        service.send(account.id, "0701234567, 0201234567 ,12345, 0711111111", "hi")
    assert err.value.message == "Invalid phone number format."
    assert err.value.extra == {"invalid_numbers": ["0201234567", "12345"]}
    assert stored(db) == [] and stream(redis_client) == []
    assert service.balance(account.id).balance == Decimal("100.00")


@pytest.mark.parametrize(
    "numbers, body, kwargs, field, message",
    [
        ("", "hi", {}, "numbers", "The numbers field is required."),
        (" , ,", "hi", {}, "numbers", "The numbers field is required."),
        (None, "hi", {}, "numbers", "The numbers field is required."),
        ([], "hi", {}, "numbers", "The numbers field is required."),
        ("0701234567", "", {}, "message_body", "The message_body field is required."),
        ("0701234567", None, {}, "message_body", "The message_body field is required."),
        ("0701234567", "   ", {}, "message_body", "The message_body field is required."),
        (
            "0701234567",
            "x" * 1531,
            {},
            "message_body",
            "message_body is too long: 11 parts, the limit is 10 parts.",
        ),
        (
            "0701234567",
            "hi",
            {"sender_id": "EVIL"},
            "sender_id",
            "sender_id is not allowed for this account.",
        ),
        (
            "0701234567",
            "hi",
            {"callback_url": "ftp://x"},
            "callback_url",
            "callback_url must be an http or https URL of at most 2048 characters.",
        ),
        (
            "0701234567",
            "hi",
            {"reference": "r" * 129},
            "reference",
            "reference is too long: at most 128 characters.",
        ),
    ],
)
def test_field_errors(service, account, numbers, body, kwargs, field, message):
    with pytest.raises(InvalidInput) as err:
        service.send(account.id, numbers, body, **kwargs)
    assert (err.value.message, err.value.extra) == (message, {"field": field})
    assert service.balance(account.id).balance == Decimal("100.00")


def test_sender_id_rules(service, db, account, bridge_config, fast_hasher):
    service.send(account.id, "0701234567", "a")  # default of the account
    service.send(account.id, "0701234567", "b", sender_id="INFO")  # allowed
    service.send(account.id, "0701234567", "c", sender_id="ACME")  # its default, named
    plain = service.create_account("plain", "pw", balance=Decimal(5))
    service.send(plain.id, "0701234567", "d")  # no sender of its own: the configured one
    assert [r["sender_id"] for r in stored(db)] == ["ACME", "INFO", "ACME", "SMSBRIDGE"]


def test_too_many_numbers(service, account):
    numbers = ",".join(f"07{i:08d}" for i in range(10_001))
    with pytest.raises(InvalidInput) as err:
        service.send(account.id, numbers, "hi")
    assert err.value.message == "Too many numbers: 10001, the limit is 10000 per request."


def test_long_and_unicode_messages_are_priced_per_part(service, db, account):
    body = service.send(account.id, "0701234567", "x" * 161).body  # 2 GSM parts
    assert (body["parts"], body["cost"]) == (2, "1.60")
    body = service.send(account.id, "0701234567", "Habari 😀").body  # UCS-2, 1 part
    assert (body["parts"], body["cost"]) == (1, "0.80")
    body = service.send(account.id, "0701234567,0711111111", "ω" * 71).body  # 2 UCS-2 parts each
    assert (body["count"], body["parts"], body["cost"]) == (2, 4, "3.20")
    assert [r["encoding"] for r in stored(db)] == ["gsm", "ucs2", "ucs2", "ucs2"]
    assert service.balance(account.id).balance == Decimal("100.00") - Decimal("5.60")


def test_insufficient_balance_writes_nothing(service, db, account, redis_client):
    numbers = ",".join(f"07{i:08d}" for i in range(126))  # 126 x 0.80 = 100.80 > 100.00
    with pytest.raises(InsufficientBalance):
        service.send(account.id, numbers, "hi")
    assert stored(db) == [] and stream(redis_client) == []
    numbers = ",".join(f"07{i:08d}" for i in range(125))  # exactly 100.00
    assert service.send(account.id, numbers, "hi").body["balance"] == "0.00"
    assert service.audit() == []


def test_sql_ish_strings_are_stored_verbatim(service, db, account, redis_client):
    text = "'; DROP TABLE messages; -- \" OR 1=1 /* %s %(x)s ? :name"
    body = service.send(account.id, "0701234567", text, reference="x' OR '1'='1").body
    assert body["reference"] == "x' OR '1'='1"
    row = stored(db)[0]
    assert (row["text"], row["client_reference"]) == (text, "x' OR '1'='1")
    assert stream(redis_client)[0].text == text
    with pytest.raises(InvalidNumbers) as err:
        service.send(account.id, "0701234567,1; DELETE FROM accounts", "hi")
    assert err.value.extra["invalid_numbers"] == ["1; DELETE FROM accounts"]
    with pytest.raises(InvalidInput):
        service.send(account.id, "0701234567", "hi", sender_id="' OR 1=1 --")
    assert service.balance(account.id).balance == Decimal("99.20")


def test_ten_thousand_numbers_cost_no_more_statements_than_one(service, db, account, redis_client):
    service.topup(account.id, Decimal(10000))
    service.send(account.id, "0799999999", "warm-up")  # loads the cached account settings
    with count_statements(db.engine) as one:
        service.send(account.id, "0799999999", "one")
    numbers = [f"07{i:08d}" for i in range(10_000)]
    with count_statements(db.engine) as many:
        body = service.send(account.id, numbers, "many").body
    assert body["count"] == 10_000 and body["cost"] == "8000.00"
    assert len(many) == len(one) <= 7, many  # 7: the opt-out lookup (bridge.inbound.optouts)
    assert sum("INSERT INTO messages" in s for s in many) == 1
    assert redis_client.xlen(redis_keys.OUTBOUND_STREAM) == 10_002
    with db.connect() as conn:
        assert conn.execute(select(func.count()).select_from(messages)).scalar() == 10_002
    assert service.audit() == []


def test_disabled_account_cannot_send(service, account):
    service.set_active(account.id, False)
    with pytest.raises(Unauthorized, match="Account is disabled."):
        service.send(account.id, "0701234567", "hi")


def test_database_down_is_dependency_down(redis_client):
    url = f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/nothing"
    db = Database(url)
    svc = BridgeService(Config(database_url=url), db, redis_client, run_sweeper=False)
    try:
        for call in (
            lambda: svc.send(1, "0701234567", "hi"),
            lambda: svc.verify_key("sb_x"),
            lambda: svc.authenticate("a", "b"),
            lambda: svc.balance(1),
        ):
            with pytest.raises(DependencyDown):
                call()
    finally:
        db.dispose()


# --- Idempotency-Key -------------------------------------------------------------------------


def test_same_key_same_body_replays_and_charges_once(service, db, account, redis_client):
    first = service.send(account.id, "0701234567", "hi", idempotency_key="k1")
    again = service.send(account.id, " 0701234567 ", "hi", idempotency_key="k1")
    assert (first.replayed, again.replayed) == (False, True)
    assert again.body == first.body
    assert len(stored(db)) == 1 and len(stream(redis_client)) == 1
    assert service.balance(account.id).balance == Decimal("99.20")
    with db.connect() as conn:
        row = conn.execute(select(idempotency_keys)).mappings().one()
    assert json.loads(row["response_json"]) == first.body and row["status_code"] == 200


def test_same_key_different_body_is_refused(service, account):
    service.send(account.id, "0701234567", "hi", idempotency_key="k1")
    with pytest.raises(InvalidInput) as err:
        service.send(account.id, "0701234567", "hello", idempotency_key="k1")
    assert err.value.message == "Idempotency-Key was already used with a different request."
    assert err.value.extra == {"field": "Idempotency-Key"}
    other = service.create_account("other", "pw", balance=Decimal(10))
    assert not service.send(other.id, "0701234567", "hello", idempotency_key="k1").replayed


def test_expired_idempotency_keys_are_forgotten(service, account, clock, db):
    service.send(account.id, "0701234567", "hi", idempotency_key="k1")
    clock.advance(86_400 + 1)
    assert not service.send(account.id, "0701234567", "hi", idempotency_key="k1").replayed
    assert service.balance(account.id).balance == Decimal("98.40")
    with db.connect() as conn:
        assert conn.execute(select(func.count()).select_from(idempotency_keys)).scalar() == 1


def test_idempotency_key_length(service, account):
    with pytest.raises(InvalidInput, match="Idempotency-Key must be 1 to 255"):
        service.send(account.id, "0701234567", "hi", idempotency_key="k" * 256)
