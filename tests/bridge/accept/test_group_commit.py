"""Group commit of sends (bridge.accept.group, bridge.accept.committer) on SQLite and PostgreSQL.

Groups are made deterministic with ``committer.hold()``: the sends queue while it is held and
are committed as ONE group when it ends.
"""

from __future__ import annotations

import contextlib
import threading
from collections import Counter
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import event, func, select, update
from sqlalchemy.exc import IntegrityError

from bridge.accept.committer import GroupCommitter, GroupTimeout, Pending
from bridge.accept.flusher import Flusher
from bridge.accept.group import GroupAccept, Prepared
from bridge.errors import DependencyDown, InsufficientBalance
from bridge.redis import keys as redis_keys
from bridge.redis import outbox
from bridge.redis.clients import make_redis
from bridge.service import BridgeService
from bridge.storage.db import Database
from bridge.storage.ledger import ledger_sum
from bridge.storage.models import accounts, ledger, messages
from tests.bridge.conftest import count_statements
from tests.harness.procs import wait_until

TWENTY_FIVE = ",".join(f"07{i:08d}" for i in range(25))  # 25 x 0.80 = 20.00 a send


class Sends:
    """Threads that each run one call; results (or exceptions) collected in start order."""

    def __init__(self) -> None:
        self.threads: list[threading.Thread] = []
        self.results: list[object] = []

    def start(self, call) -> None:
        i = len(self.results)
        self.results.append(None)

        def run():
            try:
                self.results[i] = call()
            except Exception as exc:  # noqa: BLE001 - asserted on by the test
                self.results[i] = exc

        thread = threading.Thread(target=run, name=f"send-{i}")
        self.threads.append(thread)
        thread.start()

    def join(self) -> list[object]:
        for thread in self.threads:
            thread.join(timeout=60)
        assert not any(t.is_alive() for t in self.threads), "a send hung"
        return self.results


@contextlib.contextmanager
def held_group(committer: GroupCommitter, calls):
    """Queue every call while the committer is held, then let them commit as one group."""
    sends = Sends()
    groups = committer.stats.groups
    try:
        with committer.hold():
            for call in calls:
                sends.start(call)
            wait_until(lambda: committer.waiting() == len(calls), message="all sends queued")
            yield sends
    finally:
        sends.join()
    assert committer.stats.groups == groups + 1, "the sends were not one group"


def statements(engine):
    """SQL statements sent by any thread but the flusher's (executemany counts once)."""
    return count_statements(
        engine, keep=lambda: threading.current_thread().name != "bridge-flusher"
    )


def stream_ids(redis_client) -> list[str]:
    return [
        outbox.decode_entry(f).message_id
        for _id, f in redis_client.xrange(redis_keys.OUTBOUND_STREAM)
    ]


def message_ids(db) -> set[str]:
    with db.connect() as conn:
        return set(conn.execute(select(messages.c.id)).scalars())


def test_one_group_charges_exactly_what_the_balance_covers(service, db, account, redis_client):
    # balance 100.00 and twenty sends of 20.00 in ONE group: the total is not covered, so each
    # send is charged on its own, in arrival order; five fit
    with (
        statements(db.engine) as seen,
        held_group(
            service.committer, [lambda: service.send(account.id, TWENTY_FIVE, "hi")] * 20
        ) as sends,
    ):
        pass
    results = sends.results
    ok = [r for r in results if not isinstance(r, Exception)]
    refused = [r for r in results if isinstance(r, InsufficientBalance)]
    assert (len(ok), len(refused)) == (5, 15), results
    assert sorted(r.body["balance"] for r in ok) == ["0.00", "20.00", "40.00", "60.00", "80.00"]
    sent = [m["message_id"] for r in ok for m in r.body["messages"]]
    assert len(sent) == len(set(sent)) == 125
    assert message_ids(db) == set(sent)
    assert sorted(stream_ids(redis_client)) == sorted(sent)  # each exactly once
    with db.connect() as conn:
        assert ledger_sum(conn, account.id) == service.balance(account.id).balance == 0
        assert (
            conn.execute(
                select(func.count()).select_from(ledger).where(ledger.c.kind == "charge")
            ).scalar()
            == 5
        )
    assert service.audit() == []
    # 1 conditional UPDATE for the group's total + 20 single ones, the rest once per group
    assert sum(s.startswith("UPDATE accounts") for s in seen) == 21, seen
    assert sum(s.startswith("INSERT INTO messages") for s in seen) == 1
    assert sum(s.startswith("INSERT INTO ledger") for s in seen) == 1


