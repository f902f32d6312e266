"""Admin commands: ``account create|topup|show|set-callback|rotate-webhook-secret``, ``key
create``, ``db upgrade``.

They talk to the database only (no Redis). They neither create nor migrate it: on a missing
SQLite file or a database without the tables they stop with a one-line error saying to run
``smpp-bridge db upgrade`` (``run`` applies migrations itself), so a typo in DATABASE_URL never
silently creates a new empty database.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Iterator

from sqlalchemy.exc import SQLAlchemyError

from bridge.cli import CommandError, inbound, webhooks
from bridge.cli.database import first_line, open_migrated, shown_url
from bridge.config import Config, load_config
from bridge.errors import BridgeError
from bridge.storage.ledger import money_str, parse_amount


def register(subparsers) -> None:
    account = subparsers.add_parser("account", help="create, top up and show accounts")
    acts = account.add_subparsers(dest="action", metavar="ACTION")
    acts.required = True
    create = acts.add_parser("create", help="create an account")
    create.add_argument("username")
    create.add_argument("--password", required=True, help="the password ('-' reads it from stdin)")
    create.add_argument("--balance", default="0", help="opening balance (default 0)")
    create.add_argument("--sender-id", help="default sender id (else the configured default)")
    create.add_argument(
        "--allow-sender-id",
        action="append",
        default=[],
        metavar="S",
        help="another sender id the account may use (repeatable)",
    )
    create.add_argument(
        "--callback-url",
        help="default webhook URL of its sends (http/https, a public address unless "
        "webhook_allow_networks allows it)",
    )
    create.add_argument(
        "--callback-events",
        choices=("final", "all"),
        help="default events of its sends' callbacks: final (default) or all (adds submitted)",
    )
    create.add_argument("--rate-limit", type=int, help="requests per minute (else the default)")
    create.set_defaults(handler=account_create)
    topup = acts.add_parser("topup", help="add money to an account")
    topup.add_argument("username")
    topup.add_argument("amount")
    topup.set_defaults(handler=account_topup)
    show = acts.add_parser("show", help="show an account, its balance and its keys")
    show.add_argument("username")
    show.set_defaults(handler=account_show)
    callback = acts.add_parser(
        "set-callback",
        help="set or clear the default webhook URL and events of the account's sends",
        description="The defaults a send without callback_url (every /v1 send) or without "
        "callback_events gets; sends already accepted keep theirs. The URL must be http(s) and "
        "reach a public address unless webhook_allow_networks allows its network.",
    )
    callback.add_argument("username")
    callback.add_argument("--url", help="http(s) URL, or '-' for none")
    callback.add_argument(
        "--events",
        choices=("final", "all", "-"),
        help="final, all (adds submitted), or '-' for the default (final)",
    )
    callback.set_defaults(handler=account_set_callback)
    webhooks.register_account_actions(acts)  # rotate-webhook-secret
    inbound.register_account_actions(acts)  # set-inbound-url

    key = subparsers.add_parser("key", help="API keys")
    key_acts = key.add_subparsers(dest="action", metavar="ACTION")
    key_acts.required = True
    kcreate = key_acts.add_parser("create", help="make an API key (printed once)")
    kcreate.add_argument("username")
    kcreate.add_argument("--expiry-days", type=int, default=90, help="1..365 (default 90)")
    kcreate.set_defaults(handler=key_create)

    db = subparsers.add_parser("db", help="database schema")
    db_acts = db.add_subparsers(dest="action", metavar="ACTION")
    db_acts.required = True
    up = db_acts.add_parser("upgrade", help="apply the migrations up to the newest")
    up.set_defaults(handler=db_upgrade)


@contextlib.contextmanager
def _service(config: Config | None = None) -> Iterator:
    """A BridgeService without Redis on an existing, migrated database; errors become one line."""
    from bridge.service import BridgeService

    config = config or load_config()
    db = open_migrated(config)
    try:
        service = BridgeService(config, db, None, run_sweeper=False)
        try:
            yield service
        except BridgeError as exc:
            raise CommandError(exc.message.rstrip(".")) from None
        finally:
            service.flusher.stop()
    finally:
        db.dispose()


def _password(raw: str) -> str:
    if raw == "-":
        raw = sys.stdin.readline().rstrip("\r\n")
    if not raw:
        raise CommandError("the password must not be empty")
    return raw


def _amount(raw: str, what: str, allow_zero: bool = False):
    try:
        return parse_amount(raw, what, allow_zero=allow_zero)
    except BridgeError as exc:
        raise CommandError(exc.message.rstrip(".")) from None


def account_create(args: argparse.Namespace) -> int:
    balance = _amount(args.balance, "balance", allow_zero=True)
    password = _password(args.password)
    with _service() as service:
        info = service.create_account(
            args.username,
            password,
            balance=balance,
            sender_id=args.sender_id,
            allowed_sender_ids=args.allow_sender_id,
            callback_url=args.callback_url,
            rate_limit_per_minute=args.rate_limit,
            callback_events=args.callback_events,
        )
        _print_account(service, info)
    return 0


def account_topup(args: argparse.Namespace) -> int:
    amount = _amount(args.amount, "amount")
    with _service() as service:
        info = service.account_by_username(args.username)
        balance = service.topup(info.id, amount, note="admin top-up")
        print(f"username: {info.username}")
        print(f"added: {money_str(amount)} {info.currency}")
        print(f"balance: {money_str(balance)} {info.currency}")
    return 0


def account_show(args: argparse.Namespace) -> int:
    with _service() as service:
        _print_account(service, service.account_by_username(args.username))
    return 0


def account_set_callback(args: argparse.Namespace) -> int:
    changes = {
        column: None if value == "-" else value
        for column, value in (("callback_url", args.url), ("callback_events", args.events))
        if value is not None
    }
    if not changes:
        raise CommandError("give --url, --events or both ('-' clears one)")
    with _service() as service:
        info = service.account_by_username(args.username)
        service.set_callback_defaults(info.id, **changes)
        info = service.account_by_username(args.username)
    print(f"username: {info.username}")
    print(f"callback url: {info.callback_url or '-'}")
    print(f"callback events: {info.callback_events or 'final'}")
    return 0


def _print_account(service, info) -> None:
    config = service.config
    print(f"username: {info.username}")
    print(f"id: {info.id}")
    print(f"active: {'yes' if info.active else 'no'}")
    print(f"balance: {money_str(info.balance)} {info.currency}")
    default = info.default_sender_id or f"{config.default_sender_id} (configured default)"
    print(f"sender id: {default}")
    print(f"allowed sender ids: {', '.join(info.allowed_sender_ids) or '-'}")
    print(f"callback url: {info.callback_url or '-'}")
    print(f"callback events: {info.callback_events or 'final'}")
    print(f"inbound url: {info.inbound_url or '-'}")
    for line in webhooks.secret_lines(service, info.id):
        print(line)
    limit = info.rate_limit_per_minute
    print(
        f"rate limit: {limit or config.rate_limit_per_minute}/min"
        + ("" if limit else " (configured default)")
    )
    for key in service.list_keys(info.id):
        state = (
            "revoked " + key.revoked_at.isoformat(timespec="seconds")
            if key.revoked_at
            else "expires " + key.expires_at.isoformat(timespec="seconds")
        )
        used = key.last_used_at.isoformat(timespec="seconds") if key.last_used_at else "never"
        print(
            f"key: {key.prefix}_... created {key.created_at.isoformat(timespec='seconds')},"
            f" {state}, last used {used}"
        )


def key_create(args: argparse.Namespace) -> int:
    with _service() as service:
        info = service.account_by_username(args.username)
        new = service.generate_key(info.id, expiry_days=args.expiry_days)
        print(f"username: {info.username}")
        print(f"key id: {new.key_id}")
        print(f"expires at: {new.expires_at.isoformat(timespec='seconds')}")
        print(f"api key: {new.api_key}")
        print("(the key is shown only this once; only its hash is stored)", file=sys.stderr)
    return 0


def db_upgrade(args: argparse.Namespace) -> int:
    from alembic.util import CommandError as AlembicError

    from bridge.storage.db import head_revision, upgrade

    url = load_config().effective_database_url
    try:
        upgrade(url)
    except (SQLAlchemyError, AlembicError, OSError) as exc:  # one line, not a traceback
        raise CommandError(f"cannot migrate {shown_url(url)}: {first_line(exc)}") from None
    print(f"database: {shown_url(url)}")
    print(f"revision: {head_revision()} (newest)")
    return 0
