"""Storing an MO before the session acknowledges it: the worker's ``on_mo``.

The session thread calls :meth:`InboundStore.store` with each whole message (parts already
reassembled). It runs one short write transaction: the INSERT of the message (a redelivery with
the same dedupe key inserts nothing), and for a routed STOP/START word the opt-out row. Every
wait in it is bounded (``timeout`` seconds: the SQLite write lock and busy timeout, PostgreSQL's
lock and statement timeouts), and any failure raises, so the session answers ESME_RX_T_APPN and
the SMSC delivers the message again later: an MO is acknowledged only once it is stored.

The dedupe key (:func:`dedupe_key`) is a SHA-256 over the connection, handset, destination,
the reassembly identity (concatenation ref and part count, or "single"), the text, and the
``inbound_dedupe_seconds`` time bucket; the store also refuses the key of the previous bucket,
so a redelivery within one window is always caught and one within two windows usually is.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, event, select
from sqlalchemy.dialects import postgresql, sqlite

from bridge.accept.numbers import to_e164
from bridge.config import Config
from bridge.ids import IdGenerator
from bridge.inbound.optouts import add_optout, remove_optout
from bridge.inbound.routing import OPTIN, OPTOUT, InboundRouter, digits
from bridge.storage.db import Database
from bridge.storage.models import accounts, inbound_messages
from smpp.session.mo import MoMessage

log = logging.getLogger(__name__)

STORE_TIMEOUT = 2.0  # seconds the MO transaction may wait for locks before it gives up
ACCOUNTS_TTL = 10.0  # seconds the routed accounts' ids and inbound_url are cached


@dataclass(frozen=True)
class StoredMo:
    """What was stored (``duplicate``: nothing new, an earlier copy has the key)."""

    id: str
    account_id: int | None
    number: str
    to: str
    keyword: str | None
    text: str
    parts: int
    action: str | None
    received_at: datetime
    webhook_url: str | None
    duplicate: bool = False


def handset(source: str, region: str) -> str:
    """The sender as stored and matched against opt-outs: E.164 when it reads as a mobile
    number, else +digits for any digit string, else as sent (an alphanumeric sender)."""
    e164 = to_e164(source, region) or to_e164("+" + digits(source), region)
    if e164:
        return e164
    d = digits(source)
    return "+" + d if d.isdigit() else source.strip()


def dedupe_key(connection: str, mo: MoMessage, bucket: int) -> str:
    identity = f"{mo.ref}/{mo.parts}" if mo.ref is not None else "single"
    raw = "\x1f".join(
        (connection, mo.source, mo.dest, identity, hashlib.sha256(mo.text.encode()).hexdigest())
    )
    return hashlib.sha256(f"{raw}\x1f{bucket}".encode()).hexdigest()


def bounded_database(config: Config, timeout: float = STORE_TIMEOUT) -> Database:
    """A Database for the session threads' MO writes whose every wait is ``timeout``."""
    db = Database.from_config(config, pool_size=4, max_overflow=4, lock_wait=timeout)
    ms = int(timeout * 1000)

    @event.listens_for(db.engine, "connect")
    def _timeouts(dbapi_conn, _record) -> None:
        cursor = dbapi_conn.cursor()
        if db.is_sqlite:
            cursor.execute(f"PRAGMA busy_timeout={ms}")
        else:
            cursor.execute(f"SET lock_timeout = {ms}")
            cursor.execute(f"SET statement_timeout = {ms}")
            dbapi_conn.commit()
        cursor.close()

    return db


