"""Inbound messages and opt-outs of the key's account: ``GET /api/v2/inbox``,
``GET /api/v2/inbox/{inbound_id}``, ``GET|POST /api/v2/optouts`` and
``DELETE /api/v2/optouts/{number}``. Another account's ids and numbers answer 404."""

from __future__ import annotations

from typing import Any

import falcon
from marshmallow import Schema, fields, validate

from api.params import request_params
from api.resources.messages import answers
from api.schemas import (
    Limit,
    ListParams,
    Moment,
    _Params,
    load,
    number_filter,
    short_code_filter,
    text,
)
from bridge.accept.numbers import to_e164
from bridge.errors import InvalidInput
from bridge.inbound.inbox import InboxFilters, iso

INBOX = "/api/v2/inbox"
INBOUND = "/api/v2/inbox/{inbound_id}"
OPTOUTS = "/api/v2/optouts"
OPTOUT = "/api/v2/optouts/{number}"

INBOX_TEXT = """\
Messages handsets sent to this account's numbers (mobile-originated), **newest first** by the
time the bridge stored them, one page at a time. An inbound message belongs to the account the
operator's `[[inbound]]` routing gives it (by the number it was sent to and, optionally, its
first word); another account's messages never appear.

Filters combine (all given ones must hold): `number` (the handset that sent it, any form a send
accepts), `to` (the short code or long number it was sent to: 3 to 15 digits, a leading +
allowed), `keyword` (its first word, any case), `since` (stored at or after) and `until` (stored
before), times in ISO 8601 with an offset. A bad filter, or any parameter given empty
(`to=`), answers 400 naming it in `field`, as `GET /api/v2/sms` does: leave out a filter you do
not use. `limit` is 1..1000 (default 100); when more follow, `next_cursor` is set: pass it as
`cursor` with the same filters for the next page (`null`: the last page).

Each message was stored before the bridge acknowledged it to the SMSC, once (an SMSC redelivery
is recognised and not stored again); a message sent in parts arrives whole. `action` is
`optout` when it opted the handset out of this account's messages (its first word STOP and the
like, or, on a short code shared by keyword, `STOP <keyword>` / `<keyword> STOP`), `optin` when
it opted back in (START), else null. Words are compared in any case and without the
punctuation around them."""

OPTOUTS_TEXT = """\
The numbers that opted out of this account's messages, in number order, a page at a time
(`limit` 1..1000, default 100; `next_cursor` as for the inbox; a parameter given empty answers
400 naming it). A number gets on the list when
it sends one of the operator's opt-out words (STOP, STOPALL, UNSUBSCRIBE, CANCEL, END, QUIT by
default; `source` "sms"; on a short code this account shares by keyword, `STOP <keyword>` or
`<keyword> STOP`) or by `POST /api/v2/optouts` (`source` "api"), and off it when it sends an
opt-in word (START, UNSTOP; `START <keyword>`) or by `DELETE /api/v2/optouts/{number}`.

A send to an opted-out number leaves that number out: it is not sent and not charged, and the
send's answer lists it under `refused` with the reason `opted out`; when every number of a send
opted out the answer is 400 with the same `refused` list."""

ADD_TEXT = """\
Opt `number` (any form a send accepts) out of this account's messages. 201 with the entry when
it is new, 200 with the existing entry when it was already on the list."""

REMOVE_TEXT = """\
Take `number` off this account's opt-out list (sends reach it again). 404 when it is not on the
list. Write the + of an E.164 number as `%2B` or leave it out (`254701234567`)."""


class InboxParams(ListParams):
    """Parameters of ``GET /api/v2/inbox``."""

    number = text("number", max_length=64, description="Only messages from this handset.")
    to = text(
        "to",
        max_length=24,
        description="Only messages sent to this short code or long number (3 to 15 digits, a "
        "leading + allowed).",
        example="22141",
    )
    keyword = text("keyword", max_length=32, description="Only messages whose first word is this.")
    since = Moment("since", "Only messages stored at or after this time.")
    until = Moment("until", "Only messages stored before this time.")
    limit = Limit()
    cursor = text("cursor", max_length=120, description="The `next_cursor` of the previous page.")
    api_key = text("api_key", description="The API key, if not sent as the X-API-Key header.")


