"""Group commit of sends: the sends queued in this process right now share ONE transaction.

A request thread prepares its send (ids, message rows, cost: no I/O) and hands it to
:meth:`GroupAccept.commit`. A leader (one of the waiting request threads, see
bridge.accept.committer) then runs, for the whole group:

0. the leader takes the write lock (bridge.storage.write_lock) and only then the queued sends, so the
   sends that arrive while another process writes join this group;
1. one write transaction: the conditional charge UPDATE per account in account-id order (the
   group's total for that account first; if the balance does not cover it all, one UPDATE per
   send in arrival order, so each send succeeds or gets InsufficientBalance on its own), then
   ONE executemany INSERT of the charged sends' messages and ONE of their ledger rows, commit;
2. ONE pipelined XADD of every charged message, then the ``queued`` notes for the flusher;
3. the next group may start (the next leader is promoted), and each request thread is woken
   with its own answer: its balance after its charge, or its own InsufficientBalance /
   DependencyDown.

The statements run on the DBAPI cursor (bridge.storage.driver), their parameters converted in each
request's own thread before it queues: the write lock is held for ~175 µs instead of ~430 µs
(median, 8 connections, bench/accept.py).

Failure rules: a database outage (connection refused, lock timeout...) rolls the transaction
back, so every send of the group gets DependencyDown with nothing charged; it is not retried
here (the client retries, as for any 503), except once when the group's connection had been
dropped by the server (a PostgreSQL restart) before COMMIT: the server rolled it back, so the
group runs again at once on a fresh connection (``Database.once_more_if_gone``); dropped at
COMMIT (its answer lost: it may have been applied), the group's charge rows are looked for on a
fresh connection, and the sends are accepted when they are there. Any other
error in the group transaction is replayed one send per transaction, so a send whose rows
the database refuses fails alone. Redis down after the commit does not fail the sends: the
sweeper enqueues them later (transactional outbox). Balances cannot go negative: every charge is the conditional UPDATE
(``balance >= cost``) and the CHECK constraint still stands; account rows are locked in
account-id order, as the settlement refunds lock them, so groups do not deadlock on PostgreSQL.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from redis.exceptions import RedisError
from sqlalchemy import func, select
from sqlalchemy.exc import DBAPIError, DisconnectionError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from bridge.accept.committer import GroupCommitter, GroupTimeout, Pending
from bridge.accept.flusher import Flusher
from bridge.errors import DependencyDown, InsufficientBalance
from bridge.redis import outbox, schedule
from bridge.storage.batch import BatchStatement
from bridge.storage.db import Database, commit_lost
from bridge.storage.driver import DriverCursor, DriverStatement, connection_transaction
from bridge.storage.ledger import _CHARGE, _CHARGE_ROW, CHARGE
from bridge.storage.models import ledger, messages
from bridge.storage.states import MessageState

# _CHARGE and _CHARGE_ROW are the very statements ledger.charge runs: one rule for a charge

log = logging.getLogger(__name__)

# "The database is unreachable": these become DependencyDown (HTTP 503, nothing charged).
DB_DOWN = (OperationalError, InterfaceError, DisconnectionError, PoolTimeout)

MAX_GROUP_SENDS = 64  # sends per group transaction
MAX_GROUP_MESSAGES = 2000  # messages per group (a lone bigger send still goes alone)

_INSERT_MESSAGES = messages.insert()  # built once: statement construction costs on every send


@dataclass(slots=True)
class Prepared:
    """A send ready to be written: its message rows (dicts for ``messages``), total cost."""

    account_id: int
    batch_id: str
    rows: list[dict]
    cost: Decimal
    now: datetime  # the accept time (created_at of the rows, the ledger row's time)
    # its rows' INSERT and the DBAPI parameters of its rows and ledger row, converted by
    # GroupAccept.commit in the caller's thread (bridge.storage.driver)
    message_insert: DriverStatement | None = None
    message_params: list | None = None
    ledger_params: Any = None


class _Statements:
    """The group transaction's statements, compiled for one database (bridge.storage.driver);
    BatchStatements (bridge.storage.batch), whose UTCDateTime binds take one call: a message
    row's parameters 9.9 -> 2.6 µs on SQLite."""

    def __init__(self, dialect) -> None:
        self.charge = BatchStatement(_CHARGE, dialect)
        self.ledger = BatchStatement(_CHARGE_ROW, dialect)
        self._dialect = dialect
        self._messages: dict[tuple, DriverStatement] = {}

    def messages(self, keys: tuple) -> DriverStatement:
        """The INSERT for rows with these keys (every send's rows have the same ones)."""
        stmt = self._messages.get(keys)
        if stmt is None:
            stmt = self._messages[keys] = BatchStatement(_INSERT_MESSAGES, self._dialect, keys)
        return stmt


