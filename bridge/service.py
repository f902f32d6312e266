"""BridgeService: the one facade the API process and the admin CLI call.

It owns the per-process caches (verified passwords, API keys, account settings), the
background flusher (``queued`` marks, key last-used times) and the outbox sweeper thread.
Database outages surface as :class:`~bridge.errors.DependencyDown` (HTTP 503, nothing charged);
a Redis outage after the commit does not fail a send (the sweeper covers it).
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

from argon2 import PasswordHasher
from sqlalchemy import select, update

from bridge.accept import callbacks
from bridge.accept.committer import GroupCommitter
from bridge.accept.flusher import Flusher
from bridge.accept.group import DB_DOWN, MAX_GROUP_SENDS
from bridge.accept.logins import LoginThrottle
from bridge.accept.send import Acceptor, SendResult, make_pricer, plan, without_opted_out
from bridge.accept.sweeper import Sweeper
from bridge.config import Config
from bridge.errors import DependencyDown, InvalidInput, NotFound, RateLimited, Unauthorized
from bridge.ids import IdGenerator
from bridge.inbound import inbox, optouts
from bridge.inbound.optouts import OptOut, opted_out
from bridge.redis.clients import make_redis, make_send_redis
from bridge.storage import accounts as acc
from bridge.storage import apikeys, ledger
from bridge.storage.accounts import AccountInfo
from bridge.storage.apikeys import KeyInfo, NewKey
from bridge.storage.db import Database
from bridge.storage.models import accounts
from bridge.storage.passwords import BoundedHasher
from bridge.telemetry.metrics import count_failed_login
from bridge.webhooks.ssrf import TargetError, check_target

log = logging.getLogger(__name__)

__all__ = [
    "AccountInfo",
    "BalanceInfo",
    "BridgeService",
    "KeyInfo",
    "NewKey",
    "SendResult",
    "open_service",
]

SETTINGS_TTL = 5.0  # seconds an account's sender ids / active flag are cached for sends
KEY_CACHE_TTL = 5.0  # seconds a verified API key is trusted without a database read
PASSWORD_CACHE_TTL = 60.0  # seconds a verified password is trusted (same stored hash only)
LAST_USED_EVERY = 60.0  # seconds between last_used_at writes for one key (per process)

_DB_DOWN = DB_DOWN
INBOUND_NOT_FOUND = "Inbound message not found."
OPTOUT_NOT_FOUND = "That number is not on this account's opt-out list."


@dataclass(frozen=True)
class BalanceInfo:
    username: str
    balance: Decimal
    currency: str


def _guard_db(method):
    """Turn "the database is unreachable" into DependencyDown (503; nothing was committed)."""

    @functools.wraps(method)
    def wrapper(*args, **kwargs):
        try:
            return method(*args, **kwargs)
        except _DB_DOWN as exc:
            log.error("database unavailable in %s: %s", method.__name__, exc)
            raise DependencyDown() from exc

    return wrapper


def _guard_db_once_more(*, repeatable: bool):
    """:func:`_guard_db` that first runs the method once more on a fresh connection when the
    server had dropped its own (``Database.once_more_if_gone``): ``repeatable`` for reads,
    after any dropped connection; else only before its one transaction's COMMIT (a lost
    COMMIT, or a failure whose statement is unknown, may have been applied)."""

    def decorate(method):
        @functools.wraps(method)
        def wrapper(self, *args, **kwargs):
            try:
                return self.db.once_more_if_gone(
                    lambda: method(self, *args, **kwargs), repeatable=repeatable
                )
            except _DB_DOWN as exc:
                log.error("database unavailable in %s: %s", method.__name__, exc)
                raise DependencyDown() from exc

        return wrapper

    return decorate


# a method that only reads: once more after any dropped connection
_guard_db_reading = _guard_db_once_more(repeatable=True)
# a method that writes nothing before its one transaction (``send``): once more only when the
# connection was gone before that transaction's COMMIT
_guard_db_retrying = _guard_db_once_more(repeatable=False)


class BridgeService:
    """Accounts, API keys, sending and the sweeper, over one Database and one Redis client."""

    def __init__(
        self,
        config: Config,
        db: Database,
        redis,
        *,
        clock: Callable[[], float] = time.time,
        ids: IdGenerator | None = None,
        run_sweeper: bool = True,
        hasher: PasswordHasher | None = None,
        group_max_sends: int = MAX_GROUP_SENDS,
        login_throttle: LoginThrottle | None = None,
        callback_checker: callbacks.CallbackChecker | None = None,
        send_redis=None,
    ) -> None:
        """``group_max_sends`` caps a group commit (1 = every send its own transaction);
        ``login_throttle`` counts failed logins (default: over ``redis`` with config's limits);
        ``callback_checker`` judges callback URLs (default: config's webhook_allow_networks);
        ``send_redis`` carries the accept path's XADDs (default: ``redis``; open_service gives
        it bridge.redis.clients.make_send_redis, whose short timeout bounds a send when Redis
        hangs), closed with the service."""
        self.config, self.db, self.redis = config, db, redis
        self._send_redis = send_redis
        self._clock = clock
        self._ids = ids or IdGenerator(clock=clock)
        self._hasher = hasher or PasswordHasher()
        self.verifier = BoundedHasher(
            self._hasher, config.password_hash_concurrency, config.password_hash_wait_seconds
        )
        self.logins = login_throttle or LoginThrottle.from_config(config, redis)
        self._passwords = acc.PasswordCache(ttl=PASSWORD_CACHE_TTL)
        self._keys = apikeys.KeyCache(ttl=KEY_CACHE_TTL)
        self._key_noted: dict[str, float] = {}
        self._settings: dict[int, tuple[AccountInfo, float]] = {}
        self._lock = threading.Lock()
        self._run_sweeper = run_sweeper
        self.flusher = Flusher(db, clock=clock)
        self.sweeper = Sweeper(config, db, redis, clock=clock)
        self._acceptor = Acceptor(
            config,
            db,
            redis if send_redis is None else send_redis,
            self.flusher,
            self._ids,
            clock,
            group_max_sends=group_max_sends,
        )
        self._pricer = make_pricer(config)
        self._check_callback = callback_checker or callbacks.CallbackChecker(
            config.webhook_allow_networks
        )

    # --- lifecycle ------------------------------------------------------------------------
    def start(self) -> None:
        """Start the flusher (and the sweeper thread unless run_sweeper=False); idempotent."""
        self.flusher.start()
        if self._run_sweeper and self.redis is not None:
            self.sweeper.start()

    def stop(self) -> None:
        """Stop the threads after a last flush (bounded waits)."""
        self.sweeper.stop()
        self.flusher.stop()

    def close(self) -> None:
        """stop(), then close the database pool and the Redis client."""
        self.stop()
        self.verifier.close()
        self.db.dispose()
        for client in (self.redis, self._send_redis):
            if client is not None:
                client.close()

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self._clock(), UTC)

    # --- accounts -------------------------------------------------------------------------
    @_guard_db
    def authenticate(self, username: str, password: str, address: str | None = None) -> AccountInfo:
        """The account of these credentials, or Unauthorized. With the client ``address`` (the
        API passes it) failed logins are throttled: a locked-out attempt is RateLimited (429)
        before its password is hashed (bridge.accept.logins). Hashing is bounded per process:
        HashingBusy (503) when no slot frees up in time (bridge.storage.passwords)."""
        if address is not None and username and password:
            lockout = self.logins.check(username, address)
            if lockout is not None:
                count_failed_login("locked_out")
                raise RateLimited(
                    retry_after=lockout.retry_after,
                    help=f"Too many failed logins for this {lockout.scope}; retry after "
                    f"{lockout.retry_after} s with the right password, or use an API key.",
                )
        with self.db.connect() as conn:
            row = acc.login_row(conn, username)
        try:
            account = acc.check_password(row, self.verifier, self._passwords, username, password)
        except Unauthorized:
            count_failed_login("bad_credentials")
            if address is not None and username and password:
                self.logins.failed(username, address)
            raise
        if address is not None:
            self.logins.succeeded(username, address)
        return account

    @_guard_db_reading
    def account(self, account_id: int) -> AccountInfo:
        with self.db.connect() as conn:
            return acc.load(conn, account_id)

    @_guard_db_reading
    def account_by_username(self, username: str) -> AccountInfo:
        with self.db.connect() as conn:
            return acc.load_by_username(conn, username)

    @_guard_db
    def create_account(
        self,
        username: str,
        password: str,
        *,
        balance: Decimal = Decimal(0),
        sender_id: str | None = None,
        allowed_sender_ids: Iterable[str] = (),
        callback_url: str | None = None,
        rate_limit_per_minute: int | None = None,
        currency: str | None = None,
        callback_events: str | None = None,
    ) -> AccountInfo:
        """A new active account; an opening balance is recorded as a top-up. A callback URL
        must pass the send path's rules (InvalidInput naming callback_url otherwise)."""
        if callback_url:
            self._check_callback(callback_url)
        if callback_events is not None:
            callback_events = callbacks.callback_events(callback_events, None)
        if rate_limit_per_minute is not None and (
            isinstance(rate_limit_per_minute, bool) or rate_limit_per_minute < 1
        ):  # 0 would fall back to the default unseen, a negative one refuse every request
            raise InvalidInput(
                f"rate_limit_per_minute must be at least 1, got {rate_limit_per_minute!r}.",
                field="rate_limit_per_minute",
            )
        with self.db.begin() as conn:
            account_id = acc.create_account(
                conn,
                self._hasher,
                username,
                password,
                now=self._now(),
                currency=currency or self.config.currency,
                balance=balance,
                sender_id=sender_id,
                allowed_sender_ids=allowed_sender_ids,
                callback_url=callback_url,
                rate_limit_per_minute=rate_limit_per_minute,
                callback_events=callback_events,
            )
            return acc.load(conn, account_id)

    @_guard_db
    def topup(self, account_id: int, amount: Decimal, note: str | None = None) -> Decimal:
        """Add money (a ledger row); returns the new balance."""
        with self.db.begin() as conn:
            return ledger.topup(conn, account_id, amount, self._now(), note)

    @_guard_db
    def set_active(self, account_id: int, active: bool) -> None:
        """Enable or disable an account (keys and passwords stop working at once here)."""
        self._update_account(account_id, active=active)

    @_guard_db
    def set_password(self, account_id: int, password: str) -> None:
        self._update_account(account_id, password_hash=self._hasher.hash(password))

    def _update_account(self, account_id: int, **values) -> None:
        with self.db.begin() as conn:
            done = conn.execute(
                update(accounts)
                .where(accounts.c.id == account_id)
                .values(updated_at=self._now(), **values)
            ).rowcount
        if not done:
            raise NotFound(f"No account with id {account_id}.")
        with self._lock:
            self._settings.pop(account_id, None)
        self._keys.evict()
        self._passwords.clear()

    def _account_settings(self, account_id: int) -> AccountInfo:
        """The account as of <= SETTINGS_TTL seconds ago (sender ids, currency, active)."""
        now = time.monotonic()
        cached = self._settings.get(account_id)
        if cached is not None and cached[1] > now:
            return cached[0]
        with self.db.connect() as conn:
            info = acc.load(conn, account_id)
        with self._lock:
            if len(self._settings) > 10_000:
                self._settings.clear()
            self._settings[account_id] = (info, now + SETTINGS_TTL)
        return info

    # --- API keys -------------------------------------------------------------------------
    @_guard_db_reading
    def verify_key(self, raw_key: str) -> KeyInfo:
        if not isinstance(raw_key, str) or not raw_key:
            raise Unauthorized("Invalid API key.")
        info = self._keys.get(raw_key)
        if info is None or info.expires_at <= self._now():
            with self.db.connect() as conn:
                info = apikeys.lookup(conn, raw_key, self._now())
            self._keys.put(raw_key, info)
        self._note_key_used(info.key_id)
        return info

    def _note_key_used(self, key_id: str) -> None:
        now = self._clock()
        last = self._key_noted.get(key_id)
        if last is None or now - last >= LAST_USED_EVERY:
            with self._lock:
                if len(self._key_noted) > 10_000:
                    self._key_noted.clear()
                self._key_noted[key_id] = now
            self.flusher.key_used(key_id)

    @_guard_db
    def generate_key(self, account_id: int, expiry_days: int = 90) -> NewKey:
        apikeys.check_expiry_days(expiry_days)
        with self.db.begin() as conn:
            self._require_account(conn, account_id)
            return apikeys.create_key(conn, account_id, expiry_days, self._now())

    @_guard_db
    def revoke_keys(self, account_id: int, key_id: str | None = None) -> int:
        with self.db.begin() as conn:
            revoked = apikeys.revoke(conn, account_id, key_id, self._now())
        self._keys.evict(revoked)
        return len(revoked)

    @_guard_db
    def regenerate_key(self, account_id: int, key_id: str | None, expiry_days: int = 90) -> NewKey:
        """Revoke (one key, or all with key_id=None) and make a new key, in one transaction."""
        apikeys.check_expiry_days(expiry_days)
        with self.db.begin() as conn:
            self._require_account(conn, account_id)
            revoked = apikeys.revoke(conn, account_id, key_id, self._now())
            new = apikeys.create_key(conn, account_id, expiry_days, self._now())
        self._keys.evict(revoked)
        return new

    @_guard_db_reading
    def list_keys(self, account_id: int) -> list[apikeys.KeyRecord]:
        """The account's keys (ids and dates only), oldest first."""
        with self.db.connect() as conn:
            return apikeys.list_keys(conn, account_id)

    @staticmethod
    def _require_account(conn, account_id: int) -> None:
        if conn.execute(select(accounts.c.id).where(accounts.c.id == account_id)).first() is None:
            raise NotFound(f"No account with id {account_id}.")

    # --- sending --------------------------------------------------------------------------
    @property
    def committer(self) -> GroupCommitter:
        """The group committer of sends without an Idempotency-Key (stats, hold() for tests)."""
        return self._acceptor.group.committer

    @_guard_db_retrying
    def send(
        self,
        account_id: int,
        numbers: str | list[str],
        message_body: str,
        *,
        sender_id: str | None = None,
        reference: str | None = None,
        callback_url: str | None = None,
        callback_events: str | None = None,
        idempotency_key: str | None = None,
        send_at: datetime | None = None,
        validity: int | None = None,
    ) -> SendResult:
        """Validate, price, charge, store and enqueue one request (see bridge.accept.send);
        ``send_at`` (aware) schedules it, ``validity`` (minutes) bounds its delivery."""
        account = self._account_settings(account_id)
        if not account.active:
            raise Unauthorized("Account is disabled.")
        p = plan(
            self.config,
            account,
            self._pricer,
            numbers,
            message_body,
            sender_id,
            reference,
            callback_url,
            callback_events,
            self._check_callback,
            send_at=send_at,
            validity=validity,
            now=self._clock(),
        )
        with self.db.kept_connection() as conn:  # one primary-key query
            refused = opted_out(conn, account.id, p.numbers)
            try:
                p = without_opted_out(p, refused)
            except InvalidInput:  # every number opted out: a repeat still gets its first answer
                replay = idempotency_key and self._acceptor.replay(
                    conn, account.id, idempotency_key, p.request_hash()
                )
                if replay:
                    return replay
                raise
        return self._acceptor.accept(account, p, idempotency_key)

    @_guard_db_reading
    def balance(self, account_id: int) -> BalanceInfo:
        with self.db.connect() as conn:
            row = conn.execute(
                select(accounts.c.username, accounts.c.balance, accounts.c.currency).where(
                    accounts.c.id == account_id
                )
            ).first()
        if row is None:
            raise NotFound(f"No account with id {account_id}.")
        return BalanceInfo(row.username, row.balance, row.currency)

    # --- inbound messages and opt-outs (bridge.inbound) ----------------------------------
    @_guard_db_reading
    def inbox(
        self,
        account_id: int | None,
        filters: inbox.InboxFilters,
        limit: int,
        cursor: str | None = None,
    ) -> inbox.InboxPage:
        """A page of the account's inbound messages, newest first (None: the unrouted ones)."""
        with self.db.connect() as conn:
            return inbox.list_inbox(conn, account_id, filters, limit, cursor)

    @_guard_db_reading
    def inbound_message(self, account_id: int, inbound_id: str) -> dict:
        """One of the account's inbound messages; NotFound for anyone else's."""
        with self.db.connect() as conn:
            entry = inbox.get_inbound(conn, account_id, inbound_id)
        if entry is None:
            raise NotFound(INBOUND_NOT_FOUND)
        return entry

    @_guard_db_reading
    def unrouted_count(self) -> int:
        with self.db.connect() as conn:
            return inbox.count_unrouted(conn)

    @_guard_db_reading
    def optouts(self, account_id: int, limit: int, cursor: str | None = None):
        with self.db.connect() as conn:
            return optouts.list_optouts(conn, account_id, limit, cursor)

    @_guard_db
    # OptOut, not optouts.OptOut: in the class body the method optouts hides the module
    def add_optout(self, account_id: int, number: str) -> tuple[OptOut, bool]:
        """Opt ``number`` (E.164) out of the account; (the entry, whether it is new)."""
        with self.db.begin() as conn:
            added = optouts.add_optout(conn, account_id, number, "api", self._now())
            entry = optouts.get_optout(conn, account_id, number)
        assert entry is not None
        return entry, added

    @_guard_db
    def remove_optout(self, account_id: int, number: str) -> None:
        """Opt ``number`` back in; NotFound when it is not on the account's list."""
        with self.db.begin() as conn:
            if not optouts.remove_optout(conn, account_id, number):
                raise NotFound(OPTOUT_NOT_FOUND)

    @_guard_db
    def set_inbound_url(self, account_id: int, url: str | None) -> None:
        """Where the account's inbound messages are POSTed (None: nowhere). The URL must pass
        the webhook SSRF rules now (InvalidInput naming inbound_url otherwise); the sender
        checks it again at every attempt."""
        if url:
            try:
                check_target(url, self.config.webhook_allow_networks)
            except TargetError as exc:
                raise InvalidInput(f"inbound_url is refused: {exc}", field="inbound_url") from None
        self._update_account(account_id, inbound_url=url or None)

    @_guard_db
    def set_callback_defaults(self, account_id: int, **changes: str | None) -> None:
        """Change the account's ``callback_url`` and/or ``callback_events`` (None clears: no
        default URL; events back to "final"), the defaults of its sends, checked as at create:
        the URL by the send path's rules, the events final or all (InvalidInput naming the
        field). Sends already accepted keep what they were accepted with."""
        unknown = set(changes) - {"callback_url", "callback_events"}
        if unknown or not changes:
            raise TypeError(f"set_callback_defaults takes callback_url, callback_events: {changes}")
        url, events = changes.get("callback_url"), changes.get("callback_events")
        if url:
            self._check_callback(url)
        if events is not None:
            changes["callback_events"] = callbacks.callback_events(events, None)
        self._update_account(account_id, **{k: v or None for k, v in changes.items()})

    # --- the sweeper ----------------------------------------------------------------------
    @_guard_db
    def sweep_once(self) -> int:
        return self.sweeper.sweep_once()

    @_guard_db
    def audit(self) -> list[str]:
        """Ledger inconsistencies (empty list = the books balance); see bridge.storage.ledger.audit."""
        with self.db.connect() as conn:
            return ledger.audit(conn)


def open_service(config: Config, **kwargs) -> BridgeService:
    """A BridgeService on config's database and Redis (not started: call .start())."""
    db = Database.from_config(config)
    if not config.redis_url:
        return BridgeService(config, db, None, **kwargs)
    return BridgeService(
        config,
        db,
        make_redis(config.redis_url),
        send_redis=make_send_redis(config.redis_url),
        **kwargs,
    )
