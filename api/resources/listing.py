"""``GET /api/v2/sms``: the key's account's messages, newest first, filtered, a page at a time.

Each entry is the message as ``GET /api/v2/sms/{message_id}`` shows it without ``events`` (the
history costs a query per message; follow the id for it). The page is keyset-paginated on
(created_at, id) and every filter is served by its own index (bridge.delivery.settlement.search),
so page 10,000 of an account with ten million messages costs what the first page does.
"""

from __future__ import annotations

from typing import Any

import falcon
from marshmallow import Schema, fields

from api.params import request_params
from api.resources.messages import MessageSummaryAnswer, answers, render_summaries
from api.schemas import ListMessagesParams, load, number_filter
from bridge.delivery.settlement.search import Filters, list_messages
from bridge.delivery.settlement.view import reading
from bridge.errors import InvalidInput

PATH = "/api/v2/sms"
OPERATION_ID = "list_messages"
SUMMARY = "List and find messages"
DESCRIPTION = """\
The messages sent with this key's account, **newest first** (by acceptance time, then id),
one page at a time. Filters narrow the list and combine (all given ones must hold): `batch_id`,
`reference` (exact), `state`, `number` (any form the send accepts; matched as E.164), `since`
(accepted at or after) and `until` (accepted before), times in ISO 8601 with an offset.
Another account's messages never appear; another account's `batch_id` simply matches nothing.

Each entry is the message as `GET /api/v2/sms/{message_id}` answers it, without `events`.
`limit` is 1..1000 (default 100). When more messages follow, `next_cursor` is set: pass it as
`cursor` (same filters) for the next page; `null` means this was the last page. A cursor is a
position, not a snapshot: messages accepted after the walk began are newer than its first
page and appear when you start again from the top, never as duplicates or in a later page.

Every filter is served by an index (no sort, no scan of other accounts' messages); a bad
`cursor`, `limit`, time or filter answers 400 naming it in `field`. So does any parameter given
empty (`reference=`): an empty value is neither matched nor ignored; leave out a filter you do
not use."""


class MessageList:
    auth = "api_key"

    def __init__(self, service, max_body_bytes: int) -> None:
        self._service = service
        self._max_body_bytes = max_body_bytes
        self._schema = ListMessagesParams()

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        args = load(self._schema, request_params(req, self._max_body_bytes))
        filters = self._filters(args)
        page = reading(
            self._service.db,
            list_messages,
            req.context.key.account_id,
            filters,
            args["limit"],
            args.get("cursor"),
        )
        resp.media = {
            "messages": render_summaries(page.messages),
            "next_cursor": page.next_cursor,
        }

    def _filters(self, args: dict[str, Any]) -> Filters:
        number = args.get("number")
        if number is not None:
            number = number_filter(number, self._service.config.default_region)
        since, until = args.get("since"), args.get("until")
        if since is not None and until is not None and until <= since:
            raise InvalidInput("until must be later than since.", field="until")
        batch_id = args.get("batch_id")
        return Filters(
            batch_id=batch_id.upper() if batch_id else None,
            reference=args.get("reference"),
            state=args.get("state"),
            number=number,
            since=since,
            until=until,
        )


class MessageListAnswer(Schema):
    messages = fields.List(
        fields.Nested(MessageSummaryAnswer),
        required=True,
        metadata={"description": "Newest first; at most `limit`."},
    )
    next_cursor = fields.String(
        required=True,
        allow_none=True,
        metadata={"description": "Pass as `cursor` for the next page; null on the last page."},
    )


def document(spec, headers, error_text: dict[int, str], security: list) -> None:
    """Add the schemas and the operation to an apispec ``spec`` (called by api/openapi.py)."""
    spec.components.schema("MessageSummary", schema=MessageSummaryAnswer)
    spec.components.schema("MessageList", schema=MessageListAnswer)
    spec.components.schema("ListMessagesParams", schema=ListMessagesParams)
    errors = {code: error_text[code] for code in (400, 401, 429, 503)}
    spec.path(
        path=PATH,
        operations={
            "get": {
                "summary": SUMMARY,
                "description": DESCRIPTION,
                "operationId": OPERATION_ID,
                "security": security,
                "responses": answers(headers, "A page of messages.", MessageListAnswer, errors),
                # the api_key query parameter is the ApiKeyQuery security scheme, not listed twice
                "parameters": [{"in": "query", "schema": ListMessagesParams(exclude=("api_key",))}],
            }
        },
    )
