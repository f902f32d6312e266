"""Settlement: everything that turns SMPP outcomes into stored message states and money, once.

The public surface of settlement; the code lives in this package
(outcomes, rules, core and its compiled statements, money, writer) and bridge/delivery/settlement/correlation.py (Redis correlation).

Typical use in the worker::

    settlement = Settlement(db, redis)
    writer = SettlementWriter(settlement, on_settled=xack_entries_of)
    writer.start()
    result = settlement.claim(batch, recovered=False)    # before any byte goes out
    ...ack result.duplicates' entries, submit result.claimed...
    writer.put(Submitted(mid, smsc_ids, "conn-a", time.time(), id_form="hex"))
    writer.put(Failed(mid, MessageState.REJECTED, "ESME_RINVDSTADR", time.time()))
    writer.put(ReceiptIn("conn-a", "hex", receipt, time.time()))   # from on_receipt
    writer.stop()

Guarantees (tested on SQLite and PostgreSQL with a real Redis):
- transitions are conditional and never go backwards (accepted < queued < submitted < final);
- a Failed (rejected | failed | expired) refunds the message exactly once, in the transaction
  that changed its state (ledger dedupe key ``refund:<id>`` is UNIQUE); receipts never refund;
- a receipt applies whether it arrives before or after its submit_sm_resp, once;
- a multipart message is delivered when all its parts are; its first final non-delivered part
  decides otherwise.
"""

from bridge.delivery.settlement.core import Settlement, StaleRows
from bridge.delivery.settlement.correlation import ReceiptBook
from bridge.delivery.settlement.outcomes import (
    Applied,
    Claimed,
    ClaimResult,
    Failed,
    Finalised,
    Outcome,
    PartReceipt,
    ReceiptEvent,
    ReceiptIn,
    Submitted,
)
from bridge.delivery.settlement.writer import SettlementWriter, WriterStats

__all__ = [
    "Applied",
    "ClaimResult",
    "Claimed",
    "Failed",
    "Finalised",
    "Outcome",
    "PartReceipt",
    "ReceiptBook",
    "ReceiptEvent",
    "ReceiptIn",
    "Settlement",
    "SettlementWriter",
    "StaleRows",
    "Submitted",
    "WriterStats",
]
