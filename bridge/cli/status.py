"""`smpp-bridge status`: the status document (bridge.ops.status) as a table or JSON.

Exits 1 when the document is not ``ok`` (a configured connection has no bound bind, or Redis or
the database does not answer), so it serves as a health check; ``--watch`` redraws it in place.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from bridge.cli import CommandError
from bridge.config import Config, load_config

WATCH_SECONDS = 2.0  # default --watch period
CLEAR = "\x1b[H\x1b[2J"  # cursor home, clear screen: --watch redraws in place on a terminal


def register(subparsers) -> None:
    s = subparsers.add_parser(
        "status",
        help="every SMSC connection and bind of the fleet, the queue and message counts",
        description="Reads the bind heartbeats every worker publishes in Redis, the queue and "
        "the counters, and checks the database. Exits 1 when a configured connection has no "
        "bound bind or Redis or the database does not answer.",
    )
    s.add_argument("--json", action="store_true", help="print the status document (JSON)")
    s.add_argument(
        "--check", action="store_true", help="kept for scripts: the exit code always says it"
    )
    s.add_argument(
        "--watch",
        nargs="?",
        const=WATCH_SECONDS,
        type=_seconds,
        metavar="SECONDS",
        help=f"redraw every SECONDS (default {WATCH_SECONDS:g}) until Ctrl-C; with --json, "
        "one document a line",
    )
    s.add_argument(
        "--count", type=_positive, metavar="N", help="with --watch: stop after N screens"
    )
    s.set_defaults(handler=cmd_status)


def _seconds(raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        value = 0.0
    if not 0.1 <= value <= 3600:
        raise argparse.ArgumentTypeError(f"must be seconds from 0.1 to 3600, got {raw!r}")
    return value


def _positive(raw: str) -> int:
    if not raw.isdigit() or int(raw) < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number of at least 1, got {raw!r}")
    return int(raw)


def cmd_status(args: argparse.Namespace) -> int:
    if args.count is not None and args.watch is None:
        raise CommandError("--count goes with --watch (how many screens to show)")
    config = _with_redis(load_config())
    from bridge.ops.status import CHECK_TIMEOUT
    from bridge.redis.clients import make_probe_redis

    assert config.redis_url  # _with_redis raised otherwise
    client = make_probe_redis(config.redis_url, CHECK_TIMEOUT)
    db = _database(config)
    try:
        _refuse_wrong_password(client, config)
        if args.watch is None:
            doc = _collect(config, client, db)
            print(json.dumps(doc, indent=1, sort_keys=True) if args.json else render_status(doc))
            return 0 if doc["ok"] else 1
        return _watch(config, client, db, args)
    finally:
        client.close()
        if not isinstance(db, str):
            db.dispose()


def _watch(config: Config, client, db, args: argparse.Namespace) -> int:
    """Redraw until Ctrl-C or ``--count`` screens; the exit code of the last screen."""
    shown, ok = 0, False
    terminal = sys.stdout.isatty()
    try:
        while True:
            doc = _collect(config, client, db)
            ok = doc["ok"]
            if args.json:
                print(json.dumps(doc, sort_keys=True), flush=True)
            else:
                head = CLEAR if terminal else ("\n" if shown else "")
                stamp = time.strftime("%H:%M:%S", time.localtime(doc["at"]))
                footer = f"\n\n{stamp}, every {args.watch:g}s; Ctrl-C to stop"
                print(head + render_status(doc) + footer, flush=True)
            shown += 1
            if args.count is not None and shown >= args.count:
                break
            time.sleep(args.watch)
    except KeyboardInterrupt:
        print()
    return 0 if ok else 1


def _with_redis(config: Config) -> Config:
    if not config.redis_url:  # a `smpp-bridge run` on this machine: its embedded Redis
        from bridge.redis.embedded import running_url

        config = config.replace(redis_url=running_url(config.var_dir))
    if not config.redis_url:
        raise CommandError(
            "REDIS_URL is not set and no `smpp-bridge run` owns "
            f"{config.var_dir}/redis: bind status lives in Redis; set REDIS_URL"
        )
    return config


def _database(config: Config):
    """The database, or why it is not opened (a missing SQLite file is not created)."""
    from bridge.storage.db import Database, missing_sqlite_file

    missing = missing_sqlite_file(config.effective_database_url)
    if missing is not None:
        return f"no database at {missing} (run `smpp-bridge db upgrade` or `smpp-bridge run`)"
    return Database.from_config(config, pool_size=1, max_overflow=0)


def _refuse_wrong_password(client, config: Config) -> None:
    """A Redis that refuses our password is a setting to fix, said in one line."""
    import redis as redis_lib

    from bridge.redis.clients import redact

    try:
        client.ping()
    except redis_lib.AuthenticationError as exc:
        raise CommandError(
            f"cannot read status from Redis at {redact(config.redis_url)}: {exc} The embedded "
            f"Redis's password is in {config.var_dir}/redis/password (its owner's only): run "
            "as that user, or set REDIS_URL with the password"
        ) from None
    except redis_lib.RedisError:
        pass  # down: the document says so


def _collect(config: Config, client, db) -> dict[str, Any]:
    from bridge.ops.status import collect_status

    return collect_status(config, client, db)


# ---------------------------------------------------------------------- the table

_COLUMNS = (
    "CONNECTION",
    "BIND",
    "STATE",
    "FOR",
    "WINDOW",
    "QUEUED",
    "SUB/S",
    "DLR/S",
    "MO/S",
    "SUBMITTED",
    "ERRORS",
    "ENQ RTT",
    "HOST:PID",
    "LAST ERROR",
)


def render_status(doc: dict[str, Any]) -> str:
    """Plain text for the NOC: problems, one line per bind, the connections, then the rest."""
    now = doc["at"]
    lines = [f"! {p}" for p in doc["problems"]]
    if lines:
        lines.append("")
    rows = [_COLUMNS] + [_bind_row(b, now) for b in doc["binds"] or ()]
    widths = [max(len(r[i]) for r in rows) for i in range(len(_COLUMNS))]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    if doc["binds"] == []:
        lines.append("(no binds reported: is a worker running against this Redis?)")
    elif doc["binds"] is None:
        lines.append("(binds unknown: Redis does not answer)")
    lines.append("")
    for c in doc["connections"]:
        lines.append(_connection_line(c))
    if doc.get("queue") is not None:
        lines.append(_queue_line(doc))
        for c in doc["queue"]["consumers"]:
            lines.append(
                f"  consumer {c['name']}: {c['pending']} pending, idle {_age(c['idle_ms'] / 1000)}"
            )
        lines.append(_messages_line(doc["messages"]))
        lines.append(_webhooks_line(doc["webhooks"]))
        lines.append(f"inbound: {doc['inbound']['unrouted']} unrouted MO")
        for name, f in sorted(doc["receipt_forms"].items()):
            lines.append(
                f"receipt ids on {name}: {f['learned']}; {f['held']} receipt(s) held now"
                f" ({f['held_total']} ever), {f['conflicts']} conflict(s)"
                + (f"; votes {f['votes']}" if f["learned"] == "learning" else "")
            )
    return "\n".join(lines)


def _bind_row(b: dict[str, Any], now: float) -> tuple[str, ...]:
    counters = b.get("counters") or {}
    rates = b.get("rates") or {}
    window = b.get("window") or {}
    rtt = (b.get("enquire_link") or {}).get("rtt_ms")
    since = _for_since(b)
    error = _shown_error(b)[:70]
    if error and b.get("last_error_at"):
        error += f" ({_age(now - b['last_error_at'])} ago)"
    return (
        str(b.get("connection")),
        str(b.get("bind_id")),
        str(b.get("state")) + (" (stale)" if b.get("stale") else ""),
        _age(now - since) if since else "-",
        f"{window.get('in_use', 0)}/{window.get('size') or '?'}",
        str(b.get("queued", 0)),
        *(_rate(rates.get(k)) for k in ("submits", "receipts", "mo")),
        str(counters.get("submitted", 0)),
        str(sum((counters.get("errors") or {}).values())),
        "-" if rtt is None else f"{rtt:g}ms",
        f"{b.get('hostname')}:{b.get('pid')}",
        error,
    )


def _for_since(b: dict[str, Any]) -> float | None:
    """FOR counts from when the bind went down, not from its latest reconnect attempt."""
    if b.get("state") != "bound" and b.get("down_since"):
        return b["down_since"]
    return b.get("since")


def _shown_error(b: dict[str, Any]) -> str:
    """A bound bind shows only an error of this bind; one from before it bound is history."""
    error = b.get("last_error") or ""
    if b.get("state") == "bound" and not b.get("stale"):
        at, since = b.get("last_error_at"), b.get("since")
        if at is None or since is None or at < since:
            return ""
    return error


def _rate(value) -> str:
    return "-" if value is None else f"{value:.1f}"


def _connection_line(c: dict[str, Any]) -> str:
    where = ", ".join(str(c[k]) for k in ("smsc", "system_id", "bind_mode") if c.get(k))
    head = f"connection {c['name']}" + (f" ({where})" if where else "")
    if not c["configured"]:
        head += " [not in this configuration]"
    if c["bound"] is None:
        return f"{head}: binds unknown"
    mark = "ok" if c["ok"] else "NO BOUND BIND"
    return f"{head}: {c['bound']} of {c['reported']} reported bind(s) bound - {mark}"


def _queue_line(doc: dict[str, Any]) -> str:
    q = doc["queue"]
    return (
        f"outbound stream: {q['length']} entries, {q['pending']} pending"
        + (f", {q['lag']} not yet read" if q.get("lag") is not None else "")
        + f", oldest {_age(q['oldest_age'])}; {doc['scheduled']} scheduled; "
        f"possible duplicates flagged so far: {doc['possible_duplicates']}"
    )


def _messages_line(messages: dict[str, dict[str, int]]) -> str:
    def counts(c: dict[str, int]) -> str:
        return ", ".join(f"{state} {n}" for state, n in c.items()) or "none"

    return (
        f"messages, last minute: {counts(messages['last_minute'])}; "
        f"last hour: {counts(messages['last_hour'])}"
    )


def _webhooks_line(counts: dict[str, int]) -> str:
    return (
        f"webhooks: {counts['queued']} on the stream ({counts['sending']} being sent), "
        f"{counts['retrying']} waiting to retry, {counts['dead']} dead-lettered"
        + (" (list them: smpp-bridge webhooks dead)" if counts["dead"] else "")
    )


def _age(seconds: float) -> str:
    seconds = max(0, int(seconds))
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 7200:
        return f"{seconds // 60}m"
    return f"{seconds // 3600}h"