class GroupAccept:
    """Charges, stores and enqueues prepared sends, grouping concurrent ones."""

    def __init__(
        self,
        db: Database,
        redis,
        flusher: Flusher,
        *,
        clock: Callable[[], float] = time.time,
        sweeper_grace: float = 0,
        max_sends: int = MAX_GROUP_SENDS,
        max_messages: int = MAX_GROUP_MESSAGES,
    ) -> None:
        self._db, self._redis, self._flusher = db, redis, flusher
        self._clock, self._grace = clock, sweeper_grace
        self._write_lock = db.write_lock  # the one every write transaction of db takes
        self._sql = _Statements(db.engine.dialect)
        self.committer = GroupCommitter(
            self._run,
            max_items=max_sends,
            max_weight=max_messages,
            before_take=self._write_lock.acquire,
        )

    def commit(self, prep: Prepared) -> Decimal:
        """Charge, store and enqueue ``prep`` (with whatever else is queued); returns the
        account's balance right after this send's charge.

        Raises InsufficientBalance (nothing written for this send) or DependencyDown.
        """
        if prep.rows:  # the parameters are converted here, in the caller's thread
            insert = prep.message_insert = self._sql.messages(tuple(prep.rows[0]))
            prep.message_params = [insert.params(row) for row in prep.rows]
        prep.ledger_params = self._sql.ledger.params(
            {
                "account_id": prep.account_id,
                "amount": -prep.cost,
                "batch_id": prep.batch_id,
                "dedupe_key": f"{CHARGE}:{prep.batch_id}",
                "now": prep.now,
            }
        )
        try:
            return self.committer.submit(Pending(prep, len(prep.rows)))
        except GroupTimeout as exc:
            log.error("send %s refused: %s", prep.batch_id, exc)
            raise DependencyDown() from exc

    # --- the leader's work ----------------------------------------------------------------
    def _run(self, items: Sequence[Pending]) -> None:
        preps: list[Prepared] = [it.payload for it in items]
        seen: list[Decimal | None] = []  # the charges' balances, set before the COMMIT
        try:
            try:  # a connection a database restart dropped: once more on a fresh one
                balances = self._db.once_more_if_gone(lambda: self._transaction(preps, seen))
            except DBAPIError as exc:
                if not commit_lost(exc):
                    raise
                balances = self._after_lost_commit(preps, seen, exc)
            finally:
                self._write_lock.release()  # the leader took it before it took the group
        except DB_DOWN as exc:
            log.error(
                "database unavailable: %d send(s) refused, nothing charged: %s", len(items), exc
            )
            for it in items:
                it.error = DependencyDown()
                it.error.__cause__ = exc
            return
        except Exception:
            if len(items) == 1:
                raise
            log.exception(
                "group transaction of %d sends failed; replaying each on its own", len(items)
            )
            for it in items:
                self._run_alone(it)
            return
        charged = []
        for it, prep, balance in zip(items, preps, balances, strict=True):
            if balance is None:
                it.error = InsufficientBalance()
            else:
                it.result = balance
                charged.append(prep)
        enqueue(self._redis, self._flusher, charged, self._grace)

    def _run_alone(self, item: Pending) -> None:
        try:
            self._run([item])
        except Exception as exc:  # noqa: BLE001 - this send's own error, raised in its thread
            item.error = exc

    def _after_lost_commit(
        self, preps: list[Prepared], balances: list[Decimal | None], exc: DBAPIError
    ) -> list[Decimal | None]:
        """The group's COMMIT was sent and its answer lost: ``balances`` when the database
        holds the group's charge rows (it committed; the sends are accepted), else ``exc``
        (nothing was charged). A database that cannot be asked raises ``exc`` too: a 503
        whose send may have been charged, logged as such."""
        keys = [
            f"{CHARGE}:{p.batch_id}" for p, b in zip(preps, balances, strict=True) if b is not None
        ]
        if not keys:
            return balances  # nothing to charge: every send was refused on its balance

        def read() -> int:
            with self._db.connect() as conn:
                found = conn.execute(
                    select(func.count()).where(ledger.c.dedupe_key.in_(keys))
                ).scalar_one()
            return int(found)

        try:
            found = self._db.once_more_if_gone(read, repeatable=True)
        except DB_DOWN as again:
            log.error(
                "a COMMIT's answer was lost and the database cannot be asked (%s): %d send(s)"
                " refused that may have been charged (batches %s)",
                again,
                len(keys),
                ", ".join(k.split(":", 1)[1] for k in keys),
            )
            raise exc from again
        if found == 0:
            raise exc
        log.warning("a COMMIT's answer was lost; it had been applied: %d send(s) kept", found)
        return balances

    def _transaction(
        self, preps: list[Prepared], seen: list[Decimal | None]
    ) -> list[Decimal | None]:
        """One transaction: the charges, then every charged send's messages and ledger row;
        ``seen`` holds the charges' balances before the COMMIT (read if its answer is lost)."""
        now = datetime.fromtimestamp(self._clock(), UTC)
        sql = self._sql
        with (
            self._write_lock.held(),
            self._db.kept_connection() as conn,  # no pool checkout per group
            connection_transaction(conn, sqlite=self._db.is_sqlite) as cur,
        ):
            balances = charge_group(cur, sql.charge, preps, now)
            seen[:] = balances
            done = [p for p, b in zip(preps, balances, strict=True) if b is not None]
            inserts: dict[DriverStatement, list] = {}  # one statement, unless rows differ
            for p in done:
                if p.rows:
                    assert (
                        p.message_insert is not None and p.message_params is not None
                    )  # set in send()
                    inserts.setdefault(p.message_insert, []).extend(p.message_params)
            for insert, params in inserts.items():
                cur.executemany(insert, params)
            if done:
                cur.executemany(sql.ledger, [p.ledger_params for p in done])
        return balances


