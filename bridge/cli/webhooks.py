"""``smpp-bridge webhooks`` (the webhook sender process), ``smpp-bridge webhooks dead`` (the
newest dead-lettered events) and ``smpp-bridge webhooks resend`` (dead letters back to the
senders).

The sender reads the ``sb:webhooks`` stream in the consumer group ``webhook-senders``; run as
many as you like against one Redis (each claims a dead one's events). It needs the database for
the accounts' signing secrets. Stops gracefully on SIGTERM/Ctrl-C.
"""

from __future__ import annotations

import argparse
import json
import signal
import threading
from datetime import UTC, datetime

from bridge.cli import CommandError
from bridge.config import Config, load_config


def register(subparsers) -> None:
    w = subparsers.add_parser(
        "webhooks",
        help="the webhook sender (no ACTION), or its dead letters",
        description=__doc__.split("\n\n")[1],
    )
    w.add_argument("--consumer", help="consumer name in the stream group (default host-pid-rand)")
    w.add_argument("--log-level", default="INFO", help="DEBUG, INFO, WARNING (INFO)")
    w.set_defaults(handler=cmd_send)
    acts = w.add_subparsers(dest="action", metavar="ACTION")
    dead = acts.add_parser("dead", help="list the newest dead-lettered webhook events")
    dead.add_argument("--limit", type=_positive, default=20, help="how many (default 20)")
    dead.add_argument("--json", action="store_true", help="one JSON object per line")
    dead.set_defaults(handler=cmd_dead)
    resend = acts.add_parser(
        "resend",
        help="re-send dead-lettered webhook events (by event id, --account or --all)",
        description="Puts the chosen dead-lettered events back on the webhook stream, same "
        "event id and body, with a fresh retry period; each leaves the dead letters in the same "
        "atomic step. Exit 1 when an event id given is not in the dead letters.",
    )
    resend.add_argument("event_ids", nargs="*", metavar="EVENT_ID", help="event ids (evt_...)")
    resend.add_argument("--account", metavar="NAME", help="every dead letter of this account")
    resend.add_argument("--all", action="store_true", help="every dead letter")
    resend.add_argument("--dry-run", action="store_true", help="print what would be re-sent")
    resend.add_argument("--json", action="store_true", help="one JSON object per line")
    resend.set_defaults(handler=cmd_resend)


