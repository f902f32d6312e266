"""``GET /api/v2/account/balance``: the balance of the key's account."""

from __future__ import annotations

import falcon

from bridge.storage.ledger import money_str


class Balance:
    auth = "api_key"

    def __init__(self, service) -> None:
        self._service = service

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        info = self._service.balance(req.context.key.account_id)
        resp.media = {
            "username": info.username,
            "balance": money_str(info.balance),
            "currency": info.currency,
        }
