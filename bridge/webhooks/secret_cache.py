"""The signing secrets of each account, read from the database and kept for a few seconds,
so a sender signs thousands of events a second without a query each; a rotation is seen within
``ttl`` seconds. An account without a secret (older than migration 0003) gets one here."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from bridge.storage import webhook_secrets
from bridge.storage.db import Database
from bridge.storage.webhook_secrets import WebhookSecrets


class SecretCache:
    def __init__(
        self, db: Database, ttl: float = 10.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._db, self._ttl, self._clock = db, ttl, clock
        self._found: dict[int, tuple[float, WebhookSecrets]] = {}
        self._lock = threading.Lock()

    def get(self, account_id: int) -> WebhookSecrets:
        """The account's secrets; NotFound for no such account, SQLAlchemyError passes."""
        now = self._clock()
        with self._lock:
            hit = self._found.get(account_id)
        if hit is not None and now - hit[0] < self._ttl:
            return hit[1]
        with self._db.connect() as conn:
            found = webhook_secrets.read(conn, account_id)
        if found is None:
            with self._db.begin() as conn:
                found = webhook_secrets.ensure(conn, account_id)
        with self._lock:
            self._found[account_id] = (now, found)
        return found