class OptOutListParams(ListParams):
    """Parameters of ``GET /api/v2/optouts``."""

    limit = Limit()
    cursor = text("cursor", max_length=60, description="The `next_cursor` of the previous page.")
    api_key = text("api_key", description="The API key, if not sent as the X-API-Key header.")


class OptOutParams(_Params):
    """Parameters of ``POST /api/v2/optouts``."""

    number = text(
        "number",
        required=True,
        max_length=64,
        description="The number to opt out, in any form a send accepts.",
        example="+254701234567",
    )
    api_key = text("api_key", description="The API key, if not sent as the X-API-Key header.")


class InboundAnswer(Schema):
    id = fields.String(required=True, metadata={"description": "The inbound message's id."})
    number = fields.String(required=True, metadata={"description": "The handset (E.164)."})
    to = fields.String(required=True, metadata={"description": "The number it was sent to."})
    text = fields.String(required=True, metadata={"description": "The whole text."})
    keyword = fields.String(
        allow_none=True,
        metadata={"description": "Its first word, upper case, without punctuation around it."},
    )
    parts = fields.Integer(required=True, metadata={"description": "SMS parts it came in."})
    action = fields.String(
        allow_none=True,
        validate=validate.OneOf(["optout", "optin"]),
        metadata={"description": "optout / optin when it opted the handset out / in."},
    )
    received_at = fields.String(required=True, metadata={"format": "date-time"})


class InboxAnswer(Schema):
    messages = fields.List(fields.Nested(InboundAnswer), required=True)
    next_cursor = fields.String(required=True, allow_none=True)


class OptOutAnswer(Schema):
    number = fields.String(required=True, metadata={"description": "E.164."})
    source = fields.String(required=True, metadata={"description": "sms (an opt-out word) or api."})
    created_at = fields.String(required=True, metadata={"format": "date-time"})


class OptOutListAnswer(Schema):
    optouts = fields.List(fields.Nested(OptOutAnswer), required=True)
    next_cursor = fields.String(required=True, allow_none=True)


class OptOutRemovedAnswer(Schema):
    number = fields.String(required=True)
    removed = fields.Boolean(required=True)


def _optout(entry) -> dict[str, Any]:
    return {"number": entry.number, "source": entry.source, "created_at": iso(entry.created_at)}


class Inbox:
    auth = "api_key"

    def __init__(self, service, max_body_bytes: int) -> None:
        self._service, self._max_body_bytes = service, max_body_bytes
        self._schema = InboxParams()

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        args = load(self._schema, request_params(req, self._max_body_bytes))
        since, until = args.get("since"), args.get("until")
        if since is not None and until is not None and until <= since:
            raise InvalidInput("until must be later than since.", field="until")
        region = self._service.config.default_region
        number, to, keyword = args.get("number"), args.get("to"), args.get("keyword")
        filters = InboxFilters(
            number=number_filter(number, region) if number is not None else None,
            to=short_code_filter(to) if to is not None else None,
            keyword=keyword.strip().upper() if keyword is not None else None,
            since=since,
            until=until,
        )
        page = self._service.inbox(
            req.context.key.account_id, filters, args["limit"], args.get("cursor")
        )
        resp.media = {"messages": page.entries, "next_cursor": page.next_cursor}


class InboundMessage:
    auth = "api_key"

    def __init__(self, service) -> None:
        self._service = service

    def on_get(self, req: falcon.Request, resp: falcon.Response, inbound_id: str) -> None:
        resp.media = self._service.inbound_message(req.context.key.account_id, inbound_id)


class OptOuts:
    auth = "api_key"

    def __init__(self, service, max_body_bytes: int) -> None:
        self._service, self._max_body_bytes = service, max_body_bytes
        self._list, self._add = OptOutListParams(), OptOutParams()

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        args = load(self._list, request_params(req, self._max_body_bytes))
        page = self._service.optouts(req.context.key.account_id, args["limit"], args.get("cursor"))
        resp.media = {
            "optouts": [_optout(e) for e in page.optouts],
            "next_cursor": page.next_cursor,
        }

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        args = load(self._add, request_params(req, self._max_body_bytes))
        number = number_filter(args["number"], self._service.config.default_region)
        entry, added = self._service.add_optout(req.context.key.account_id, number)
        resp.status = falcon.HTTP_201 if added else falcon.HTTP_200
        resp.media = _optout(entry)


