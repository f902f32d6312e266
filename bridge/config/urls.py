"""The two service addresses, ``database_url`` (DATABASE_URL) and ``redis_url`` (REDIS_URL),
checked once at start-up.

A URL the bridge cannot use stops every command with one line naming the setting and a form that
works, instead of a driver's traceback at first use. A password in a URL is never echoed.
"""

from __future__ import annotations

from bridge.config.reader import ConfigError

DATABASE_SCHEMES = ("sqlite", "sqlite+pysqlite", "postgresql+psycopg")  # drivers we install
POSTGRES_ALIASES = ("postgresql", "postgres")  # libpq spellings; read as postgresql+psycopg
REDIS_SCHEMES = ("redis", "rediss", "unix")

_DATABASE_FORMS = (
    "sqlite:///PATH (e.g. sqlite:///var/bridge.db) or "
    "postgresql+psycopg://USER:PASSWORD@HOST:5432/DATABASE; unset for var/bridge.db"
)
_REDIS_FORMS = (
    "redis://[:PASSWORD@]HOST:PORT/DB (e.g. redis://127.0.0.1:6379/0), rediss:// or "
    "unix:///PATH; unset for `smpp-bridge run` to start its own"
)


def check_database_url(url: str) -> str:
    """``url`` if the bridge can use it ("" = the default SQLite file); ``postgresql://`` and
    ``postgres://`` are returned as ``postgresql+psycopg://`` (psycopg 3 is the driver shipped)."""
    if not url:
        return url
    scheme, sep, rest = url.partition("://")
    if not sep or not scheme:
        raise ConfigError(
            f"database_url (DATABASE_URL) must be a URL: {_DATABASE_FORMS}; got {_shown(url)}"
        )
    if scheme.lower() in POSTGRES_ALIASES:
        url = f"postgresql+psycopg://{rest}"
    elif scheme.lower() not in DATABASE_SCHEMES:
        raise ConfigError(
            f"database_url (DATABASE_URL) uses {scheme!r}, which the bridge cannot store to: "
            f"use {_DATABASE_FORMS}"
        )
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        make_url(url)
    except (ArgumentError, ValueError) as exc:  # e.g. a port that is not a number
        raise ConfigError(
            f"database_url (DATABASE_URL) is not a valid URL ({exc}): use {_DATABASE_FORMS}"
        ) from None
    return url


def check_redis_url(url: str | None) -> str | None:
    """``url`` if redis-py can connect with it (None or "" = not set)."""
    if not url:
        return None
    scheme, sep, _ = url.partition("://")
    if not sep or scheme.lower() not in REDIS_SCHEMES:
        raise ConfigError(f"redis_url (REDIS_URL) must be {_REDIS_FORMS}; got {_shown(url)}")
    from redis.connection import parse_url

    try:
        parse_url(url)
    except ValueError as exc:  # e.g. "Port could not be cast to integer value as 'x'"
        raise ConfigError(
            f"redis_url (REDIS_URL) is not a valid URL ({exc}): use {_REDIS_FORMS}"
        ) from None
    return url


def _shown(url: str) -> str:
    """The value as typed, unless it may hold a password."""
    return "a value with credentials in it (not shown)" if "@" in url else repr(url)
