"""``smpp-bridge inbox unrouted`` (the MO no account got) and ``smpp-bridge account
set-inbound-url NAME URL`` (where an account's MO are POSTed)."""

from __future__ import annotations

import argparse

from bridge.inbound.inbox import InboxFilters


def register(subparsers) -> None:
    inbox = subparsers.add_parser("inbox", help="inbound (MO) messages no account got")
    acts = inbox.add_subparsers(dest="action", metavar="ACTION")
    acts.required = True
    unrouted = acts.add_parser(
        "unrouted",
        help="list the MO no [[inbound]] table or default account routed, newest first",
        description="MO that matched no [[inbound]] table (and no inbound_default_account, or "
        "a routed account that does not exist or is disabled) are kept with no account. Add a "
        "table for their number (or keyword) to route later ones.",
    )
    unrouted.add_argument("--limit", type=int, default=50, help="how many (1-1000, default 50)")
    unrouted.set_defaults(handler=inbox_unrouted)


def register_account_actions(acts) -> None:
    url = acts.add_parser(
        "set-inbound-url",
        help="POST the account's inbound (MO) messages to URL ('-' for none)",
        description="Each MO routed to the account is POSTed to URL as an 'inbound.received' "
        "event, signed and retried like delivery webhooks. The URL must be http(s) and reach a "
        "public address unless webhook_allow_networks allows its network.",
    )
    url.add_argument("username")
    url.add_argument("url", help="http(s) URL, or '-' to stop POSTing")
    url.set_defaults(handler=account_set_inbound_url)


def inbox_unrouted(args: argparse.Namespace) -> int:
    from bridge.cli import CommandError
    from bridge.cli.admin import _service

    if not 1 <= args.limit <= 1000:
        raise CommandError("--limit must be from 1 to 1000")
    with _service() as service:
        total = service.unrouted_count()
        page = service.inbox(None, InboxFilters(), args.limit)
    print(f"unrouted inbound messages: {total}")
    for m in page.entries:
        text = m["text"].replace("\n", " ")
        print(f"{m['received_at']}  {m['id']}  from {m['number']} to {m['to']}: {text[:80]}")
    return 0


def account_set_inbound_url(args: argparse.Namespace) -> int:
    from bridge.cli.admin import _service

    url = None if args.url == "-" else args.url
    with _service() as service:
        info = service.account_by_username(args.username)
        service.set_inbound_url(info.id, url)
    print(f"{args.username}: inbound url {url or '-'}")
    return 0