class OptOut:
    auth = "api_key"

    def __init__(self, service) -> None:
        self._service = service

    def on_delete(self, req: falcon.Request, resp: falcon.Response, number: str) -> None:
        region = self._service.config.default_region
        raw = number if number.startswith("+") or not number.isdigit() else "+" + number
        e164 = to_e164(raw.strip(), region) or number_filter(number, region)
        self._service.remove_optout(req.context.key.account_id, e164)
        resp.media = {"number": e164, "removed": True}


def routes(app: falcon.App, service, max_body_bytes: int) -> None:
    app.add_route(INBOX, Inbox(service, max_body_bytes))
    app.add_route(INBOUND, InboundMessage(service))
    app.add_route(OPTOUTS, OptOuts(service, max_body_bytes))
    app.add_route(OPTOUT, OptOut(service))


def document(
    spec, headers, error_text: dict[int, str], security: list, callbacks: dict | None = None
) -> None:
    """Add the schemas and operations to an apispec ``spec`` (called by api/openapi.py);
    ``callbacks``: the inbox's, the inbound webhook (api/openapi_callbacks.py)."""
    for name, schema in (
        ("InboundMessage", InboundAnswer),
        ("Inbox", InboxAnswer),
        ("OptOut", OptOutAnswer),
        ("OptOutList", OptOutListAnswer),
        ("OptOutRemoved", OptOutRemovedAnswer),
    ):
        spec.components.schema(name, schema=schema)

    texts = {**error_text, 404: "Not this account's: an unknown id or a number not on the list."}

    def errs(*codes: int) -> dict[int, str]:
        return {code: texts[code] for code in codes}

    query = [{"in": "query", "schema": InboxParams(exclude=("api_key",))}]
    spec.path(
        path=INBOX,
        operations={
            "get": {
                "summary": "List inbound messages",
                "description": INBOX_TEXT,
                "operationId": "list_inbox",
                "security": security,
                "parameters": query,
                "responses": answers(
                    headers, "A page of inbound messages.", InboxAnswer, errs(400, 401, 429, 503)
                ),
                "callbacks": callbacks or {},  # the inbound webhook
            }
        },
    )
    spec.path(
        path=INBOUND,
        operations={
            "get": {
                "summary": "One inbound message",
                "description": "One of this account's inbound messages; 404 for any other id.",
                "operationId": "get_inbound",
                "security": security,
                "parameters": [
                    {
                        "in": "path",
                        "name": "inbound_id",
                        "required": True,
                        "schema": {"type": "string"},
                    }
                ],
                "responses": answers(
                    headers, "The inbound message.", InboundAnswer, errs(401, 404, 429, 503)
                ),
            }
        },
    )
    added = answers(
        headers, "Already on the list: the entry.", OptOutAnswer, errs(400, 401, 429, 503)
    )
    added[201] = {**added[200], "description": "Added: the new entry."}
    spec.path(
        path=OPTOUTS,
        operations={
            "get": {
                "summary": "List opt-outs",
                "description": OPTOUTS_TEXT,
                "operationId": "list_optouts",
                "security": security,
                "parameters": [{"in": "query", "schema": OptOutListParams(exclude=("api_key",))}],
                "responses": answers(
                    headers, "A page of opt-outs.", OptOutListAnswer, errs(400, 401, 429, 503)
                ),
            },
            "post": {
                "summary": "Opt a number out",
                "description": ADD_TEXT,
                "operationId": "add_optout",
                "security": security,
                "requestBody": {
                    "content": {
                        media: {"schema": OptOutParams(exclude=("api_key",))}
                        for media in (
                            "application/json",
                            "application/x-www-form-urlencoded",
                            "multipart/form-data",
                        )
                    }
                },
                "responses": added,
            },
        },
    )
    spec.path(
        path=OPTOUT,
        operations={
            "delete": {
                "summary": "Opt a number back in",
                "description": REMOVE_TEXT,
                "operationId": "remove_optout",
                "security": security,
                "parameters": [
                    {"in": "path", "name": "number", "required": True, "schema": {"type": "string"}}
                ],
                "responses": answers(
                    headers, "Removed.", OptOutRemovedAnswer, errs(400, 401, 404, 429, 503)
                ),
            }
        },
    )
