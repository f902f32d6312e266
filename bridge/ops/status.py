"""The status document: one JSON-able dict for the API, the CLI and the status page.

Every source is read with a bound (``CHECK_TIMEOUT``): a Redis or database that does not answer
becomes a line in ``problems`` and a ``null`` section, never a hang or a traceback. The shape
is documented in docs/operations.md ("Bind status"); bump ``STATUS_VERSION`` on a change that
is not only an added field.
"""

from __future__ import annotations

import concurrent.futures
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict
from typing import Any

import redis as redis_lib
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from bridge.config import SIMULATOR, Config
from bridge.delivery.fleet import read_bind_statuses
from bridge.delivery.reader import stream_info
from bridge.delivery.settlement.learning import receipt_forms
from bridge.ops.history import read_history, sample_queue
from bridge.redis import keys as redis_keys
from bridge.redis.stats import read_state_counts
from bridge.storage.db import Database, missing_sqlite_file

STATUS_VERSION = 1
CHECK_TIMEOUT = 2.0  # seconds one source may take before it counts as unreachable
BOUND = "bound"

# Checks run here so a source that hangs (a black-holed PostgreSQL, say) costs its caller at
# most CHECK_TIMEOUT; a few threads, so hung checks cannot pile up without bound.
_CHECKS = concurrent.futures.ThreadPoolExecutor(max_workers=4, thread_name_prefix="ops-check")


class SourceDown(Exception):
    """A source did not answer (or answered an error): the sentence says which and why."""


