"""The SQLite database file is private to its owner: created 0600, and so are its companions.

The file holds every account's password hash, API key hashes and every message. SQLite gives
the ``-wal``, ``-shm`` and ``-journal`` files the database file's own permissions, so creating
the database 0600 (before SQLite does, whatever the umask) makes them 0600 too. Files of an
older install that any local user could read are narrowed to their owner at start.
"""

from __future__ import annotations

import contextlib
import logging
import os
import stat
from pathlib import Path

log = logging.getLogger(__name__)

COMPANIONS = ("-wal", "-shm", "-journal")  # files SQLite keeps beside the database


def private_sqlite_file(database: str | None) -> None:
    """Create the directory and the (empty) database file 0600 if missing; narrow the modes of
    the file and its companions to the owner. In-memory and ``file:`` URIs are left alone."""
    if not database or database == ":memory:" or database.startswith("file:"):
        return
    path = Path(database).expanduser().resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    os.close(os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600))
    for each in (path, *(path.with_name(path.name + s) for s in COMPANIONS)):
        _owner_only(each)


def _owner_only(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            try:
                os.chmod(path, mode & 0o700)
            except PermissionError:
                log.warning(
                    "%s is readable by other users (mode %o) and we cannot change that; "
                    "chmod 600 it as its owner",
                    path,
                    mode,
                )