def _positive(raw: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number, got {raw!r}") from None
    if not 1 <= value <= 10_000:
        raise argparse.ArgumentTypeError(f"must be from 1 to 10000, got {value}")
    return value


def _redis(config: Config):
    from bridge.redis.clients import make_redis

    if not config.redis_url:
        from bridge.redis.embedded import running_url

        config = config.replace(redis_url=running_url(config.var_dir))
    if not config.redis_url:
        raise CommandError("REDIS_URL is not set: webhook events live in Redis; set REDIS_URL")
    return make_redis(config.redis_url)


def cmd_send(args: argparse.Namespace) -> int:
    from bridge.telemetry import metrics_dir
    from bridge.telemetry.logs import configure_logging

    config = load_config()
    configure_logging(config, level=args.log_level.upper())
    if not config.redis_url:
        raise CommandError("REDIS_URL is not set: the sender reads the webhook stream there")
    from bridge.storage.db import Database
    from bridge.webhooks.secret_cache import SecretCache

    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    db = Database.from_config(config, pool_size=4, max_overflow=4)
    client = _redis(config)
    try:
        if not db.has_schema():
            raise CommandError(
                "the database is not migrated to the newest schema; run "
                "`smpp-bridge db upgrade` (or use `smpp-bridge run`)"
            )
        metrics_dir.prepare(config.var_dir)  # its attempts count into the machine's /metrics
        from bridge.webhooks.sender import Sender  # imports prometheus_client: after prepare

        Sender(config, client, SecretCache(db), consumer=args.consumer).run(stop)
    finally:
        client.close()
        db.dispose()
    return 0


def cmd_dead(args: argparse.Namespace) -> int:
    import redis as redis_lib

    from bridge.redis import keys

    client = _redis(load_config())
    try:
        total = client.xlen(keys.webhooks_dead_key())
        entries = client.xrevrange(keys.webhooks_dead_key(), count=args.limit)
    except redis_lib.RedisError as exc:
        raise CommandError(f"cannot read the dead letters from Redis: {exc}") from None
    finally:
        client.close()
    for entry_id, fields in entries:
        row = {k.decode(): v.decode("utf-8", "replace") for k, v in fields.items()}
        row["entry"] = entry_id.decode()
        if args.json:
            print(json.dumps(row, sort_keys=True))
            continue
        at = datetime.fromtimestamp(int(row.get("dead_at") or 0) / 1000, UTC)
        print(
            f"{at.isoformat(timespec='seconds')}  {row.get('id', '?')}  account "
            f"{row.get('account_id', '?')}  {row.get('url', '?')}  attempts "
            f"{row.get('attempt', '0')}: {row.get('reason', '')}"
        )
    if not args.json:
        print(f"({len(entries)} shown of {total} dead-lettered webhook events)")
    return 0


def cmd_resend(args: argparse.Namespace) -> int:
    import redis as redis_lib

    from bridge.webhooks import dead

    chosen = [bool(args.event_ids), args.account is not None, args.all]
    if sum(chosen) != 1:
        raise CommandError(
            "name what to re-send: EVENT_ID ..., --account NAME or --all (one of them)", code=2
        )
    config = load_config()
    if args.account is not None:
        match = dead.by_account(_account_id(config, args.account))
    elif args.all:
        match = dead.everything
    else:
        match = dead.by_ids(args.event_ids)
    client = _redis(config)
    try:
        results = {}  # event id -> what happened to it
        for found in dead.find(client, match):
            letter = dead.read(client, found)
            results[found.event_id] = _resend_one(client, letter, args.dry_run)
            _print_resend(found, letter, results[found.event_id], args.json)
    except redis_lib.RedisError as exc:
        raise CommandError(f"cannot re-send the dead letters from Redis: {exc}") from None
    finally:
        client.close()
    if not args.json:
        word = "would re-send" if args.dry_run else "re-sent"
        print(f"{word} {sum(r == word for r in results.values())} event(s)")
    missing = [event_id for event_id in args.event_ids if event_id not in results]
    if missing:
        raise CommandError(
            f"not in the dead letters: {', '.join(missing)} (see `smpp-bridge webhooks dead`)"
        )
    if any(results[event_id] == "left" for event_id in args.event_ids):
        raise CommandError("a dead letter named is not a webhook event; it was left as it is")
    return 0


def _account_id(config: Config, username: str) -> int:
    from bridge.cli.admin import _service

    with _service(config) as service:
        return service.account_by_username(username).id


def _resend_one(client, letter, dry_run: bool) -> str:
    """What happens to one found event: re-sent, would re-send, gone (its dead letters went
    meanwhile: another command re-sent it) or left (not a webhook event; it stays dead)."""
    from bridge.webhooks import dead

    if letter is None:
        return "gone"
    if letter.event is None:
        return "left"
    if dry_run:
        return "would re-send"
    return "re-sent" if dead.resend(client, letter) else "gone"


def _print_resend(found, letter, result: str, as_json: bool) -> None:
    fields = letter.fields if letter else {"id": found.event_id}
    why = {"gone": "already gone from the dead letters (re-sent by another command)"}
    if letter and letter.problem:
        why["left"] = f"left in the dead letters: {letter.problem}"
    if as_json:
        row = {**fields, "entry": found.entry_ids[-1], "entries": list(found.entry_ids)}
        print(json.dumps({**row, "result": result, "why": why.get(result)}, sort_keys=True))
        return
    line = (
        f"{result}  {fields.get('id', '?')}  account {fields.get('account_id', '?')}  "
        f"{fields.get('url', '?')}  attempts {fields.get('attempt', '0')}"
    )
    print(f"{line}: {why.get(result) or 'dead-lettered for ' + fields.get('reason', '?')}")


# ---------------------------------------------------------------------- account secrets
# `smpp-bridge account show` prints the secret; `account rotate-webhook-secret` is added to the
# account group here (bridge/cli/admin.py calls these two).


def register_account_actions(acts) -> None:
    rotate = acts.add_parser(
        "rotate-webhook-secret",
        help="give an account a new webhook signing secret (the old one signs on for a while)",
        description="Makes a new whsec_ secret. Webhooks carry signatures by both the new and "
        "the old secret for webhook_secret_overlap_seconds (24 h by default), so receivers can "
        "switch without rejecting any.",
    )
    rotate.add_argument("username")
    rotate.set_defaults(handler=account_rotate)


def secret_lines(service, account_id: int) -> list[str]:
    """What `account show` prints about the webhook secret (made now if the account had none)."""
    from bridge.storage import webhook_secrets

    with service.db.begin() as conn:
        found = webhook_secrets.ensure(conn, account_id)
    lines = [f"webhook secret: {found.current}"]
    now = datetime.now(UTC)
    signing = found.signing(now, service.config.webhook_secret_overlap_seconds)
    if len(signing) > 1 and found.rotated_at is not None:
        until = found.rotated_at.timestamp() + service.config.webhook_secret_overlap_seconds
        ends = datetime.fromtimestamp(until, UTC).isoformat(timespec="seconds")
        lines.append(f"previous webhook secret: {found.previous} (also signs until {ends})")
    return lines


def account_rotate(args: argparse.Namespace) -> int:
    from bridge.cli.admin import _service
    from bridge.storage import webhook_secrets

    with _service() as service:
        info = service.account_by_username(args.username)
        with service.db.begin() as conn:
            webhook_secrets.rotate(conn, info.id, datetime.now(UTC))
        print(f"username: {info.username}")
        for line in secret_lines(service, info.id):
            print(line)
    return 0


# ---------------------------------------------------------------------- status and `run`


def webhooks_children(python: list[str], processes: int) -> list:
    """The sender processes of `smpp-bridge run` (webhook_processes): webhooks, webhooks-2,
    ...; each its own consumer in the one group, restarted on its own by the supervisor."""
    from bridge.process.supervisor import ChildSpec

    return [
        ChildSpec(
            "webhooks" if i == 0 else f"webhooks-{i + 1}", [*python, "webhooks"], stop_timeout=20
        )
        for i in range(processes)
    ]
