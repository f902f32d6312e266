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
import secrets
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


class EmptySecretFile(Exception):
    """A secret file exists but holds nothing; the sentence says to delete it."""


def secret_file(path: Path, nbytes: int, what: str) -> str:
    """The secret kept in ``path``, made on first use (``nbytes`` random bytes, urlsafe base64,
    mode 0600 from the first byte: O_EXCL, so two processes never make two). A file any other
    user could read is narrowed to its owner first."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    except FileExistsError:
        if path.stat().st_mode & 0o077:
            os.chmod(path, 0o600)
        secret = path.read_text().strip()
        if not secret:
            raise EmptySecretFile(
                f"{path} is empty; delete it and a new {what} is made on the next start"
            ) from None
        return secret
    secret = secrets.token_urlsafe(nbytes)
    with os.fdopen(fd, "w") as fh:
        fh.write(secret + "\n")
    return secret
