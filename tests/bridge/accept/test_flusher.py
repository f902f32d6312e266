"""The Flusher's flush() is a barrier, also while its background thread is writing."""

from __future__ import annotations

import contextlib
import threading
from typing import cast

from sqlalchemy import select

from bridge.accept.flusher import Flusher
from bridge.storage.db import Database
from bridge.storage.models import api_keys


class HeldWrites:
    """A Database whose begin() in the flusher's own thread waits until ``release`` is set."""

    def __init__(self, db) -> None:
        self._db = db
        self.entered = threading.Event()
        self.release = threading.Event()

    @contextlib.contextmanager
    def begin(self):
        if threading.current_thread().name == "bridge-flusher":
            self.entered.set()
            assert self.release.wait(30), "the test never released the write"
        with self._db.begin() as conn:
            yield conn


def last_used(db, key_id):
    with db.connect() as conn:
        return conn.execute(
            select(api_keys.c.last_used_at).where(api_keys.c.key_id == key_id)
        ).scalar_one()


def test_flush_waits_for_the_write_the_thread_has_taken(db, demo_account):
    """Before: the thread had drained the note, so flush() found none and returned at once,
    before the note was written; a caller reading next saw the old row."""
    held = HeldWrites(db)
    flusher = Flusher(cast(Database, held), interval=0.01)
    before = last_used(db, demo_account.key_id)
    flusher.key_used(demo_account.key_id)
    flusher.start()
    releaser = None
    try:
        assert held.entered.wait(10), "the flusher thread never took the note"
        # the thread holds the note in its write; flush() must return only after it commits
        releaser = threading.Timer(0.3, held.release.set)
        releaser.start()
        assert flusher.flush() == 0  # nothing left for this call: the thread had it
        assert last_used(db, demo_account.key_id) not in (None, before)
    finally:
        held.release.set()
        if releaser is not None:
            releaser.cancel()
            releaser.join(5)
        flusher.stop()


def test_stop_does_not_wait_on_a_write_that_hangs(db, demo_account, caplog):
    """stop() is bounded by its timeout: a thread still writing is left with a warning
    (flush(), which waits for that write, is not called)."""
    held = HeldWrites(db)
    flusher = Flusher(cast(Database, held), interval=0.01)
    flusher.key_used(demo_account.key_id)
    flusher.start()
    try:
        assert held.entered.wait(10), "the flusher thread never took the note"
        flusher.stop(timeout=0.2)
        assert "flusher still writing after 0.2s" in caplog.text
    finally:
        held.release.set()
