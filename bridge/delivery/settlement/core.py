"""Settlement: SMPP outcomes -> stored message states and money, exactly once.

The worker calls :meth:`Settlement.claim` before it writes a byte to an SMSC (the write-ahead
``attempts`` mark) and :meth:`Settlement.apply` with the outcomes; receipts are correlated in
Redis (:class:`bridge.delivery.settlement.correlation.ReceiptBook`) and applied like any other outcome.

Every method is a fixed number of SQL statements per call, whatever the batch size (claim: 1
UPDATE ... RETURNING; apply: about 8, see :meth:`Settlement.apply`). State changes of messages
with a callback URL also write their webhook events to the outbox in the same transaction
(:mod:`~bridge.delivery.settlement.notify`), XADDed after the commit by the
:class:`~bridge.delivery.settlement.relay.Relay`. A transaction that loses a
deadlock or a lock wait is retried a few times before the error reaches the caller.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import timedelta

from redis.exceptions import RedisError
from sqlalchemy import Connection, false, select, update
from sqlalchemy.exc import OperationalError

from bridge.delivery.settlement import money, notify, rules
from bridge.delivery.settlement.correlation import DEFAULT_MAP_TTL, DEFAULT_ORPHAN_TTL, ReceiptBook
from bridge.delivery.settlement.outcomes import (
    Applied,
    Claimed,
    ClaimResult,
    Failed,
    Outcome,
    PartReceipt,
    ReceiptEvent,
    Submitted,
)
from bridge.delivery.settlement.receipt_fields import receipt_error, utc_date
from bridge.delivery.settlement.relay import Relay
from bridge.delivery.settlement.statements import statements
from bridge.ids import timestamp_ms
from bridge.redis import keys as redis_keys
from bridge.redis.outbox import OutboundMessage
from bridge.redis.stats import count_transitions
from bridge.storage.batch import executemany, fetch_rows
from bridge.storage.db import Database
from bridge.storage.driver import DriverCursor
from bridge.storage.models import messages
from bridge.storage.states import UNSENT, MessageState
from bridge.telemetry.metrics import observe_delivered
from smpp.codec.receipt import Receipt

log = logging.getLogger(__name__)

ULID_LENGTH = 26  # our message ids (bridge.ids); others carry no time
_CHUNK = 2000  # ids per IN (...): far below SQLite's and PostgreSQL's parameter limits
TRANSACTION_ATTEMPTS = 3  # a deadlock victim / lock timeout is retried this often


class StaleRows(RuntimeError):
    """A guarded UPDATE matched fewer rows than were locked: retried (should never happen)."""


def _chunks(items: list, size: int = _CHUNK) -> Iterable[list]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class Settlement:
    """Claims, outcomes, receipts and expiry over one Database and one Redis client."""

    def __init__(
        self,
        db: Database,
        redis,
        *,
        clock: Callable[[], float] = time.time,
        map_ttl: int = DEFAULT_MAP_TTL,
        orphan_ttl: int = DEFAULT_ORPHAN_TTL,
    ) -> None:
        self._db = db
        self._redis = redis
        self._clock = clock
        self.receipts = ReceiptBook(redis, map_ttl=map_ttl, orphan_ttl=orphan_ttl, clock=clock)
        self.relay = Relay(db, redis, clock=clock)
        self._sql = statements(db.engine.dialect)

    # --- claiming -------------------------------------------------------------------------
    def claim(
        self, batch: Sequence[OutboundMessage], *, recovered: bool, connection: str | None = None
    ) -> ClaimResult:
        """Move the batch's messages into the engine with one UPDATE ... RETURNING.

        Takes rows in accepted|queued; a fresh entry (recovered=False) only when no worker
        claimed the message before (attempts = 0), so a re-enqueued duplicate entry of a message
        in flight elsewhere is reported as a duplicate. recovered=True (XAUTOCLAIM from a dead
        consumer) takes any attempts and flags possible_duplicate when attempts becomes > 1.
        A message listed twice in the batch is claimed (and listed) once.
        """
        first: dict[str, OutboundMessage] = {}
        for msg in batch:
            first.setdefault(msg.message_id, msg)
        if not first:
            return ClaimResult([], [])
        now = rules.utc(self._clock())
        returned = self._retrying(lambda: self._claim_rows(list(first), recovered, connection, now))
        claimed = [Claimed(first[mid], attempts, bool(dup)) for mid, attempts, dup in returned]
        got = {c.message.message_id for c in claimed}
        flagged = sum(1 for c in claimed if recovered and c.attempts > 1)
        if flagged:
            log.warning("%d possible duplicate(s) re-sent after recovery", flagged)
            self._count_duplicates(flagged)
        return ClaimResult(claimed, [mid for mid in first if mid not in got])

    def _claim_rows(self, ids: list[str], recovered: bool, connection: str | None, now):
        stmt = self._sql.claim[recovered]
        params = stmt.params({"ids": self._sql.ids(ids), "conn": connection, "now": now})
        with self._transaction() as (_conn, cur):
            return cur.fetch_all(stmt, params)

    def release(self, message_ids: Iterable[str]) -> int:
        """Undo the claim of messages never written to a socket (graceful stop): attempts - 1.

        Only rows still ``queued``; returns how many. Their entries, recovered later, are then
        not flagged as possible duplicates.
        """
        return self._update_each(
            message_ids,
            [messages.c.state == MessageState.QUEUED, messages.c.attempts > 0],
            attempts=messages.c.attempts - 1,
        )

    def mark_possible_duplicates(self, message_ids: Iterable[str]) -> int:
        """Flag messages that may have reached the SMSC twice; returns how many were new."""
        flagged = self._update_each(
            message_ids, [messages.c.possible_duplicate == false()], possible_duplicate=True
        )
        if flagged:
            self._count_duplicates(flagged)
        return flagged

    def _update_each(self, message_ids: Iterable[str], where: list, **values) -> int:
        """UPDATE these messages (where ``where`` holds) in one retried transaction, in
        chunks of ids; returns how many rows changed."""
        ids = list(dict.fromkeys(message_ids))
        if not ids:
            return 0

        def txn() -> int:
            with self._db.begin() as conn:
                return sum(
                    conn.execute(
                        update(messages).where(messages.c.id.in_(chunk), *where).values(**values)
                    ).rowcount
                    for chunk in _chunks(ids)
                )

        return self._retrying(txn)

    def _count_duplicates(self, n: int) -> None:
        try:
            self._redis.incrby(redis_keys.POSSIBLE_DUPLICATES, n)
        except RedisError as exc:  # the rows carry the flag; only the running counter is short
            log.warning("could not count %d possible duplicate(s) in Redis: %s", n, exc)

    def _count_transitions(self, events: Sequence[dict]) -> None:
        """For the status document's messages by state (bridge.redis.stats)."""
        try:
            count_transitions(self._redis, (e["state"] for e in events), clock=self._clock)
        except RedisError as exc:  # the rows are stored; only the NOC's counts are short
            log.warning("could not count %d transition(s) in Redis: %s", len(events), exc)

    # --- outcomes -------------------------------------------------------------------------
    def apply(self, outcomes: Sequence[Outcome]) -> Applied:
        """Store a batch of outcomes in ONE transaction; refunds for Failed rows changed now.

        Statements, whatever the batch size (the ids of a batch are one parameter):
        SELECT ... FOR UPDATE of the messages (ordered by id: no deadlocks between workers);
        [SELECT their part rows; INSERT new part rows; UPDATE upgraded part rows] for receipts;
        one executemany UPDATE of the changed messages guarded by ``state = <state read>``;
        one executemany INSERT of message_events; [INSERT refunds ON CONFLICT DO NOTHING
        RETURNING; one executemany UPDATE of balances]; for messages with a callback URL whose
        state changed, [SELECT their details; one executemany INSERT into webhook_outbox]; and
        [DELETE the outbox rows relayed since the last transaction]. All but the refunds'
        (money, through SQLAlchemy's insertmanyvalues) are compiled once and run on the DBAPI
        cursor (statements). After the commit the new events are XADDed (a Redis failure
        leaves them to the outbox sweep).
        """
        outcomes = list(outcomes)
        if not outcomes:
            return Applied()
        relayed = self.relay.take_relayed()
        try:
            p, refunded, events = self._retrying(lambda: self._apply_once(outcomes, relayed))
        except BaseException:
            self.relay.give_back(relayed)
            raise
        self.relay.publish(events)
        observe_delivered(self._delivery_latencies(p.changed()))
        if p.missing:
            log.warning(
                "outcomes for %d unknown message id(s) ignored, e.g. %s",
                len(p.missing),
                p.missing[0],
            )
        if p.new_duplicates:
            self._count_duplicates(p.new_duplicates)
        self._count_transitions(p.events)
        changed = [r.id for r in p.changed()]
        changed_set = set(changed)
        ids = list(dict.fromkeys(o.message_id for o in outcomes))
        settled = list(
            dict.fromkeys(o.message_id for o in outcomes if isinstance(o, (Submitted, Failed)))
        )
        return Applied(changed, [i for i in ids if i not in changed_set], refunded, settled)

    def _delivery_latencies(self, changed: list[rules.Row]) -> list[tuple[str, float]]:
        """(connection, seconds from acceptance (the time in the message id, the instant of
        created_at) to now) of the messages this commit moved to delivered (the
        accept-to-delivered histogram)."""
        now = self._clock()
        latencies = []
        for row in changed:
            if row.state != MessageState.DELIVERED or row.old_state == MessageState.DELIVERED:
                continue
            if len(row.id) == ULID_LENGTH:
                try:
                    latencies.append((row.connection or "", now - timestamp_ms(row.id) / 1000))
                except ValueError:  # not one of our ids (a test's, an import's): no time in it
                    continue
        return latencies

    def _apply_once(self, outcomes: list[Outcome], relayed: list[str]):
        now = rules.utc(self._clock())
        ids = sorted({o.message_id for o in outcomes})
        receipt_ids = {o.message_id for o in outcomes if isinstance(o, PartReceipt)}
        sql = self._sql
        with self._transaction() as (conn, cur):
            found = {
                r[0]: r for r in fetch_rows(cur, sql.lock, sql.lock.params({"ids": sql.ids(ids)}))
            }
            rows = {i: rules.Row.from_values(found[i]) for i in ids if i in found}  # in id order
            parts = self._load_parts(cur, [i for i in ids if i in receipt_ids and i in rows])
            p = rules.plan(rows, parts, outcomes)
            self._write(cur, p, now)
            refunded = money.refund(conn, [r for r in p.changed() if r.refund], now)
            events = self._outbox(cur, p, now)
            if relayed:
                cur.execute(sql.outbox_delete, sql.outbox_delete.params({"ids": sql.ids(relayed)}))
        return p, refunded, events

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[tuple[Connection, DriverCursor]]:
        """``Database.begin()`` (the write lock, BEGIN IMMEDIATE on SQLite) and a cursor on
        its DBAPI connection for the compiled statements (statements)."""
        with self._db.begin() as conn:
            cur = DriverCursor(conn)
            try:
                yield conn, cur
            finally:
                cur.close()

    def _outbox(self, cur: DriverCursor, p: rules.Plan, now) -> list[notify.OutboxEvent]:
        """The webhook events of this plan, inserted into the outbox (inside the transaction)."""
        ids = [row.id for row, _ in notify.wanted(p.changed())]
        if not ids:
            return []
        sql = self._sql
        details = {
            mid: notify.Details(batch_id, number, reference, currency, created_at)
            for mid, batch_id, number, reference, created_at, currency in fetch_rows(
                cur, sql.details, sql.details.params({"ids": sql.ids(ids)})
            )
        }
        events = notify.build(p, details, now)
        executemany(cur, sql.outbox_insert, [e.row() for e in events])
        return events

    def _load_parts(self, cur: DriverCursor, ids: list[str]) -> dict:
        if not ids:
            return {}
        sql = self._sql
        return {
            (mid, index): rules.Part(stat, state, bool(final), done_at)
            for mid, index, stat, state, final, done_at in fetch_rows(
                cur, sql.parts, sql.parts.params({"ids": sql.ids(ids)})
            )
        }

    def _write(self, cur: DriverCursor, p: rules.Plan, now) -> None:
        sql = self._sql
        executemany(cur, sql.part_insert, p.part_inserts)
        executemany(
            cur,
            sql.part_upgrade,
            [{**u, "b_mid": u["message_id"], "b_part": u["part_index"]} for u in p.part_updates],
        )
        changed = p.changed()
        if changed:
            matched = executemany(cur, sql.update, [r.params(now) for r in changed])
            if matched != len(changed):
                raise StaleRows(
                    f"guarded UPDATE matched {matched} of {len(changed)}"
                    " locked rows; retrying the batch"
                )
        executemany(cur, sql.event_insert, p.events)

    # --- receipts -------------------------------------------------------------------------
    def map_submit_ids(
        self, connection: str, form: str, items: Sequence[tuple[str, int, str]]
    ) -> list[ReceiptEvent]:
        """Write (message_id, part_index, smsc_id) correlations; returns orphans now matched."""
        return self.receipts.map_submit_ids(connection, form, items)

    def correlate(
        self, connection: str, form: str, receipts: Sequence[Receipt]
    ) -> tuple[list[ReceiptEvent], int]:
        """Match receipts to (message, part); returns (matched events, number parked)."""
        now = self._clock()
        return self.receipts.correlate(connection, form, [(r, now) for r in receipts])

    @staticmethod
    def receipt_outcomes(events: Sequence[ReceiptEvent]) -> list[PartReceipt]:
        """One PartReceipt per event; apply() aggregates the parts of multipart messages."""
        return [
            PartReceipt(
                message_id=e.message_id,
                part_index=e.part_index,
                smsc_message_id=e.smsc_message_id,
                stat=e.receipt.stat,
                state=e.receipt.state,
                final=e.receipt.final,
                error_code=receipt_error(e.receipt),
                done_at=utc_date(e.receipt.done_date),
                submit_date=utc_date(e.receipt.submit_date),
                at=e.at,
            )
            for e in events
        ]

    # --- expiry ---------------------------------------------------------------------------
    def expire_overdue(self, *, grace_seconds: float, limit: int = 1000) -> list[str]:
        """Expire (and refund) accepted|queued messages past expires_at + grace; their ids.

        For messages no stream entry will bring back (lost entries). Keep the grace above the
        worker's retry horizon: a message a worker still holds would be refunded and then
        submitted anyway (the audit would report it).
        """
        now = self._clock()
        cutoff = rules.utc(now) - timedelta(seconds=grace_seconds)
        with self._db.connect() as conn:
            ids = list(
                conn.execute(
                    select(messages.c.id)
                    .where(messages.c.state.in_(UNSENT), messages.c.expires_at < cutoff)
                    .order_by(messages.c.expires_at)
                    .limit(limit)
                ).scalars()
            )
        if not ids:
            return []
        applied = self.apply(
            [Failed(mid, MessageState.EXPIRED, "validity elapsed", now) for mid in ids]
        )
        return applied.changed_ids

    # --- plumbing -------------------------------------------------------------------------
    @staticmethod
    def _retrying(txn: Callable):
        """Run a transaction function, retrying deadlock victims / lock timeouts / stale rows."""
        for attempt in range(1, TRANSACTION_ATTEMPTS + 1):
            try:
                return txn()
            except (OperationalError, StaleRows) as exc:
                if attempt == TRANSACTION_ATTEMPTS:
                    raise
                log.warning(
                    "settlement transaction failed (attempt %d of %d), retrying: %s",
                    attempt,
                    TRANSACTION_ATTEMPTS,
                    exc,
                )
                time.sleep(0.05 * attempt)
        raise AssertionError("unreachable")
