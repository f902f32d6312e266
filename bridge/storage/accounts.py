"""Accounts: creation, lookup and password authentication.

Passwords are hashed with argon2id (argon2-cffi's PasswordHasher: salted, deliberately slow).
The legacy /v1 API sends the password with every request, so successful verifications are
cached in-process for a short time (:class:`PasswordCache`), keyed by the username, a SHA-256 of
the password *and the stored hash*: changing the password (new hash) or any failed attempt
never hits the cache, and a deactivated account is refused before the cache is consulted.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Connection, RowMapping, select
from sqlalchemy.exc import IntegrityError

from bridge.errors import InvalidInput, NotFound, Unauthorized
from bridge.sender_id import validate_sender_id
from bridge.storage import ledger
from bridge.storage.models import accounts
from bridge.storage.passwords import BoundedHasher
from bridge.storage.webhook_secrets import generate_secret

USERNAME_MAX = 64


@dataclass(frozen=True)
class AccountInfo:
    """What the API and the send path need to know about an account."""

    id: int
    username: str
    currency: str
    balance: Decimal
    rate_limit_per_minute: int | None  # None = config default
    active: bool
    default_sender_id: str | None
    allowed_sender_ids: tuple[str, ...]
    callback_url: str | None
    callback_events: str | None = None  # "final" | "all" for its sends; None = "final"
    inbound_url: str | None = None  # where its inbound (MO) messages are POSTed; None = nowhere


def info_from_row(row: RowMapping) -> AccountInfo:
    return AccountInfo(
        id=row["id"],
        username=row["username"],
        currency=row["currency"],
        balance=row["balance"],
        rate_limit_per_minute=row["rate_limit_per_minute"],
        active=bool(row["active"]),
        default_sender_id=row["default_sender_id"],
        allowed_sender_ids=tuple(row["allowed_sender_ids"] or ()),
        callback_url=row["callback_url"],
        callback_events=row["callback_events"],
        inbound_url=row["inbound_url"],
    )


def validate_username(username: str) -> str:
    username = username.strip()
    if (
        not username
        or len(username) > USERNAME_MAX
        or not username.isprintable()
        or " " in username
    ):
        raise InvalidInput(
            f"username must be 1 to {USERNAME_MAX} characters without spaces, got {username!r}.",
            field="username",
        )
    return username


def create_account(
    conn: Connection,
    hasher: PasswordHasher,
    username: str,
    password: str,
    *,
    now: datetime,
    currency: str,
    balance: Decimal = Decimal(0),
    sender_id: str | None = None,
    allowed_sender_ids: Iterable[str] = (),
    callback_url: str | None = None,
    rate_limit_per_minute: int | None = None,
    callback_events: str | None = None,
) -> int:
    """Insert an account (and a top-up ledger row for an opening balance); returns its id."""
    username = validate_username(username)
    if not password:
        raise InvalidInput("password must not be empty.", field="password")
    if balance < 0:
        raise InvalidInput("balance must not be negative.", field="balance")
    if rate_limit_per_minute is not None and rate_limit_per_minute < 1:
        raise InvalidInput(
            "rate_limit_per_minute must be at least 1.", field="rate_limit_per_minute"
        )
    allowed = [validate_sender_id(s) for s in allowed_sender_ids]
    try:
        inserted = conn.execute(
            accounts.insert().values(
                username=username,
                password_hash=hasher.hash(password),
                balance=Decimal(0),
                currency=currency,
                default_sender_id=validate_sender_id(sender_id) if sender_id else None,
                allowed_sender_ids=allowed,
                callback_url=callback_url,
                callback_events=callback_events,
                rate_limit_per_minute=rate_limit_per_minute,
                webhook_secret=generate_secret(),
                active=True,
                created_at=now,
                updated_at=now,
            )
        ).inserted_primary_key
    except IntegrityError:
        raise InvalidInput(
            f"An account named {username!r} already exists.", field="username"
        ) from None
    if inserted is None:  # SQLAlchemy gives every single-row INSERT one
        raise RuntimeError("the accounts INSERT reported no primary key")
    account_id = inserted[0]
    if balance > 0:
        ledger.topup(conn, account_id, balance, now, note="opening balance")
    return account_id


def load(conn: Connection, account_id: int) -> AccountInfo:
    row = conn.execute(select(accounts).where(accounts.c.id == account_id)).mappings().first()
    if row is None:
        raise NotFound(f"No account with id {account_id}.")
    return info_from_row(row)


def load_by_username(conn: Connection, username: str) -> AccountInfo:
    row = conn.execute(select(accounts).where(accounts.c.username == username)).mappings().first()
    if row is None:
        raise NotFound(f"No account named {username!r}.")
    return info_from_row(row)


class PasswordCache:
    """A bounded LRU of recent successful verifications, each valid for ``ttl`` seconds."""

    def __init__(
        self, ttl: float = 60.0, size: int = 10_000, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._ttl, self._size, self._clock = ttl, size, clock
        self._entries: OrderedDict[tuple[str, str, str], float] = OrderedDict()
        self._lock = threading.Lock()

    @staticmethod
    def key(username: str, password: str, stored_hash: str) -> tuple[str, str, str]:
        return username, hashlib.sha256(password.encode("utf-8")).hexdigest(), stored_hash

    def hit(self, key: tuple[str, str, str]) -> bool:
        with self._lock:
            expires = self._entries.get(key)
            if expires is None:
                return False
            if expires < self._clock():
                del self._entries[key]
                return False
            self._entries.move_to_end(key)
            return True

    def add(self, key: tuple[str, str, str]) -> None:
        with self._lock:
            self._entries[key] = self._clock() + self._ttl
            self._entries.move_to_end(key)
            while len(self._entries) > self._size:
                self._entries.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


def login_row(conn: Connection, username: str) -> RowMapping | None:
    """The account row a login names (None if there is none), read before the password check
    so no database connection is held while the hash runs."""
    if not username:
        return None
    return conn.execute(select(accounts).where(accounts.c.username == username)).mappings().first()


def check_password(
    row: RowMapping | None,
    hasher: BoundedHasher,
    cache: PasswordCache,
    username: str,
    password: str,
) -> AccountInfo:
    """The account of ``row`` if ``password`` is its password; Unauthorized("Unauthorized.") for
    a missing, disabled or wrong one. A missing or disabled account still spends a verify (on
    the hasher's dummy hash), so the answer's timing does not tell which usernames exist."""
    if not username or not password:
        raise Unauthorized("Unauthorized.")
    if row is None or not row["active"]:
        hasher.verify_dummy(password)
        raise Unauthorized("Unauthorized.")
    key = PasswordCache.key(username, password, row["password_hash"])
    if not cache.hit(key):
        try:
            hasher.verify(row["password_hash"], password)
        except (VerificationError, InvalidHashError):
            raise Unauthorized("Unauthorized.") from None
        cache.add(key)
    return info_from_row(row)
