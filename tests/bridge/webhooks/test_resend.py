"""`smpp-bridge webhooks resend`: dead letters back to a real sender and a real receiver, same
webhook-id and body, signed by the current secret, with a fresh retry period; twice is once."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import Any

import pytest
from standardwebhooks import Webhook, WebhookVerificationError

from bridge.cli import main
from bridge.redis import keys
from bridge.storage import webhook_secrets
from bridge.webhooks import dead
from bridge.webhooks.attempts import read_attempts
from tests.bridge.webhooks.conftest import publish
from tests.harness.procs import wait_until


@pytest.fixture
def cli(monkeypatch, capsys, wh_db, redis_server):
    """Run `smpp-bridge ...` in this process against the test's database and Redis."""
    monkeypatch.setenv("DATABASE_URL", wh_db.url)
    monkeypatch.setenv("REDIS_URL", redis_server.url)
    monkeypatch.delenv("BRIDGE_CONFIG", raising=False)

    def run(*argv: str) -> tuple[Any, str, str]:
        code: Any
        try:
            code = main(["webhooks", *argv])
        except SystemExit as exc:
            code = exc.code
        out, err = capsys.readouterr()
        return code, out, err

    return run


def _dead_ids(redis_client) -> list[str]:
    return [f[b"id"].decode() for _, f in redis_client.xrange(keys.webhooks_dead_key())]


def test_resend_by_id_and_by_account_once_each_signed_by_the_current_secret(
    cli, receiver, account, start_sender, redis_client, wh_db
):
    acme_id, _ = account("acme")
    other_id, other_secret = account("other")
    receiver.default = 410  # gone: dead-lettered at once
    start_sender(webhook_secret_overlap_seconds=0)  # a rotation signs with the new secret only
    publish(redis_client, acme_id, receiver.url(), n=2, prefix="acme", message_id="m1")
    publish(redis_client, other_id, receiver.url(), n=1, prefix="other")
    wait_until(lambda: len(_dead_ids(redis_client)) == 3, message="3 dead letters")
    first_bodies = {r.headers["webhook-id"]: r.body for r in receiver.requests}
    assert len(receiver.requests) == 3

    with wh_db.begin() as conn:  # the customer rotated its secret while fixing the endpoint
        acme_secret = webhook_secrets.rotate(conn, acme_id, datetime.now(UTC)).current
    time.sleep(0.25)  # outlive the fixture's SecretCache ttl (0.2 s); not a readiness wait
    receiver.default = 200  # fixed

    code, out, _ = cli("resend", "--all", "--dry-run")
    assert code == 0 and out.splitlines()[-1] == "would re-send 3 event(s)"
    assert out.count("would re-send  ") == 3 and "dead-lettered for HTTP 410" in out
    assert sorted(_dead_ids(redis_client)) == ["acme_0", "acme_1", "other_0"]
    assert redis_client.xlen(keys.webhooks_stream_key()) == 0  # nothing queued

    code, out, _ = cli("resend", "other_0")
    assert code == 0, out
    assert out.splitlines() == [
        f"re-sent  other_0  account {other_id}  {receiver.url()}  attempts 1: "
        "dead-lettered for HTTP 410",
        "re-sent 1 event(s)",
    ]
    wait_until(lambda: receiver.accepted_ids() == ["other_0"], message="other_0 delivered")

    code, out, _ = cli("resend", "--account", "acme", "--json")
    assert code == 0
    rows = [json.loads(line) for line in out.splitlines()]
    assert sorted(r["id"] for r in rows) == ["acme_0", "acme_1"]
    assert {r["result"] for r in rows} == {"re-sent"}
    wait_until(lambda: len(receiver.accepted()) == 3, message="3 deliveries")

    assert sorted(receiver.accepted_ids()) == ["acme_0", "acme_1", "other_0"]  # once each
    for request in receiver.accepted():
        event_id = request.headers["webhook-id"]
        assert request.body == first_bodies[event_id]  # the same event
        secret = other_secret if event_id == "other_0" else acme_secret
        assert Webhook(secret).verify(request.body, request.headers)
    old_signed = next(r for r in receiver.requests if r.headers["webhook-id"] == "acme_0")
    with pytest.raises(WebhookVerificationError):  # not the 410's secret: the current one
        Webhook(acme_secret).verify(old_signed.body, old_signed.headers)
    assert _dead_ids(redis_client) == []
    assert "(0 shown of 0 dead-lettered webhook events)" in cli("dead")[1]
    wait_until(lambda: redis_client.xlen(keys.webhooks_stream_key()) == 0)
    wait_until(lambda: len(read_attempts(redis_client, "m1")) == 4)
    records = sorted(read_attempts(redis_client, "m1"), key=lambda r: r["event_id"])
    assert [(r["attempt"], r["outcome"]) for r in records] == [
        (1, "failed"),
        (2, "delivered"),
        (1, "failed"),
        (2, "delivered"),
    ]

    code, out, _ = cli("resend", "--all")  # twice: nothing is sent again
    assert code == 0 and out == "re-sent 0 event(s)\n"
    code, out, err = cli("resend", "other_0", "nope_9")
    assert code == 1 and out == "re-sent 0 event(s)\n"
    assert err == (
        "smpp-bridge webhooks: error: not in the dead letters: other_0, nope_9 "
        "(see `smpp-bridge webhooks dead`)\n"
    )
    assert redis_client.xlen(keys.webhooks_stream_key()) == 0
    assert len(receiver.requests) == 6