class InboundStore:
    """Stores MO (routed, deduplicated, opt-outs applied) and hands stored ones to ``notify``."""

    def __init__(
        self,
        config: Config,
        db: Database,
        *,
        router: InboundRouter | None = None,
        ids: IdGenerator | None = None,
        clock: Callable[[], float] = time.time,
        notify: Callable[[StoredMo], None] | None = None,
    ) -> None:
        self._config, self._db, self._clock = config, db, clock
        self._router = router or InboundRouter.from_config(config)
        self._ids = ids or IdGenerator(clock=clock)
        self._notify = notify
        self._window = config.inbound_dedupe_seconds
        self._accounts: dict[str, tuple[int, str | None]] = {}
        self._accounts_until = 0.0
        self._lock = threading.Lock()
        self.stored = self.duplicates = self.unrouted = 0  # since start (this process)

    def store(self, connection: str, mo: MoMessage) -> StoredMo:
        """Store one MO (raises on any database error: the caller must not acknowledge it)."""
        now = self._clock()
        decision = self._router.route(mo.dest, mo.text)
        bucket = int(now // self._window)
        key = dedupe_key(connection, mo, bucket)
        with self._db.begin() as conn:
            known = self._account(conn, decision.account, now)
            account_id, url = known if known else (None, None)
            if decision.account is not None and known is None:
                log.warning(
                    "MO to %s routed to account %r, which does not exist (or is disabled): "
                    "kept unrouted",
                    mo.dest,
                    decision.account,
                )
            action = decision.action if account_id is not None else None
            row: dict[str, Any] = {
                "id": self._ids.new(),
                "account_id": account_id,
                "connection": connection,
                "number": handset(mo.source, self._config.default_region),
                "to": digits(mo.dest)[:24],
                "keyword": decision.keyword,
                "text": mo.text,
                "parts": mo.parts,
                "data_coding": mo.data_coding,
                "action": action,
                "dedupe_key": key,
                "received_at": datetime.fromtimestamp(now, UTC),
                "webhook_url": url,
            }
            stored = StoredMo(**{k: v for k, v in row.items() if k in _STORED})
            earlier = dedupe_key(connection, mo, bucket - 1)
            if self._seen(conn, earlier) or not self._insert(conn, row):
                self.duplicates += 1
                return _duplicate(stored)
            if action is not None and account_id is not None:
                self._apply_action(conn, account_id, row)
        self.stored += 1
        if account_id is None:
            self.unrouted += 1
        if self._notify is not None and url:
            self._notify(stored)
        return stored

    # --- the statements ---------------------------------------------------------------------
    def _insert(self, conn: Connection, row: dict) -> bool:
        """INSERT ... ON CONFLICT (dedupe_key) DO NOTHING; True when the row went in."""
        dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
        stmt = dialect.insert(inbound_messages).values(row)
        stmt = stmt.on_conflict_do_nothing(index_elements=["dedupe_key"])
        # RETURNING, not rowcount: psycopg reports -1 for INSERT ... ON CONFLICT here
        return conn.execute(stmt.returning(inbound_messages.c.id)).first() is not None

    @staticmethod
    def _seen(conn: Connection, key: str) -> bool:
        query = select(inbound_messages.c.id).where(inbound_messages.c.dedupe_key == key)
        return conn.execute(query).first() is not None

    def _apply_action(self, conn: Connection, account_id: int, row: dict) -> None:
        number = row["number"]
        if row["action"] == OPTOUT:
            add_optout(conn, account_id, number, "sms", row["received_at"], row["id"])
            log.info("%s opted out of account %d (inbound %s)", number, account_id, row["id"])
        elif row["action"] == OPTIN:
            remove_optout(conn, account_id, number)
            log.info("%s opted back in to account %d (inbound %s)", number, account_id, row["id"])

    def _account(self, conn: Connection, username: str | None, now: float):
        """(id, inbound_url) of an active routed account, cached ACCOUNTS_TTL; None if none."""
        if username is None:
            return None
        with self._lock:
            if now >= self._accounts_until:
                names = sorted(self._router.accounts)
                rows = conn.execute(
                    select(accounts.c.username, accounts.c.id, accounts.c.inbound_url).where(
                        accounts.c.username.in_(names), accounts.c.active.is_(True)
                    )
                ).all()
                self._accounts = {r.username: (r.id, r.inbound_url) for r in rows}
                self._accounts_until = now + ACCOUNTS_TTL
            return self._accounts.get(username)


_STORED = {
    "id",
    "account_id",
    "number",
    "to",
    "keyword",
    "text",
    "parts",
    "action",
    "received_at",
    "webhook_url",
}


def _duplicate(stored: StoredMo) -> StoredMo:
    return StoredMo(**{**stored.__dict__, "duplicate": True})
