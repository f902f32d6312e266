"""The database handle: one engine per process, tuned for SQLite (WAL) or PostgreSQL.

``Database.begin()`` is the write transaction. On SQLite it starts with ``BEGIN IMMEDIATE`` so
concurrent writers queue on the write lock (``busy_timeout``) instead of failing with "database
is locked" when a deferred reader later tries to write. ``Database.connect()`` is for reads.

Durability: a commit that returned is on disk. SQLite runs WAL with ``synchronous=FULL`` by
default (the WAL is fsynced at every commit, so an OS crash or power cut cannot roll back a send
whose 200 went out; ``NORMAL`` is the opt-in that may lose the newest commits). On PostgreSQL a
session whose ``synchronous_commit`` is ``off`` (server, database or role default) is set back
to ``on``; stronger settings (``remote_write``, ``remote_apply``) are kept.

``upgrade(url)`` applies the Alembic migrations shipped inside the package; no alembic.ini is
needed, so it works from an installed wheel.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, TypeGuard, TypeVar

from sqlalchemy import Connection, create_engine, event, inspect
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import DBAPIError

from bridge.storage.files import private_sqlite_file
from bridge.storage.kept import KeptConnections
from bridge.storage.write_lock import WriteLock

if TYPE_CHECKING:
    from bridge.config import Config

log = logging.getLogger(__name__)
T = TypeVar("T")

SQLITE_BUSY_TIMEOUT_MS = 10_000
SQLITE_SYNCHRONOUS = ("full", "normal")  # the PRAGMA synchronous levels we allow
POSTGRES_POOL_RECYCLE = 1800  # seconds a PostgreSQL connection is used before it is replaced
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
        sqlite_synchronous: str = "full",
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
                hide_parameters=True,  # an error's text (logged) never carries a row's values
                connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000, "check_same_thread": False},
            )
            _install_sqlite_hooks(self.engine, sqlite_synchronous)
        else:
            self.engine = create_engine(
                url,
                echo=echo,
                pool_size=pool_size,
                max_overflow=max_overflow,
                pool_timeout=30,
                pool_recycle=POSTGRES_POOL_RECYCLE,
                pool_pre_ping=False,
                hide_parameters=True,  # message text, numbers, hashes stay out of the logs
            )
            event.listen(self.engine, "connect", _postgres_synchronous_commit())
        # the hot path's connections (bridge.storage.kept); half the pool stays for the rest
        recycle = None if self.is_sqlite else POSTGRES_POOL_RECYCLE
        self.kept = KeptConnections(self.engine, limit=pool_size // 2, recycle=recycle)

    @classmethod
    def from_config(cls, config: Config, **kwargs) -> Database:
        """The database ``config`` names, with its durability setting (what processes use)."""
        return cls(
            config.effective_database_url, sqlite_synchronous=config.sqlite_synchronous, **kwargs
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

    def kept_connection(self) -> contextlib.AbstractContextManager[Connection]:
        """Like ``connect()``, without a pool checkout and checkin each time: a connection
        the hot path reuses (bridge.storage.kept). No transaction may outlive the block."""
        return self.kept.connect()

    def connections_lost(self) -> None:
        """The server dropped a connection (a restart, a failover, an administrator): the
        others of this process are most likely gone too. The pool has been renewed already
        (by SQLAlchemy's execute path on a disconnect, or bridge.storage.driver's, which does
        the same); the kept connections, which never go back through the pool's checkout, are
        closed here (those in use when their blocks end), so the next uses open fresh ones
        instead of each failing once on a dead one."""
        self.kept.close()

    def once_more_if_gone(self, work: Callable[[], T], *, repeatable: bool = False) -> T:
        """``work()``; when its connection was gone and running it again cannot apply anything
        twice, :meth:`connections_lost` and ``work()`` once more.

        By default ``work`` may write (one transaction, nothing committed before its last
        statement): it runs again only when the failed statement is known and is not
        ``COMMIT`` (:func:`gone_before_commit`). A lost COMMIT may have been applied, and so may
        a failure whose statement SQLAlchemy does not name (the commit of a ``Database.begin()``
        block has none): neither is retried. ``repeatable=True`` is for work that may run twice
        whatever happened: reads, or a write that first looks for its own earlier commit and
        answers it (an Idempotency-Key send); it runs again after any dropped connection
        (:func:`connection_gone`)."""
        retried = connection_gone if repeatable else gone_before_commit
        try:
            return work()
        except DBAPIError as exc:
            if not retried(exc):
                raise
            log.warning(
                "a database connection was gone (%s); retrying once on a new one",
                str(exc.orig).strip() or type(exc.orig).__name__,
            )
            self.connections_lost()
        return work()

    def dispose(self) -> None:
        """Close every pooled connection and the write-lock file (tests and process
        shutdown; both reopen if the database is used again)."""
        self.kept.close()
        self.engine.dispose()
        self.write_lock.close()

    def has_schema(self) -> bool:
        """True when the migrations have been applied up to the newest revision."""
        return schema_revision(self.engine) == head_revision()


def connection_gone(exc: BaseException) -> TypeGuard[DBAPIError]:
    """True for a DBAPI error on a connection the server had dropped (SQLAlchemy's
    ``is_disconnect``: ``connection_invalidated``), whatever statement failed."""
    return isinstance(exc, DBAPIError) and bool(exc.connection_invalidated)


def gone_before_commit(exc: BaseException) -> bool:
    """True for a dropped connection (:func:`connection_gone`) in a statement known not to be
    ``COMMIT``: the server rolled the transaction back, so running it again on a new connection
    applies it once. An unnamed statement (``None``: SQLAlchemy's own commit, and rollback, of
    a ``Connection.begin()`` block) is not known to be before the commit: False."""
    if not connection_gone(exc):
        return False
    statement = (exc.statement or "").strip().upper()
    return bool(statement) and statement != "COMMIT"


def commit_lost(exc: BaseException) -> bool:
    """True for a ``COMMIT`` whose connection was gone before its answer came: the server may
    have applied it or not, so only a read of what it should have written can tell."""
    if not connection_gone(exc):
        return False
    return (exc.statement or "").strip().upper() == "COMMIT"


def _ensure_sqlite_dir(database: str | None) -> None:
    """The directory and the database file, private to their owner (bridge.storage.files)."""
    private_sqlite_file(database)


def _install_sqlite_hooks(engine: Engine, synchronous: str) -> None:
    """Pragmas on every new connection; take over BEGIN so writes can say IMMEDIATE."""
    if synchronous.lower() not in SQLITE_SYNCHRONOUS:
        raise ValueError(f"sqlite_synchronous must be full or normal, got {synchronous!r}")
    pragma = f"PRAGMA synchronous={synchronous.upper()}"

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, _record) -> None:
        dbapi_conn.isolation_level = None  # pysqlite must not issue its own BEGINs
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(pragma)
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        immediate = conn.get_execution_options().get(_IMMEDIATE)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def _postgres_synchronous_commit():
    """A connect hook: a commit must wait for the WAL flush, so ``off`` (a server, database or
    role default) becomes ``on`` for our sessions; ``local``, ``remote_write`` and
    ``remote_apply`` are kept. Warns once per engine."""
    warned = False

    def on_connect(dbapi_conn, _record) -> None:
        nonlocal warned
        cursor = dbapi_conn.cursor()
        try:
            cursor.execute("SHOW synchronous_commit")
            if cursor.fetchone()[0] == "off":
                cursor.execute("SET synchronous_commit TO on")
                if not warned:
                    warned = True
                    log.warning("synchronous_commit is off by default here; our sessions set it on")
        finally:
            cursor.close()
        dbapi_conn.commit()  # psycopg opened a transaction; a rollback would undo the SET

    return on_connect


def _alembic_config(url: str):
    from alembic.config import Config as AlembicConfig

    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
    cfg.attributes["url"] = url  # not via set_main_option: '%' in passwords breaks configparser
    return cfg


def head_revision() -> str:
    """The newest migration revision shipped with this package."""
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(_alembic_config("")).get_current_head()
    if head is None:
        raise RuntimeError("no Alembic migrations found in bridge/storage/migrations: reinstall")
    return head


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


def missing_sqlite_file(url: str) -> Path | None:
    """The SQLite file ``url`` names, if it does not exist (None when it does, and for
    in-memory SQLite, ``file:`` URIs and PostgreSQL). Opening a SQLite database creates its
    file, so commands that must not create one ask this first."""
    parsed = make_url(url)
    database = parsed.database
    if parsed.get_backend_name() != "sqlite" or not database or database == ":memory:":
        return None
    if database.startswith("file:"):
        return None
    path = Path(database).expanduser().resolve()
    return None if path.exists() else path
