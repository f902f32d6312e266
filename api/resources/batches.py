"""``GET /api/v2/batches/{batch_id}``: one send request's totals, for the key's account only.

Another account's batch id and an unknown one both answer ``404 {"error": "Batch not found."}``,
as ``GET /api/v2/sms/{message_id}`` does for messages (an id never tells who owns it).
"""

from __future__ import annotations

import falcon
from marshmallow import Schema, fields

from api.resources.messages import answers, iso, path_id
from api.schemas import money
from bridge.delivery.settlement.search import batch_summary
from bridge.delivery.settlement.view import reading
from bridge.storage.ledger import money_str
from bridge.storage.states import MessageState

PATH = "/api/v2/batches/{batch_id}"
OPERATION_ID = "batch_status"
SUMMARY = "Batch totals"
DESCRIPTION = """\
The totals of one send request (its `batch_id` from the send answer): how many messages and
parts, what it cost, how much of that was refunded (messages that never reached the SMSC), and
how many of its messages are in each state right now (`states` lists every state, 0 included).
What the batch costs the account in the end is `cost` minus `refunded`. Another account's
batch id, or an unknown one, answers 404 `{"error": "Batch not found."}`."""


class BatchStatus:
    """GET: the batch's totals; DELETE: cancel what of it can still be cancelled."""

    auth = "api_key"

    def __init__(self, service, canceller=None) -> None:
        self._service = service
        self._canceller = canceller

    def on_delete(self, req: falcon.Request, resp: falcon.Response, batch_id: str) -> None:
        done = self._canceller.cancel_batch(req.context.key.account_id, batch_id)
        resp.media = {
            "batch_id": done.batch_id,
            "cancelled": done.cancelled,
            "already_cancelled": done.already_cancelled,
            "not_cancellable": done.not_cancellable,
            "refunded": money_str(done.refunded),
            "currency": done.currency,
            "states": done.states,
        }

    def on_get(self, req: falcon.Request, resp: falcon.Response, batch_id: str) -> None:
        batch = reading(self._service.db, batch_summary, req.context.key.account_id, batch_id)
        resp.media = {
            "batch_id": batch.batch_id,
            "count": batch.count,
            "parts": batch.parts,
            "cost": money_str(batch.cost),
            "refunded": money_str(batch.refunded),
            "currency": batch.currency,
            "states": batch.states,
            "created_at": iso(batch.created_at),
        }


class BatchAnswer(Schema):
    batch_id = fields.String(required=True)
    count = fields.Integer(required=True, metadata={"description": "Messages (recipients)."})
    parts = fields.Integer(required=True, metadata={"description": "SMS parts in all."})
    cost = money("Charged for the batch.")
    refunded = money("Refunded so far (messages that never reached the SMSC).")
    currency = fields.String(required=True, metadata={"example": "KES"})
    states = fields.Dict(
        keys=fields.String(),
        values=fields.Integer(),
        required=True,
        metadata={
            "description": "Messages per state; every state is listed.",
            "example": {state.value: 0 for state in MessageState}
            | {MessageState.DELIVERED.value: 9, MessageState.FAILED.value: 1},
        },
    )
    created_at = fields.String(
        required=True,
        metadata={
            "format": "date-time",
            "description": "When the batch was accepted. ISO 8601, UTC.",
            "example": "2030-03-17T17:48:00.000Z",
        },
    )


class BatchCancelAnswer(Schema):
    batch_id = fields.String(required=True)
    cancelled = fields.Integer(
        required=True, metadata={"description": "Messages cancelled (and refunded) now."}
    )
    already_cancelled = fields.Integer(
        required=True, metadata={"description": "Messages an earlier cancel had cancelled."}
    )
    not_cancellable = fields.Integer(
        required=True,
        metadata={"description": "Messages submitted, final or being submitted: not cancelled."},
    )
    refunded = money("Refunded by this request.")
    currency = fields.String(required=True, metadata={"example": "KES"})
    states = BatchAnswer._declared_fields["states"]


CANCEL_DESCRIPTION = """\
Cancel every message of a send request (its `batch_id`) that has not been submitted to the
SMSC yet (`scheduled`, or `accepted` / `queued` before a worker took it): each becomes
`cancelled` and is refunded, once. Messages already submitted, final or being submitted are
left as they are and counted in `not_cancellable` (`states` shows where every message is
now). A repeated cancel cancels and refunds nothing more. Another account's batch id, or an
unknown one, answers 404 `{"error": "Batch not found."}`."""


def document(spec, headers, error_text: dict[int, str], security: list) -> None:
    """Add the schema and the operation to an apispec ``spec`` (called by api/openapi.py)."""
    spec.components.schema("Batch", schema=BatchAnswer)
    spec.components.schema("BatchCancel", schema=BatchCancelAnswer)
    errors = {
        404: "Unknown batch id, or one of another account.",
        **{code: error_text[code] for code in (401, 429, 503)},
    }
    spec.path(
        path=PATH,
        operations={
            "get": {
                "summary": SUMMARY,
                "description": DESCRIPTION,
                "operationId": OPERATION_ID,
                "security": security,
                "responses": answers(headers, "The batch.", BatchAnswer, errors),
                "parameters": [BATCH_ID],
            },
            "delete": {
                "summary": "Cancel a batch",
                "description": CANCEL_DESCRIPTION,
                "operationId": "cancel_batch",
                "security": security,
                "responses": answers(headers, "What was cancelled.", BatchCancelAnswer, errors),
                "parameters": [BATCH_ID],
            },
        },
    )


BATCH_ID = path_id("batch_id", "A batch_id from the send answer.")
