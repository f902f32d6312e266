"""Each account's webhook signing secret: made at account creation (or lazily for accounts
older than migration 0003_webhooks), rotated by ``smpp-bridge account rotate-webhook-secret``.

A secret is ``whsec_`` + base64 of 24 random bytes, the form Standard Webhooks libraries take.
After a rotation the previous secret keeps signing (a second ``v1,`` signature) until the
overlap (``webhook_secret_overlap_seconds``) ends, so receivers can switch without a gap.
"""

from __future__ import annotations

import base64
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection, select, update

from bridge.errors import NotFound
from bridge.storage.models import accounts

PREFIX = "whsec_"
SECRET_BYTES = 24


@dataclass(frozen=True)
class WebhookSecrets:
    current: str
    previous: str | None  # the secret before the last rotation, or None
    rotated_at: datetime | None  # when the last rotation happened

    def signing(self, now: datetime, overlap_seconds: float) -> tuple[str, ...]:
        """The secrets to sign with now: the current one, and the previous during the overlap."""
        if (
            self.previous
            and self.rotated_at is not None
            and now < self.rotated_at + timedelta(seconds=overlap_seconds)
        ):
            return (self.current, self.previous)
        return (self.current,)


def generate_secret() -> str:
    return PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode("ascii")


def ensure(conn: Connection, account_id: int) -> WebhookSecrets:
    """The account's secrets, making the first one if it has none (a race-safe conditional
    UPDATE: two processes doing this at once end with the same secret). NotFound if no account."""
    found = read(conn, account_id)
    if found is not None:
        return found
    conn.execute(
        update(accounts)
        .where(accounts.c.id == account_id, accounts.c.webhook_secret.is_(None))
        .values(webhook_secret=generate_secret())
    )
    found = read(conn, account_id)
    assert found is not None  # the UPDATE gave it one, or another process did
    return found


def rotate(conn: Connection, account_id: int, now: datetime) -> WebhookSecrets:
    """A new current secret; the old one becomes the previous (it signs during the overlap)."""
    old = ensure(conn, account_id)
    conn.execute(
        update(accounts)
        .where(accounts.c.id == account_id)
        .values(
            webhook_secret=generate_secret(),
            webhook_secret_previous=old.current,
            webhook_secret_rotated_at=now,
            updated_at=now,
        )
    )
    new = read(conn, account_id)
    assert new is not None  # ensure() found the account in this transaction
    return new


def read(conn: Connection, account_id: int) -> WebhookSecrets | None:
    """The account's secrets, None if it has none yet; NotFound if there is no such account."""
    row = (
        conn.execute(
            select(
                accounts.c.id,
                accounts.c.webhook_secret,
                accounts.c.webhook_secret_previous,
                accounts.c.webhook_secret_rotated_at,
            ).where(accounts.c.id == account_id)
        )
        .mappings()
        .first()
    )
    if row is None:
        raise NotFound(f"No account with id {account_id}.")
    if not row["webhook_secret"]:
        return None
    return WebhookSecrets(
        row["webhook_secret"], row["webhook_secret_previous"], row["webhook_secret_rotated_at"]
    )
