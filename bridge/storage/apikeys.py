"""API keys: ``sb_<key id>_<secret>``, stored only as a SHA-256 hash.

The secret is 32 random bytes (256 bits), so a fast hash is enough: a slow password hash exists
to stop guessing *low-entropy* secrets, and 2**256 cannot be guessed at any speed. That keeps
the per-request check to one indexed SELECT, and the :class:`KeyCache` removes even that for
``ttl`` (<= 5 s) seconds. Consequence, by design: a revocation takes effect at once in the
process that revoked (it evicts its cache) and within ``ttl`` seconds in every other process.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import string
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection, select, update

from bridge.errors import InvalidInput, Unauthorized
from bridge.storage.models import accounts, api_keys

PREFIX = "sb_"
KEY_ID_LENGTH = 8
_KEY_ID_ALPHABET = string.ascii_lowercase + string.digits
MIN_EXPIRY_DAYS, MAX_EXPIRY_DAYS = 1, 365


@dataclass(frozen=True)
class KeyInfo:
    """A verified key: whose it is, until when, and the account's rate limit (None = default)."""

    key_id: str
    account_id: int
    expires_at: datetime
    rate_limit_per_minute: int | None


@dataclass(frozen=True)
class NewKey:
    """A freshly made key; ``api_key`` is shown once and never stored."""

    api_key: str
    key_id: str
    expires_at: datetime


def digest(raw_key: str) -> str:
    return hashlib.sha256(raw_key.encode("utf-8")).hexdigest()


def parse_key_id(raw_key: str) -> str | None:
    """The key id of a well-formed key, else None."""
    if (
        len(raw_key) < len(PREFIX) + KEY_ID_LENGTH + 2
        or not raw_key.startswith(PREFIX)
        or raw_key[len(PREFIX) + KEY_ID_LENGTH] != "_"
    ):
        return None
    return raw_key[len(PREFIX) : len(PREFIX) + KEY_ID_LENGTH]


def check_expiry_days(expiry_days: object) -> int:
    if (
        isinstance(expiry_days, bool)
        or not isinstance(expiry_days, int)
        or not MIN_EXPIRY_DAYS <= expiry_days <= MAX_EXPIRY_DAYS
    ):
        raise InvalidInput("expiry_days must be between 1 and 365.", field="expiry_days")
    return expiry_days


def create_key(conn: Connection, account_id: int, expiry_days: int, now: datetime) -> NewKey:
    """Insert a new key for the account and return it (the only time the secret exists)."""
    expiry_days = check_expiry_days(expiry_days)
    key_id = "".join(secrets.choice(_KEY_ID_ALPHABET) for _ in range(KEY_ID_LENGTH))
    raw = f"{PREFIX}{key_id}_{secrets.token_urlsafe(32)}"
    expires_at = now + timedelta(days=expiry_days)
    conn.execute(
        api_keys.insert().values(
            key_id=key_id,
            account_id=account_id,
            key_hash=digest(raw),
            created_at=now,
            expires_at=expires_at,
        )
    )
    return NewKey(api_key=raw, key_id=key_id, expires_at=expires_at)


def revoke(conn: Connection, account_id: int, key_id: str | None, now: datetime) -> list[str]:
    """Revoke the account's active key ``key_id`` (or all of them); returns the ids revoked."""
    stmt = (
        update(api_keys)
        .where(api_keys.c.account_id == account_id, api_keys.c.revoked_at.is_(None))
        .values(revoked_at=now)
        .returning(api_keys.c.key_id)
    )
    if key_id is not None:
        stmt = stmt.where(api_keys.c.key_id == key_id)
    return list(conn.execute(stmt).scalars())


def lookup(conn: Connection, raw_key: str, now: datetime) -> KeyInfo:
    """Verify a key against the database; Unauthorized says which problem it has."""
    key_id = parse_key_id(raw_key)
    if key_id is None:
        raise Unauthorized("Invalid API key.")
    row = conn.execute(
        select(
            api_keys.c.key_hash,
            api_keys.c.account_id,
            api_keys.c.expires_at,
            api_keys.c.revoked_at,
            accounts.c.active,
            accounts.c.rate_limit_per_minute,
        )
        .select_from(api_keys.join(accounts, accounts.c.id == api_keys.c.account_id))
        .where(api_keys.c.key_id == key_id)
    ).first()
    if row is None or not hmac.compare_digest(row.key_hash, digest(raw_key)):
        raise Unauthorized("Invalid API key.")
    if row.revoked_at is not None:
        raise Unauthorized("API key has been revoked.")
    if row.expires_at <= now:
        raise Unauthorized("API key has expired.")
    if not row.active:
        raise Unauthorized("Account is disabled.")
    return KeyInfo(key_id, row.account_id, row.expires_at, row.rate_limit_per_minute)


class KeyCache:
    """key id -> (digest, KeyInfo) for ``ttl`` seconds; only successful checks are cached."""

    def __init__(
        self, ttl: float = 5.0, size: int = 10_000, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._ttl, self._size, self._clock = ttl, size, clock
        self._entries: dict[str, tuple[str, KeyInfo, float]] = {}
        self._lock = threading.Lock()

    def get(self, raw_key: str) -> KeyInfo | None:
        key_id = parse_key_id(raw_key)
        if key_id is None:
            return None
        entry = self._entries.get(key_id)
        if entry is None or entry[2] < self._clock():
            return None
        if not hmac.compare_digest(entry[0], digest(raw_key)):
            return None
        return entry[1]

    def put(self, raw_key: str, info: KeyInfo) -> None:
        with self._lock:
            if len(self._entries) >= self._size:
                self._entries.clear()  # crude but bounded; refilled from the database
            self._entries[info.key_id] = (digest(raw_key), info, self._clock() + self._ttl)

    def evict(self, key_ids: list[str] | None = None) -> None:
        """Forget some keys (after a revocation here) or all of them."""
        with self._lock:
            if key_ids is None:
                self._entries.clear()
            for key_id in key_ids or ():
                self._entries.pop(key_id, None)


@dataclass(frozen=True)
class KeyRecord:
    """A stored key as the admin sees it (never the secret)."""

    key_id: str
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None
    last_used_at: datetime | None

    @property
    def prefix(self) -> str:
        return f"{PREFIX}{self.key_id}"


def list_keys(conn: Connection, account_id: int) -> list[KeyRecord]:
    """Every key of the account, oldest first."""
    rows = conn.execute(
        select(
            api_keys.c.key_id,
            api_keys.c.created_at,
            api_keys.c.expires_at,
            api_keys.c.revoked_at,
            api_keys.c.last_used_at,
        )
        .where(api_keys.c.account_id == account_id)
        .order_by(api_keys.c.id)
    )
    return [KeyRecord(*row) for row in rows]
