"""Sending: ``POST /v1/sms/send`` (credentials per request) and ``/api/v2/sms/send`` (API key).

Both answer the service's result as is (money already as text). An ``Idempotency-Key`` header is
passed to the service; a replayed answer is the first one, marked ``Idempotent-Replayed: true``.
"""

from __future__ import annotations

import falcon

from api.auth import account_credentials
from api.params import request_params
from api.schemas import LegacySendParams, SendParams, load
from bridge.errors import Unauthorized

IDEMPOTENCY_HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
# Relative to the API's own address (RFC 3986): the bridge cannot know the name clients reach it
# by behind a proxy, and a stored answer must stay right if that name changes.
STATUS_URL = "/api/v2/sms/{message_id}"


class LegacySend:
    """``POST /v1/sms/send``: username and password in every request (or HTTP Basic)."""

    def __init__(self, service, max_body_bytes: int) -> None:
        self._service = service
        self._max_body_bytes = max_body_bytes
        self._schema = LegacySendParams()

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        params = request_params(req, self._max_body_bytes)
        credentials = account_credentials(req, params)
        if credentials is None:
            raise Unauthorized()
        account = self._service.authenticate(*credentials, address=req.remote_addr)
        args = load(self._schema, params)
        result = self._service.send(
            account.id,
            args["numbers"],
            args["message_body"],
            sender_id=args.get("sender_id"),
            idempotency_key=idempotency_key(req),
        )
        render(resp, result)


class Send:
    """``GET|POST /api/v2/sms/send``: the key was verified by the guard (``req.context.key``)."""

    auth = "api_key"

    def __init__(self, service, max_body_bytes: int) -> None:
        self._service = service
        self._max_body_bytes = max_body_bytes
        self._schema = SendParams()

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        args = load(self._schema, request_params(req, self._max_body_bytes))
        result = self._service.send(
            req.context.key.account_id,
            args["numbers"],
            args["message_body"],
            sender_id=args.get("sender_id"),
            reference=args.get("reference"),
            callback_url=args.get("callback_url"),
            callback_events=args.get("callback_events"),
            idempotency_key=idempotency_key(req),
            send_at=args.get("send_at"),
            validity=args.get("validity"),
        )
        render(resp, result)

    on_get = on_post


def idempotency_key(req: falcon.Request) -> str | None:
    """The ``Idempotency-Key`` header, stripped; None when absent or blank (the service checks
    its length)."""
    value = (req.get_header(IDEMPOTENCY_HEADER) or "").strip()
    return value or None


def render(resp: falcon.Response, result) -> None:
    """The service's answer; each accepted message gets its ``status_url`` (a replayed answer
    stored before status_url existed gets it too)."""
    resp.status = result.status_code
    for message in result.body.get("messages", ()) if result.status_code == 200 else ():
        message.setdefault("status_url", STATUS_URL.format(message_id=message["message_id"]))
    resp.media = result.body
    if result.replayed:
        resp.set_header(REPLAYED_HEADER, "true")