@pytest.mark.parametrize("size", [1, 30])
def test_a_covered_group_costs_the_same_statements_as_one_send(
    service, db, account, redis_client, size
):
    service.send(account.id, "0799999999", "warm-up")  # caches the account settings
    with (
        statements(db.engine) as seen,
        held_group(
            service.committer, [lambda: service.send(account.id, "0701234567", "hi")] * size
        ) as sends,
    ):
        pass
    assert not any(isinstance(r, Exception) for r in sends.results), sends.results
    assert min(r.body["balance"] for r in sends.results) == str(
        Decimal("99.20") - Decimal("0.80") * size
    )
    # each send reads its numbers' opt-outs before it joins the group (one indexed SELECT per
    # request, docs/api.md); the group's own transaction is what must not grow with its size
    optout_reads = [s for s in seen if s.startswith("SELECT optouts")]
    assert len(optout_reads) == size, seen
    seen = [s for s in seen if not s.startswith("SELECT optouts")]
    kinds = Counter(s.split(" (")[0].split(" SET")[0] for s in seen)
    expected = {"UPDATE accounts": 1, "INSERT INTO messages": 1, "INSERT INTO ledger": 1}
    assert {k: v for k, v in kinds.items() if k in expected} == expected, seen
    assert len(seen) <= 5, seen  # + BEGIN IMMEDIATE and COMMIT on SQLite; nothing per send
    assert len(stream_ids(redis_client)) == size + 1
    assert service.audit() == []


def test_a_warm_send_checks_no_connection_out_of_the_pool(service, db, account):
    """The opt-out read and the group transaction run on kept connections
    (bridge.storage.kept): a pool checkout and checkin per send was ~9 % of the API's CPU."""
    service.send(account.id, "0799999999", "warm-up")  # caches the settings, keeps connections
    me, seen = threading.get_ident(), []

    def on_checkout(*_args) -> None:
        if threading.get_ident() == me:  # not the flusher's
            seen.append(1)

    event.listen(db.engine, "checkout", on_checkout)
    try:
        for _ in range(3):
            assert service.send(account.id, "0701234567", "hi").body["count"] == 1
    finally:
        event.remove(db.engine, "checkout", on_checkout)
    assert seen == []


def test_a_refused_account_never_fails_another_accounts_sends(service, db, account, redis_client):
    poor = service.create_account("poor", "s3cret-pass", balance=Decimal("1.00"))
    calls = [lambda: service.send(account.id, "0701234567", "rich")] * 3 + [
        lambda: service.send(poor.id, "0701234567", "poor")
    ] * 3
    with held_group(service.committer, calls) as sends:
        pass
    rich, poors = sends.results[:3], sends.results[3:]
    assert sorted(r.body["balance"] for r in rich) == ["97.60", "98.40", "99.20"]
    assert sum(isinstance(r, InsufficientBalance) for r in poors) == 2
    assert [r.body["balance"] for r in poors if not isinstance(r, Exception)] == ["0.20"]
    assert len(stream_ids(redis_client)) == 4
    assert service.audit() == []


def test_redis_down_after_a_group_commit_the_sends_succeed_and_are_swept_once(
    service, db, account, redis_server, clock
):
    redis_server.stop()
    with held_group(
        service.committer, [lambda: service.send(account.id, "0701234567", "hi")] * 5
    ) as sends:
        pass
    assert sorted(r.body["balance"] for r in sends.results) == [
        "96.00",
        "96.80",
        "97.60",
        "98.40",
        "99.20",
    ]
    sent = sorted(r.body["messages"][0]["message_id"] for r in sends.results)
    assert sorted(message_ids(db)) == sent
    redis_server.start()
    client = redis_server.client()
    try:
        clock.advance(31)  # past the sweeper's grace period
        assert service.sweep_once() == 5
        assert service.sweep_once() == 0
        assert sorted(stream_ids(client)) == sent  # each exactly once
    finally:
        client.close()
    assert service.audit() == []


