"""The demo account ``smpp-bridge run`` creates on first start, and the curl lines it prints.

First start: account ``demo`` with a random password, 1000.00 in the configured currency, and a
90-day API key; the credentials are kept in ``<var>/demo.json`` (mode 0600) so later starts can
print them again. If that key stops working (revoked, expired), a new one is made. If the account
exists but the file is gone, only a new key is made (the password is never reset).
"""

from __future__ import annotations

import json
import os
import secrets
import shlex
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from bridge.config import Config
from bridge.errors import NotFound, Unauthorized
from bridge.storage.ledger import money_str

USERNAME = "demo"
OPENING_BALANCE = Decimal("1000.00")
DEMO_NUMBER = "0701234567"


@dataclass
class DemoAccount:
    username: str
    password: str | None  # None when it was not kept (account made before var/demo.json)
    api_key: str
    balance: str
    currency: str

    def describe(self, base_url: str) -> list[str]:
        """The lines to print: credentials and two curl commands that work as shown."""
        password = self.password or "(set at first start; not stored)"
        key = f"X-API-Key: {self.api_key}"
        send = [
            "curl",
            "-s",
            "-X",
            "POST",
            f"{base_url}/api/v2/sms/send",
            "-H",
            key,
            "-d",
            f"numbers={DEMO_NUMBER}",
            "-d",
            "message_body=Hello from smpp-bridge",
        ]
        balance = ["curl", "-s", f"{base_url}/api/v2/account/balance", "-H", key]
        return [
            (
                f"Demo account: username {self.username}, password {password}, "
                f"balance {self.balance} {self.currency}"
            ),
            f"Demo API key: {self.api_key}",
            "Try:",
            "  " + shlex.join(send),
            "  " + shlex.join(balance),
            "Send, then follow the message to `delivered` (engine: simulated SMSC):",
            "  " + follow_line(send, base_url, key),
        ]


def follow_line(send: list[str], base_url: str, key: str) -> str:
    """A shell line: send, then GET /api/v2/sms/{message_id} a second later."""
    pick = 'import json,sys; print(json.load(sys.stdin)["messages"][0]["message_id"])'
    get = ["curl", "-s", f"{base_url}/api/v2/sms/$MID", "-H", key]
    return f"MID=$({shlex.join(send)} | python3 -c {shlex.quote(pick)}) && sleep 1 && " + " ".join(
        shlex.quote(a) if "$MID" not in a else f'"{a}"' for a in get
    )


def ensure_demo(config: Config) -> DemoAccount:
    """Create the demo account and key if needed; return what to print."""
    from bridge.service import open_service

    path = Path(config.var_dir) / "demo.json"
    service = open_service(config.replace(redis_url=None), run_sweeper=False)
    try:
        saved = _load(path)
        try:
            account = service.account_by_username(USERNAME)
        except NotFound:
            password = secrets.token_urlsafe(12)
            account = service.create_account(USERNAME, password, balance=OPENING_BALANCE)
            saved = {"password": password}
        if not _key_works(service, saved.get("api_key"), account.id):
            saved["api_key"] = service.generate_key(account.id, expiry_days=90).api_key
        _save(path, saved)
        balance = service.balance(account.id)
        return DemoAccount(
            USERNAME,
            saved.get("password"),
            saved["api_key"],
            money_str(balance.balance),
            balance.currency,
        )
    finally:
        service.close()


def _key_works(service, api_key: str | None, account_id: int) -> bool:
    if not api_key:
        return False
    try:
        return service.verify_key(api_key).account_id == account_id
    except Unauthorized:
        return False


def _load(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
    except (FileNotFoundError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _save(path: Path, data: dict) -> None:
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump({k: v for k, v in data.items() if v is not None}, fh, indent=1)
    os.replace(tmp, path)