def _bounded(what: str, read: Callable[[], Any]) -> Any:
    """``read()`` within CHECK_TIMEOUT, its failure as SourceDown("<what>: <why>")."""
    future = _CHECKS.submit(read)
    try:
        return future.result(timeout=CHECK_TIMEOUT)
    except concurrent.futures.TimeoutError:
        future.cancel()
        raise SourceDown(f"{what}: no answer within {CHECK_TIMEOUT:g}s") from None
    except (redis_lib.RedisError, SQLAlchemyError, OSError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise SourceDown(f"{what}: {first}") from None


def _check(what: str, read: Callable[[], Any]) -> dict[str, Any]:
    try:
        _bounded(what, read)
    except SourceDown as exc:
        return {"ok": False, "error": str(exc)}
    return {"ok": True, "error": None}


def check_redis(redis: redis_lib.Redis | None) -> dict[str, Any]:
    """``{"ok", "error"}`` of a PING."""
    if redis is None:
        return {"ok": False, "error": "redis: REDIS_URL is not set"}
    return _check("redis", redis.ping)


def check_database(db: Database | str | None) -> dict[str, Any]:
    """``{"ok", "error"}`` of a ``SELECT 1`` (and, for SQLite, that its file is still there:
    an open connection would keep answering from a deleted file). A string ``db`` is why the
    caller could not open it."""
    if db is None or isinstance(db, str):
        return {"ok": False, "error": f"database: {db or 'not opened by this process'}"}

    def ping() -> None:
        missing = missing_sqlite_file(db.url)
        if missing is not None:
            raise OSError(f"no database file at {missing}")
        with db.connect() as conn:
            conn.execute(text("SELECT 1"))

    return _check("database", ping)


# ---------------------------------------------------------------------- connections and binds


def configured_connections(config: Config) -> list[dict[str, Any]]:
    """Every connection this configuration routes to (the built-in simulator when none)."""
    if not config.smsc:  # `run` starts the simulator on a port chosen then: no address here
        return [_connection(SIMULATOR, None, None, None, None, None)]
    return [
        _connection(c.name, f"{c.host}:{c.port}", c.system_id, c.bind_mode, c.binds, c.max_binds)
        for c in config.smsc
    ]


def _connection(name, smsc, system_id, bind_mode, binds, max_binds) -> dict[str, Any]:
    return {
        "name": name,
        "configured": True,
        "smsc": smsc,
        "system_id": system_id,
        "bind_mode": bind_mode,
        "binds": binds,
        "max_binds": max_binds,
    }


def bind_view(record: Mapping[str, Any]) -> dict[str, Any]:
    """One heartbeat in the document's shape (older workers' heartbeats lack some fields)."""
    counters = record.get("counters") or {}
    in_flight = int(record.get("in_flight") or 0)
    return {
        "connection": record.get("connection"),
        "bind_id": record.get("bind_id"),
        "state": record.get("state"),
        "since": record.get("since"),
        "down_since": record.get("down_since"),
        "stale": bool(record.get("stale")),
        "reported_state": record.get("reported_state", record.get("state")),
        "heartbeat_age": record.get("heartbeat_age"),
        "hostname": record.get("hostname"),
        "pid": record.get("pid"),
        "smsc": record.get("smsc"),
        "system_id": record.get("system_id"),
        "bind_mode": record.get("bind_mode"),
        "window": record.get("window") or {"in_use": in_flight, "size": None},
        "queued": int(record.get("queued") or 0),
        "rates": record.get("rates") or {"submits": None, "receipts": None, "mo": None},
        "last_error": record.get("last_error"),
        "last_error_at": record.get("last_error_at"),
        "enquire_link": record.get("enquire_link") or {"rtt_ms": None, "at": None},
        "counters": counters,
    }


def connection_views(
    configured: list[dict[str, Any]], binds: list[dict[str, Any]] | None
) -> list[dict[str, Any]]:
    """The configured connections with their binds counted, then any connection only the
    heartbeats know (``configured: false``: another configuration's workers share this Redis).
    With ``binds`` None (Redis down) the counts are None and nothing is ``ok``."""
    by_name: dict[str, list[dict[str, Any]]] = {}
    for b in binds or ():
        by_name.setdefault(str(b["connection"]), []).append(b)
    views = []
    names = [c["name"] for c in configured]
    extra = [_connection(n, None, None, None, None, None) for n in by_name if n not in names]
    for c in configured + [{**e, "configured": False} for e in extra]:
        mine = by_name.get(c["name"], [])
        view = dict(c)
        first = mine[0] if mine else {}
        for field in ("smsc", "system_id", "bind_mode"):  # the simulator's, from its binds
            view[field] = view[field] or first.get(field)
        bound = sum(1 for b in mine if b["state"] == BOUND and not b["stale"])
        view["reported"] = None if binds is None else len(mine)
        view["bound"] = None if binds is None else bound
        view["states"] = None if binds is None else sorted(b["state"] for b in mine)
        view["ok"] = binds is not None and bound > 0
        views.append(view)
    return views


def connection_problems(connections: list[dict[str, Any]]) -> list[str]:
    """One sentence per configured connection without a bound bind."""
    problems = []
    for c in connections:
        if not c["configured"] or c["ok"] or c["bound"] is None:
            continue
        if c["reported"]:
            states = ", ".join(c["states"])
            problems.append(
                f"connection {c['name']} has no bound bind ({c['reported']} reported: {states})"
            )
        else:
            problems.append(
                f"connection {c['name']} has no bound bind (none reported: is a worker "
                "running against this Redis with this connection configured?)"
            )
    return problems


def _read_binds(redis: redis_lib.Redis) -> list[dict[str, Any]]:
    return [bind_view(r) for r in read_bind_statuses(redis)]


# ---------------------------------------------------------------------- readiness and status


def readiness(config: Config, redis: redis_lib.Redis | None, db: Database | str | None) -> dict:
    """What ``GET /readyz`` answers: ready when the database and Redis answer and every
    configured connection has a bound bind. Cheap: a SELECT 1, a PING and the heartbeats."""
    checks = {"database": check_database(db), "redis": check_redis(redis)}
    problems = [c["error"] for c in checks.values() if not c["ok"]]
    binds = None
    if checks["redis"]["ok"] and redis is not None:
        client = redis
        try:
            binds = _bounded("redis", lambda: _read_binds(client))
        except SourceDown as exc:
            problems.append(str(exc))
    connections = connection_views(configured_connections(config), binds)
    problems += connection_problems(connections)
    if binds is None:
        problems.append("binds: unknown while Redis does not answer")
    return {
        "ready": not problems,
        "at": time.time(),
        "problems": problems,
        "checks": checks,
        "connections": [_brief(c) for c in connections],
    }


def _brief(c: dict[str, Any]) -> dict[str, Any]:
    return {k: c[k] for k in ("name", "configured", "reported", "bound", "ok")}


def collect_status(
    config: Config, redis: redis_lib.Redis | None, db: Database | str | None
) -> dict:
    """The whole status document (docs/operations.md). Sections read from Redis are None
    while it does not answer; ``problems`` then says so."""
    doc = readiness(config, redis, db)
    problems = doc["problems"]
    sections: dict[str, Any] = dict.fromkeys(_REDIS_SECTIONS)
    binds = None
    if doc["checks"]["redis"]["ok"] and redis is not None:
        client = redis
        try:
            binds, sections = _bounded(
                "redis", lambda: (_read_binds(client), _redis_sections(client))
            )
        except SourceDown as exc:
            problems.append(str(exc))
            sections = dict.fromkeys(_REDIS_SECTIONS)
    return {
        "version": STATUS_VERSION,
        "at": doc["at"],
        "ok": not problems,
        "problems": problems,
        "checks": doc["checks"],
        "connections": connection_views(configured_connections(config), binds),
        "binds": binds,
        **sections,
    }


_REDIS_SECTIONS = (
    "queue",
    "scheduled",
    "messages",
    "webhooks",
    "inbound",
    "possible_duplicates",
    "receipt_forms",
    "history",
)


def _redis_sections(redis: redis_lib.Redis) -> dict[str, Any]:
    with redis.pipeline(transaction=False) as pipe:
        pipe.zcard(redis_keys.SCHEDULE_SET)
        pipe.get(redis_keys.unrouted_mo_count_key())
        pipe.get(redis_keys.POSSIBLE_DUPLICATES)
        scheduled, unrouted, duplicates = pipe.execute()
    queue = queue_view(redis)
    sample_queue(redis, queue["length"])  # the charts' queue depth (bridge.ops.history)
    return {
        "queue": queue,
        "scheduled": int(scheduled),
        "messages": read_state_counts(redis),
        "webhooks": webhook_counts(redis),
        "inbound": {"unrouted": int(unrouted or 0)},
        "possible_duplicates": int(duplicates or 0),
        "receipt_forms": receipt_forms(redis),
        "history": read_history(redis),
    }


def queue_view(redis: redis_lib.Redis) -> dict[str, Any]:
    """The outbound stream, and the age of its oldest entry (acknowledged entries are deleted,
    so the first one left is the oldest message still queued or being submitted)."""
    info = asdict(stream_info(redis))
    first = redis.xrange(redis_keys.OUTBOUND_STREAM, count=1)
    oldest = 0.0
    if first:
        entry_id = first[0][0]
        text = entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)
        millis = int(text.split("-")[0])
        seconds, micros = redis.time()
        oldest = max(0.0, round(seconds + micros / 1e6 - millis / 1000, 3))
    return {**info, "oldest_age": oldest}


def webhook_counts(redis: redis_lib.Redis) -> dict[str, int]:
    """Webhook events on the stream, held by a sender, waiting to retry, dead-lettered."""
    stream = redis_keys.webhooks_stream_key()
    try:
        sending = int(redis.xpending(stream, redis_keys.WEBHOOKS_GROUP)["pending"])
    except redis_lib.ResponseError:  # no group yet: no sender ever ran
        sending = 0
    with redis.pipeline(transaction=False) as pipe:
        pipe.xlen(stream)
        pipe.zcard(redis_keys.webhooks_retry_key())
        pipe.xlen(redis_keys.webhooks_dead_key())
        queued, retrying, dead = pipe.execute()
    return {"queued": int(queued), "sending": sending, "retrying": int(retrying), "dead": int(dead)}