def _short_lock_waits(database: Database) -> None:
    """New connections of this database give up on a held lock after 0.3 s."""

    @event.listens_for(database.engine, "connect")
    def _timeout(dbapi_conn, _record) -> None:
        cursor = dbapi_conn.cursor()
        if database.is_sqlite:
            cursor.execute("PRAGMA busy_timeout=300")
        else:
            cursor.execute("SET lock_timeout = '300ms'")
            dbapi_conn.commit()
        cursor.close()


def test_a_database_failure_fails_the_whole_group_and_charges_nothing(
    bridge_config, db, redis_server, fast_hasher
):
    """Account A is charged first (lower id), then B's row is locked past the lock timeout:
    the transaction rolls back, so A's charge is undone and every send gets DependencyDown."""
    svc_db = Database(bridge_config.effective_database_url, lock_wait=0.3)
    _short_lock_waits(svc_db)
    client = make_redis(redis_server.url)
    svc = BridgeService(bridge_config, svc_db, client, run_sweeper=False, hasher=fast_hasher)
    svc.start()
    try:
        a = svc.create_account("first", "s3cret-pass", balance=Decimal("10.00"))
        b = svc.create_account("second", "s3cret-pass", balance=Decimal("10.00"))
        for acct in (a, b):  # caches the settings, so the sends reach the group commit
            svc.send(acct.id, "0701234567", "warm-up")
        before = message_ids(db)
        calls = [lambda: svc.send(a.id, "0701234567", "a")] * 3 + [
            lambda: svc.send(b.id, "0701234567", "b")
        ] * 3
        with db.begin() as locker:  # holds B's row (PostgreSQL) / the write lock (SQLite)
            locker.execute(
                update(accounts).where(accounts.c.id == b.id).values(updated_at=datetime.now(UTC))
            )
            with held_group(svc.committer, calls) as sends:
                pass
        assert all(isinstance(r, DependencyDown) for r in sends.results), sends.results
        assert svc.balance(a.id).balance == svc.balance(b.id).balance == Decimal("9.20")
        assert message_ids(db) == before
        assert len(stream_ids(client)) == 2
        assert svc.audit() == []
        assert svc.send(b.id, "0701234567", "after").body["balance"] == "8.40"
    finally:
        svc.stop()
        client.close()
        svc_db.dispose()


def _prepared(account_id: int, message_id: str, batch_id: str) -> Prepared:
    now = datetime.now(UTC)
    row = {
        "id": message_id,
        "batch_id": batch_id,
        "account_id": account_id,
        "destination": "+254701234567",
        "sender_id": "ACME",
        "text": "hi",
        "encoding": "gsm",
        "parts": 1,
        "price": Decimal("0.80"),
        "state": "accepted",
        "client_reference": None,
        "callback_url": None,
        "created_at": now,
        "updated_at": now,
        "expires_at": now + timedelta(days=1),
    }
    return Prepared(account_id, batch_id, [row], Decimal("0.80"), now)


def test_a_send_the_database_refuses_fails_alone(service, db, account, redis_client):
    """A non-outage error (here a duplicate message id) replays the group one send per
    transaction: only the offending send fails, with its own error."""
    taken = service.send(account.id, "0701234567", "first").body["messages"][0]["message_id"]
    group = GroupAccept(db, redis_client, Flusher(db))
    preps = [_prepared(account.id, f"01HZZZZZZZZZZZZZZZZZZZZZZ{i}", f"B{i}") for i in range(2)]
    preps.insert(1, _prepared(account.id, taken, "BDUP"))
    with held_group(group.committer, [lambda p=p: group.commit(p) for p in preps]) as sends:
        pass
    good = [r for r in sends.results if not isinstance(r, Exception)]
    assert len(good) == 2 and isinstance(sends.results[1], IntegrityError), sends.results
    assert service.balance(account.id).balance == Decimal("97.60")
    assert message_ids(db) == {taken, *(p.rows[0]["id"] for p in (preps[0], preps[2]))}
    assert len(stream_ids(redis_client)) == 3
    assert service.audit() == []


# --- the committer alone (no database) ----------------------------------------------------


