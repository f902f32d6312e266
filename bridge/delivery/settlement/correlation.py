"""Receipt correlation in Redis: smsc message id -> (message id, part index), and orphan receipts.

When a submit_sm_resp is stored, :meth:`ReceiptBook.map_submit_ids` writes one key per id
spelling (``redis_keys.dlr_map_key``) with a TTL of the validity plus a margin. A receipt looks
its id up by (connection, spelling):

- form "dec" / "hex" / "str" (the connection's ``message_id_form``): one spelling,
  ``smpp.codec.receipt.canonical_id`` of the id, on both sides.
- form "auto": every spelling in ``id_forms`` (hex <-> decimal, leading zeros, case). The map
  writes the id's own spelling with SET (it wins) and the derived spellings with SET NX (first
  writer keeps them); a receipt tries its own spelling first. So "10" and "16", whose derived
  spellings collide, still find their own messages when both sides use one base.

A receipt with no mapping yet (it overtook its submit_sm_resp, or another worker has not stored
its resp) is parked as an orphan under its own spelling, with the orphan TTL. The two sides
close the race with atomic MULTI blocks: the map side writes its keys and takes the orphans of
every spelling of its ids in ONE block; the receipt side parks and re-reads the map in ONE
block, and when the map is there by then it takes its orphan back itself. Whichever block runs
second sees the other's write, so no receipt is stranded; both may see it, and applying a
receipt twice changes nothing.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime

from bridge.delivery.settlement.outcomes import ReceiptEvent
from bridge.redis import keys as redis_keys
from smpp.codec.message_id import clean_id
from smpp.codec.receipt import Receipt, canonical_id, id_forms

DEFAULT_MAP_TTL = 2 * 86_400  # seconds: longer than the default validity (1 day) plus margin
DEFAULT_ORPHAN_TTL = 3_600  # seconds a receipt waits for its submit_sm_resp to be stored
ORPHANS_PER_ID = 1000  # receipts taken per id spelling at once (LPOP count: Redis >= 6.2)


def own_spelling(smsc_id: str, form: str) -> str | None:
    """The key spelling of an id on its own side (None for an empty id)."""
    if form != "auto":
        return canonical_id(smsc_id, form) or None
    text = clean_id(smsc_id).lower()
    return (text.lstrip("0") or "0") if text else None


def spellings(smsc_id: str, form: str) -> list[str]:
    """Every key spelling of an id, its own first (one spelling unless form is "auto")."""
    own = own_spelling(smsc_id, form)
    if own is None:
        return []
    if form != "auto":
        return [own]
    return [own] + sorted(id_forms(smsc_id) - {own})


def encode_receipt(receipt: Receipt, at: float) -> str:
    """JSON for a parked receipt (dates in ISO 8601 as parsed, network_error as hex)."""
    fields = dict(receipt.__dict__)
    for name in ("submit_date", "done_date"):
        if fields[name] is not None:
            fields[name] = fields[name].isoformat()
    if fields["network_error"] is not None:
        fields["network_error"] = fields["network_error"].hex()
    return json.dumps({"at": at, "receipt": fields}, separators=(",", ":"))


def decode_receipt(payload: bytes | str) -> tuple[Receipt, float]:
    data = json.loads(payload)
    fields = data["receipt"]
    for name in ("submit_date", "done_date"):
        if fields[name] is not None:
            fields[name] = datetime.fromisoformat(fields[name])
    if fields["network_error"] is not None:
        fields["network_error"] = bytes.fromhex(fields["network_error"])
    return Receipt(**fields), float(data["at"])


def _target(value: bytes | str | None) -> tuple[str, int] | None:
    if value is None:
        return None
    text = value.decode() if isinstance(value, bytes) else value
    message_id, _, part = text.rpartition(":")
    return message_id, int(part)


class ReceiptBook:
    """The Redis side of receipt correlation (see the module docstring)."""

    def __init__(
        self,
        redis,
        *,
        map_ttl: int = DEFAULT_MAP_TTL,
        orphan_ttl: int = DEFAULT_ORPHAN_TTL,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._redis = redis
        self._map_ttl = int(map_ttl)
        self._orphan_ttl = int(orphan_ttl)
        self._clock = clock

    def map_submit_ids(
        self, connection: str, form: str, items: Sequence[tuple[str, int, str]]
    ) -> list[ReceiptEvent]:
        """Store (message_id, part_index, smsc_id) mappings; returns the orphans now matched.

        One MULTI round trip for any number of items.
        """
        if not items:
            return []
        pipe = self._redis.pipeline(transaction=True)
        orphans: dict[str, tuple[str, int]] = {}  # orphan key to take -> its (message, part)
        for message_id, part_index, smsc_id in items:
            value = f"{message_id}:{part_index}"
            for i, spelling in enumerate(spellings(smsc_id, form)):
                pipe.set(
                    redis_keys.dlr_map_key(connection, spelling), value, ex=self._map_ttl, nx=i > 0
                )
                orphans.setdefault(
                    redis_keys.dlr_orphan_key(connection, spelling), (message_id, part_index)
                )
        for okey in orphans:
            pipe.lpop(okey, ORPHANS_PER_ID)  # takes them; an emptied list is deleted
        taken = pipe.execute()[-len(orphans) :] if orphans else []
        return [
            self._event(connection, target, payload)
            for target, payloads in zip(orphans.values(), taken, strict=True)
            for payload in payloads or ()
        ]

    def correlate(
        self, connection: str, form: str, receipts: Iterable[tuple[Receipt, float]]
    ) -> tuple[list[ReceiptEvent], int]:
        """Match (receipt, seen_at) pairs; returns (matched events, number parked as orphans)."""
        items = [(r, at, spellings(r.message_id, form)) for r, at in receipts]
        items = [item for item in items if item[2]]  # an empty id matches nothing, ever
        if not items:
            return [], 0
        pipe = self._redis.pipeline(transaction=False)
        for _r, _at, keys in items:
            pipe.mget([redis_keys.dlr_map_key(connection, k) for k in keys])
        events, misses = [], []
        for (receipt, at, keys), values in zip(items, pipe.execute(), strict=True):
            target = next((_target(v) for v in values if v is not None), None)
            if target is None:
                misses.append((receipt, at, keys))
            else:
                events.append(self._make(connection, target, receipt, at))
        if not misses:
            return events, 0
        late_events, still_parked = self._park(connection, misses)
        return events + late_events, still_parked

    def _park(self, connection: str, misses: list) -> tuple[list[ReceiptEvent], int]:
        """Park the misses and re-read their maps atomically; take back the ones now mapped.

        Returns (events taken back, how many misses stay parked).
        """
        pipe = self._redis.pipeline(transaction=True)
        for receipt, at, keys in misses:
            okey = redis_keys.dlr_orphan_key(connection, keys[0])
            pipe.rpush(okey, encode_receipt(receipt, at))
            pipe.expire(okey, self._orphan_ttl)
            pipe.mget([redis_keys.dlr_map_key(connection, k) for k in keys])
        results = pipe.execute()
        late: dict[str, tuple[str, int]] = {}
        for (_receipt, _at, keys), values in zip(misses, results[2::3], strict=True):
            target = next((_target(v) for v in values if v is not None), None)
            if target is not None:
                late[redis_keys.dlr_orphan_key(connection, keys[0])] = target
        still_parked = len(misses) - sum(
            1 for _r, _at, keys in misses if redis_keys.dlr_orphan_key(connection, keys[0]) in late
        )
        if not late:
            return [], still_parked
        pipe = self._redis.pipeline(transaction=False)
        for okey in late:
            pipe.lpop(okey, ORPHANS_PER_ID)
        return [
            self._event(connection, target, payload)
            for target, payloads in zip(late.values(), pipe.execute(), strict=True)
            for payload in payloads or ()
        ], still_parked

    def _event(self, connection: str, target: tuple[str, int], payload) -> ReceiptEvent:
        receipt, at = decode_receipt(payload)
        return self._make(connection, target, receipt, at)

    @staticmethod
    def _make(
        connection: str, target: tuple[str, int], receipt: Receipt, at: float
    ) -> ReceiptEvent:
        return ReceiptEvent(
            message_id=target[0],
            part_index=target[1],
            connection=connection,
            smsc_message_id=receipt.message_id,
            receipt=receipt,
            at=at,
        )
