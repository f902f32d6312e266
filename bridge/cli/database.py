"""Opening the configured database for a command that must not create or migrate it.

Every command but ``run`` and ``db upgrade`` uses :func:`open_migrated`: a mistyped
``DATABASE_URL`` or ``BRIDGE_VAR_DIR`` then says so in one line, instead of leaving an empty
SQLite file behind and advising to migrate it.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from bridge.cli import CommandError
from bridge.config import Config
from bridge.storage.db import Database, missing_sqlite_file


def shown_url(url: str) -> str:
    """The URL with its password hidden, for messages."""
    return make_url(url).render_as_string(hide_password=True)


def first_line(exc: BaseException) -> str:
    """The first line of a driver's error (SQLAlchemy wraps it in ``orig``)."""
    text = str(getattr(exc, "orig", None) or exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def open_migrated(config: Config, **kwargs: Any) -> Database:
    """The configured database, which must exist and be migrated to the newest schema; else a
    one-line :class:`CommandError` saying what to run. ``kwargs`` go to :class:`Database`."""
    url = config.effective_database_url
    missing = missing_sqlite_file(url)
    if missing is not None:
        raise CommandError(
            f"no database at {missing}: run `smpp-bridge db upgrade` or `smpp-bridge run`"
            " (or set DATABASE_URL / BRIDGE_VAR_DIR to the one you meant)"
        )
    db = Database.from_config(config, **kwargs)
    try:
        ready = db.has_schema()
    except SQLAlchemyError as exc:
        db.dispose()
        raise CommandError(f"cannot use the database {shown_url(url)}: {first_line(exc)}") from None
    if not ready:
        db.dispose()
        raise CommandError(
            f"the database {shown_url(url)} is not migrated to the newest schema;"
            " run `smpp-bridge db upgrade` first"
        )
    return db
