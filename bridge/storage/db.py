"""The database handle: one engine per process, tuned for SQLite (WAL) or PostgreSQL.

``Database.begin()`` is the write transaction. On SQLite it starts with ``BEGIN IMMEDIATE`` so
concurrent writers queue on the write lock (``busy_timeout``) instead of failing with "database
is locked" when a deferred reader later tries to write. ``Database.connect()`` is for reads.

``upgrade(url)`` applies the Alembic migrations shipped inside the package; no alembic.ini is
needed, so it works from an installed wheel.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from pathlib import Path

from sqlalchemy import Connection, create_engine, event, inspect
from sqlalchemy.engine import Engine, make_url

from bridge.storage.write_lock import WriteLock

log = logging.getLogger(__name__)

SQLITE_BUSY_TIMEOUT_MS = 10_000
_IMMEDIATE = "sb_begin_immediate"  # execution option read by the SQLite "begin" hook


class Database:
    """An engine plus the write/read transaction helpers the bridge uses."""

    def __init__(
        self,
        url: str,
        *,
        pool_size: int = 10,
        max_overflow: int = 30,
        echo: bool = False,
        lock_wait: float = SQLITE_BUSY_TIMEOUT_MS / 1000,
    ) -> None:
        self.url = url
        # every write transaction of every bridge process takes it (a no-op on PostgreSQL)
        self.write_lock = WriteLock(url, wait=lock_wait)
        parsed = make_url(url)
        self.is_sqlite = parsed.get_backend_name() == "sqlite"
        if self.is_sqlite:
            _ensure_sqlite_dir(parsed.database)
            self.engine = create_engine(
                url,
                echo=echo,
                pool_size=pool_size,
                max_overflow=max_overflow,
                pool_timeout=30,
                connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000, "check_same_thread": False},
            )
            _install_sqlite_hooks(self.engine)
        else:
            self.engine = create_engine(
                url,
                echo=echo,
                pool_size=pool_size,
                max_overflow=max_overflow,
                pool_timeout=30,
                pool_recycle=1800,
                pool_pre_ping=False,
            )

    @contextlib.contextmanager
    def begin(self) -> Iterator[Connection]:
        """A write transaction: commits on success, rolls back on any exception. On a SQLite
        file it holds the cross-process write lock (bridge.storage.write_lock) throughout."""
        with self.write_lock.held(), self.engine.connect() as conn:
            if self.is_sqlite:
                conn.execution_options(**{_IMMEDIATE: True})
            with conn.begin():
                yield conn

    def connect(self) -> Connection:
        """A connection for reads (autobegins a plain transaction); use as a context manager."""
        return self.engine.connect()

    def dispose(self) -> None:
        """Close every pooled connection and the write-lock file (tests and process
        shutdown; both reopen if the database is used again)."""
        self.engine.dispose()
        self.write_lock.close()

    def has_schema(self) -> bool:
        """True when the migrations have been applied up to the newest revision."""
        return schema_revision(self.engine) == head_revision()


def _ensure_sqlite_dir(database: str | None) -> None:
    if database and database != ":memory:" and not database.startswith("file:"):
        Path(database).expanduser().resolve().parent.mkdir(parents=True, exist_ok=True)


def _install_sqlite_hooks(engine: Engine) -> None:
    """Pragmas on every new connection; take over BEGIN so writes can say IMMEDIATE."""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, _record) -> None:
        dbapi_conn.isolation_level = None  # pysqlite must not issue its own BEGINs
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        immediate = conn.get_execution_options().get(_IMMEDIATE)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def _alembic_config(url: str):
    from alembic.config import Config as AlembicConfig

    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
    cfg.attributes["url"] = url  # not via set_main_option: '%' in passwords breaks configparser
    return cfg


def head_revision() -> str:
    """The newest migration revision shipped with this package."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(_alembic_config("")).get_current_head()


def schema_revision(engine: Engine) -> str | None:
    """The revision the database is at, or None when it was never migrated."""
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        if not inspect(conn).has_table("alembic_version"):
            return None
        return MigrationContext.configure(conn).get_current_revision()


def upgrade(url: str, revision: str = "head") -> None:
    """Apply the migrations up to ``revision`` (idempotent: nothing to do when already there)."""
    from alembic import command

    if make_url(url).get_backend_name() == "sqlite":
        _ensure_sqlite_dir(make_url(url).database)
    command.upgrade(_alembic_config(url), revision)
    log.info("database at migration %s", revision)