def charge_group(
    cur: DriverCursor, charge: DriverStatement, preps: Sequence[Prepared], now: datetime
) -> list[Decimal | None]:
    """Charge each send: its account's balance after its charge, or None (not affordable).

    Per account (in id order): one conditional UPDATE for the group's total; if that is not
    covered, one conditional UPDATE per send in arrival order. Either way each send's balance
    is what it would have been had the sends been charged one by one in that order.
    """
    by_account: dict[int, list[int]] = {}
    for i, prep in enumerate(preps):
        by_account.setdefault(prep.account_id, []).append(i)
    balances: list[Decimal | None] = [None] * len(preps)
    for account_id in sorted(by_account):
        indexes = by_account[account_id]
        if len(indexes) > 1:
            total = sum((preps[i].cost for i in indexes), Decimal(0))
            row = cur.execute(
                charge, charge.params({"account_id": account_id, "cost": total, "now": now})
            )
            if row is not None:
                running = row[0] + total
                for i in indexes:
                    running -= preps[i].cost
                    balances[i] = running
                continue
        for i in indexes:
            row = cur.execute(
                charge, charge.params({"account_id": account_id, "cost": preps[i].cost, "now": now})
            )
            if row is not None:
                balances[i] = row[0]
    return balances


def enqueue(redis, flusher: Flusher, preps: Sequence[Prepared], grace: float) -> None:
    """XADD the committed sends' messages (one pipeline); on a Redis failure leave them to
    the sweeper, else note their batches for the flusher's ``queued`` mark. Scheduled sends
    are not XADDed: their ids go into the schedule set (bridge.redis.schedule) for the
    releaser."""
    if redis is None or not preps:
        return
    later = [p for p in preps if p.rows and p.rows[0]["state"] == MessageState.SCHEDULED]
    if later:
        _schedule(redis, later)
        preps = [p for p in preps if not (p.rows and p.rows[0]["state"] == MessageState.SCHEDULED)]
        if not preps:
            return
    try:
        outbox.enqueue(
            redis,
            [
                outbox.OutboundMessage(
                    r["id"],
                    r["batch_id"],
                    r["account_id"],
                    r["destination"],
                    r["sender_id"],
                    r["text"],
                    r["encoding"],
                    r["parts"],
                    r["price"],
                    r["expires_at"].timestamp(),
                )
                for p in preps
                for r in p.rows
            ],
        )
    except RedisError as exc:
        log.warning(
            "%d batch(es) committed but not enqueued (Redis: %s); the sweeper will"
            " enqueue them after %ss",
            len(preps),
            exc,
            grace,
        )
        return
    for p in preps:
        flusher.mark_queued(p.batch_id)


def _schedule(redis, preps: Sequence[Prepared]) -> None:
    """ZADD the scheduled sends' ids by send_at; on a Redis failure the releaser's database
    scan finds them when they are due."""
    try:
        schedule.add(redis, [(r["id"], r["send_at"].timestamp()) for p in preps for r in p.rows])
    except RedisError as exc:
        log.warning(
            "%d scheduled batch(es) committed but not in the schedule set (Redis: %s); the"
            " releaser's database scan releases them when due",
            len(preps),
            exc,
        )