def test_a_resent_event_gets_a_fresh_retry_period(
    cli, receiver, account, start_sender, redis_client
):
    account_id, _ = account()
    receiver.default = 503
    start_sender(webhook_retry_seconds=1.0, webhook_endpoint_pause_after=1000)
    publish(redis_client, account_id, receiver.url(), n=1, message_id="mp")
    wait_until(lambda: len(_dead_ids(redis_client)) == 1, message="the period spent")
    ((_, letter),) = redis_client.xrange(keys.webhooks_dead_key())
    assert int(letter[b"first_at"]) > 0  # it carried its first enqueue through the retries

    receiver.answers, receiver.default = [503], 200  # one more failure, then fixed
    assert cli("resend", "evt_0")[0] == 0
    # with the old period (long spent) the 503 would dead-letter it again at once
    wait_until(lambda: receiver.accepted_ids() == ["evt_0"], message="delivered after a retry")
    wait_until(lambda: read_attempts(redis_client, "mp")[-1]["outcome"] == "delivered")
    assert _dead_ids(redis_client) == []
    outcomes = [r["outcome"] for r in read_attempts(redis_client, "mp")]
    assert outcomes[-3:] == ["dead", "retrying", "delivered"]


def test_the_atomic_step_sends_a_letter_once_however_often_it_runs(redis_client):
    for i in (1, 2):  # the same event dead-lettered twice (a producer's duplicate)
        fields = {
            "id": "evt_dup",
            "account_id": "1",
            "url": "https://x.example/h",
            "kind": "message",
            "body": "{}",
            "message_id": "",
            "attempt": str(i),
            "first_at": "5",
            "reason": "HTTP 410",
            "dead_at": "0",
        }
        redis_client.xadd(keys.webhooks_dead_key(), fields)
    (found,) = dead.find(redis_client, dead.by_ids(["evt_dup"]))
    assert len(found.entry_ids) == 2
    letter = dead.read(redis_client, found)
    assert letter is not None and letter.event is not None and letter.event.attempt == 2
    assert dead.resend(redis_client, letter) is not None
    assert dead.resend(redis_client, letter) is None  # its letters are gone: not sent again
    assert redis_client.xlen(keys.webhooks_dead_key()) == 0
    ((_, queued),) = redis_client.xrange(keys.webhooks_stream_key())
    assert queued[b"id"] == b"evt_dup" and queued[b"attempt"] == b"2"
    assert b"first_at" not in queued and b"reason" not in queued  # a fresh period, no leftovers


def test_resend_needs_exactly_one_selection(cli):
    for argv in ((), ("evt_1", "--all"), ("--account", "acme", "--all")):
        code, out, err = cli("resend", *argv)
        assert code == 2 and out == "" and err.count("\n") == 1
        assert "name what to re-send" in err
    code, _, err = cli("resend", "--account", "nobody")
    assert code == 1 and err.count("\n") == 1