def test_committer_gives_each_item_its_own_outcome_and_survives_a_bug():
    def run(items):
        if any(it.payload == "bug" for it in items):
            raise RuntimeError("bug in run_group")
        for it in items:
            if it.payload < 0:
                it.error = ValueError(it.payload)
            else:
                it.result = it.payload * 10

    committer = GroupCommitter(run, max_items=3)
    with held_group(
        committer, [lambda n=n: committer.submit(Pending(n)) for n in (1, -2, 3)]
    ) as sends:
        pass
    assert sends.results[0] == 10 and sends.results[2] == 30
    assert isinstance(sends.results[1], ValueError)
    with pytest.raises(RuntimeError, match="bug in run_group"):
        committer.submit(Pending("bug"))
    assert committer.submit(Pending(4)) == 40  # leadership was handed on after the bug
    assert committer.stats.largest == 3


def test_committer_caps_a_group_and_the_next_leader_takes_the_rest():
    sizes: list[int] = []

    def run(items):
        sizes.append(len(items))
        for it in items:
            it.result = it.payload

    committer = GroupCommitter(run, max_items=4, max_weight=10)
    sends = Sends()
    with committer.hold():
        for n in range(7):
            sends.start(lambda n=n: committer.submit(Pending(n, weight=2)))
        wait_until(lambda: committer.waiting() == 7)
    assert sends.join() == list(range(7))
    assert sizes == [4, 3]


def test_items_queued_while_the_leader_waits_at_the_gate_join_its_group():
    """before_take (the accept path's write lock) runs before the leader takes the queue."""
    gate = threading.Event()
    entered = threading.Event()
    sizes: list[int] = []

    def before_take():
        entered.set()
        assert gate.wait(10), "the test never opened the gate"

    def run(items):
        sizes.append(len(items))
        for it in items:
            it.result = it.payload

    committer = GroupCommitter(run, before_take=before_take)
    sends = Sends()
    sends.start(lambda: committer.submit(Pending(0)))
    assert entered.wait(10)
    for n in range(1, 5):
        sends.start(lambda n=n: committer.submit(Pending(n)))
    wait_until(lambda: committer.waiting() == 5, message="four more queued behind the gate")
    gate.set()
    assert sends.join() == [0, 1, 2, 3, 4]
    assert sizes == [5]


def test_a_failing_gate_fails_its_group_and_hands_leadership_on():
    fail = [True]

    def before_take():
        if fail[0]:
            fail[0] = False
            raise OSError("lock file unavailable")

    def run(items):
        for it in items:
            it.result = it.payload

    committer = GroupCommitter(run, before_take=before_take)
    with pytest.raises(OSError, match="lock file unavailable"):
        committer.submit(Pending(1))
    assert committer.submit(Pending(2)) == 2


def test_a_queued_item_no_leader_takes_is_withdrawn():
    committer = GroupCommitter(lambda items: None, queue_wait=0.2)
    with committer.hold():
        with pytest.raises(GroupTimeout):
            committer.submit(Pending(1))
        assert committer.waiting() == 0


def test_committer_under_many_threads_resolves_every_item_once():
    """16 threads x 100 submits with small caps and a failing item now and then: every
    caller gets exactly its own answer and nothing hangs."""
    seen: list[int] = []

    def run(items):
        for it in items:
            seen.append(it.payload)
            if it.payload % 37 == 0:
                it.error = ValueError(it.payload)
            else:
                it.result = -it.payload

    committer = GroupCommitter(run, max_items=5, max_weight=7)
    sends = Sends()
    for t in range(16):
        sends.start(lambda t=t: [_outcome(committer, t * 1000 + i, 1 + i % 3) for i in range(100)])
    for t, answers in enumerate(sends.join()):
        assert isinstance(answers, list), answers  # not an exception
        for i, answer in enumerate(answers):
            n = t * 1000 + i
            assert answer == (f"error {n}" if n % 37 == 0 else -n)
    assert sorted(seen) == sorted(t * 1000 + i for t in range(16) for i in range(100))
    assert committer.waiting() == 0 and committer.stats.largest <= 5


def _outcome(committer: GroupCommitter, n: int, weight: int):
    try:
        return committer.submit(Pending(n, weight=weight))
    except ValueError as exc:
        return f"error {exc.args[0]}"
