"""Receipt correlation in Redis: smsc message id -> (message id, part index), and orphan receipts.

The rule: a receipt settles exactly the message whose id it names. When a submit_sm_resp is
stored, :meth:`ReceiptBook.map_submit_ids` writes the id's exact spelling
(``redis_keys.dlr_map_key``) with a TTL of the longest validity a message can have plus a
margin (``DEFAULT_MAP_TTL``); a receipt looks up its own id by (connection, spelling):

- form "dec" / "hex" / "str" (the connection's ``message_id_form``): one spelling,
  ``smpp.codec.message_id.canonical_id`` of the id, on both sides.
- form "auto": the exact spelling (``exact_spelling``: case and leading zeros ignored) always
  comes first and always wins. An all-digit id also reads as hex, so the SMSC may have rewritten
  it (``CONVERSIONS``: a hex resp quoted in decimal, or the reverse); what the connection has
  learned about its SMSC (:mod:`bridge.delivery.settlement.learning`) decides, never which write
  came first:
  - still learning: the map also writes each converted spelling under its own key
    (``dlr_conv_key``, one namespace per conversion, so two ids never fight over a key). A
    receipt with no exact match that matches only through a conversion is *held*: parked
    under its own spelling like an orphan (so its exact resp still takes it), listed in
    ``dlr_held_key`` and counted, and it votes for that conversion; held receipts are tried
    again as soon as the connection has learned.
  - learned "same": exact spellings only, as "str" with case and leading zeros ignored.
  - learned "hex2dec"/"dec2hex": the receipt's id converted back is its exact resp id.

A receipt with no mapping yet (it overtook its submit_sm_resp, or another worker has not stored
its resp) is parked as an orphan under its own spelling, with the orphan TTL. The two sides
close the race with atomic MULTI blocks: the map side writes its keys and takes the orphans of
its ids in ONE block; the receipt side parks and re-reads the map in ONE block, and when the
map is there by then it takes its orphan back itself. Whichever block runs second sees the
other's write, so no receipt is stranded; each parked receipt is popped (LPOP) once, so none is
applied twice. Orphans found under a *converted* spelling while learning are not applied by the
map side: they go through :meth:`ReceiptBook.correlate` again (exact first, else held). Under a
learned conversion the map side also takes the orphans of the exact spelling (a letter id that
proves "same", or a receipt parked by a worker that read "same" after a conflict) and
correlates them again. Both re-correlations, and every call that holds a receipt, re-read the
learned state first, so a stale read never strands a receipt: a call that holds after another
worker learned sees it and drains; a worker that changes what is learned drains the held set
after its change, whatever held count it read.
"""

from __future__ import annotations

import json
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime

from bridge.config.core import MAX_VALIDITY_LIMIT
from bridge.delivery.settlement import learning
from bridge.delivery.settlement.learning import SAME, Forms
from bridge.delivery.settlement.outcomes import ReceiptEvent
from bridge.redis import keys as redis_keys
from smpp.codec.message_id import (
    CONVERSIONS,
    canonical_id,
    converted_spellings,
    exact_spelling,
    is_numeric_only,
    unconverted,
)
from smpp.codec.receipt import Receipt

# seconds a map outlives the longest validity: an SMSC sends an EXPIRED receipt at or after the
# validity's end, and its clock may be behind ours
RECEIPT_MARGIN = 86_400
# seconds a map lives: the longest validity any send can have (submitted at or after the start
# of its validity, so its end is at most this far after the map is written) plus the margin
DEFAULT_MAP_TTL = MAX_VALIDITY_LIMIT * 60 + RECEIPT_MARGIN
DEFAULT_ORPHAN_TTL = 3_600  # seconds a receipt waits for its resp (or, held, for learning)
ORPHANS_PER_ID = 1000  # receipts taken per id spelling at once (LPOP count: Redis >= 6.2)
HELD_PER_ROUND = 1000  # held spellings retried per round once a connection has learned
DRAIN_ROUNDS = 20  # rounds per call (the rest wait for the next call)

_MATCH, _HOLD, _PARK = "match", "hold", "park"

# The map side's block (map_submit_ids), atomic as a MULTI is, in one command: redis-py's
# MULTI packs every SET and LPOP and parses a QUEUED reply for each, most of the writer's
# Redis CPU per Submitted. KEYS: the map keys to SET, [the held set], the orphan lists to
# take. ARGV: TTL (s), LPOP count, number of map keys, number of held spellings to remove,
# the map keys' values, those spellings. Returns each orphan list's LPOP reply, in order.
_MAP = """
local ttl, count, nset, nheld = ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
for i = 1, nset do
  redis.call('SET', KEYS[i], ARGV[4 + i], 'EX', ttl)
end
local first = nset + 1
if nheld > 0 then
  for i = 5 + nset, 4 + nset + nheld, 500 do
    redis.call('SREM', KEYS[first], unpack(ARGV, i, math.min(i + 499, 4 + nset + nheld)))
  end
  first = first + 1
end
local taken = {}
for i = first, #KEYS do
  taken[#taken + 1] = redis.call('LPOP', KEYS[i], count)
end
return taken
"""


def spell(smsc_id: str, form: str) -> str:
    """The key spelling of an id on its own side ("" for an empty id)."""
    return exact_spelling(smsc_id) if form == "auto" else canonical_id(smsc_id, form)


def lookups(connection: str, spelling: str, learned: str | None) -> list[tuple[str, str]]:
    """(kind, key) a receipt spelled ``spelling`` is looked up under, the exact one first.

    kind "exact", a conversion name (learning: a hit there alone is ambiguous), or
    "fallback" (learned a conversion, but this id cannot be its output).
    """
    exact = ("exact", redis_keys.dlr_map_key(connection, spelling))
    if learned == SAME:
        return [exact]
    if learned is not None:
        own = unconverted(spelling, learned)
        if own is None:
            return [("fallback", exact[1])]
        return [("exact", redis_keys.dlr_map_key(connection, own))]
    out = [exact]
    for conversion in CONVERSIONS:
        if unconverted(spelling, conversion) is not None:  # the id can be that one's output
            out.append((conversion, redis_keys.dlr_conv_key(connection, conversion, spelling)))
    return out


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
        self._map = redis.register_script(_MAP)

    def forms(self, connection: str) -> Forms:
        """What an "auto" connection has learned about its SMSC's ids."""
        return learning.read_forms(self._redis, connection)

    # --- the map side -----------------------------------------------------------------------
    def map_submit_ids(
        self, connection: str, form: str, items: Sequence[tuple[str, int, str]]
    ) -> list[ReceiptEvent]:
        """Store (message_id, part_index, smsc_id) mappings; returns the orphans now matched.

        One atomic round trip (``_MAP``) for any number of items (plus one state read for
        form "auto").
        """
        if not items:
            return []
        forms = self.forms(connection) if form == "auto" else None
        learned = forms.learned if forms is not None else SAME
        maps: dict[str, str] = {}  # key -> value, SET with the map TTL
        # orphan key -> (its (message, part), True when its receipts are this message's own)
        orphans: dict[str, tuple[tuple[str, int], bool]] = {}
        taken_spellings: list[str] = []
        resp_hex = False
        for message_id, part_index, smsc_id in items:
            own = spell(smsc_id, form)
            if not own:
                continue
            target, value = (message_id, part_index), f"{message_id}:{part_index}"
            maps[redis_keys.dlr_map_key(connection, own)] = value
            converted = converted_spellings(own) if forms is not None else {}
            resp_hex = resp_hex or ("hex2dec" in converted and not is_numeric_only(own))
            if learned is None:
                for conversion, spelling in converted.items():
                    maps[redis_keys.dlr_conv_key(connection, conversion, spelling)] = value
                    orphans.setdefault(
                        redis_keys.dlr_orphan_key(connection, spelling), (target, False)
                    )
            receipt_spelling = converted.get(learned, own) if learned is not None else own
            orphans[redis_keys.dlr_orphan_key(connection, receipt_spelling)] = (target, True)
            if receipt_spelling != own:  # learned a conversion: a receipt parked as it is
                # (a letter id proving "same", or parked by a worker that has read "same")
                orphans.setdefault(redis_keys.dlr_orphan_key(connection, own), (target, False))
            taken_spellings.append(receipt_spelling)
        held = taken_spellings if forms is not None else []
        taken = self._map_block(connection, maps, held, list(orphans)) if maps else []
        events: list[ReceiptEvent] = []
        again: list[tuple[Receipt, float]] = []
        proof = None
        for (target, own_receipts), payloads in zip(orphans.values(), taken, strict=True):
            for payload in payloads or ():
                receipt, at = decode_receipt(payload)
                if own_receipts:
                    events.append(self._make(connection, target, receipt, at))
                    if learned is None and not is_numeric_only(spell(receipt.message_id, form)):
                        proof = receipt.message_id
                else:  # found under a converted spelling: exact first, else held
                    again.append((receipt, at))
        if forms is None:
            return events
        if resp_hex and not forms.resp_hex:
            learning.note_resp_hex(self._redis, connection)
            forms.resp_hex = True
        if proof is not None:
            learning.learn_same(self._redis, connection, forms, proof)
        if again:  # decided on a fresh read: the one above may be stale by now
            self._refresh(connection, forms)
            events += self._correlate(connection, form, again, forms)[0]
        return events + self._drain(connection, forms)

    def _map_block(
        self, connection: str, maps: dict[str, str], held: list[str], orphans: list[str]
    ) -> list:
        """SET the map keys, take ``held`` out of the held set and LPOP the orphan lists, in
        one atomic script; the LPOP replies (an emptied list is deleted)."""
        keys = [*maps, *([redis_keys.dlr_held_key(connection)] if held else []), *orphans]
        args = [self._map_ttl, ORPHANS_PER_ID, len(maps), len(held), *maps.values(), *held]
        return list(self._map(keys=keys, args=args))

    # --- the receipt side -------------------------------------------------------------------
    def correlate(
        self, connection: str, form: str, receipts: Iterable[tuple[Receipt, float]]
    ) -> tuple[list[ReceiptEvent], int]:
        """Match (receipt, seen_at) pairs; returns (matched events, number parked or held)."""
        forms = self.forms(connection) if form == "auto" else None
        events, parked = self._correlate(connection, form, list(receipts), forms)
        if forms is not None:
            events += self._drain(connection, forms)
        return events, parked

    def _correlate(
        self, connection: str, form: str, receipts: list, forms: Forms | None
    ) -> tuple[list[ReceiptEvent], int]:
        learned = forms.learned if forms is not None else SAME
        items = []
        for receipt, at in receipts:
            spelling = spell(receipt.message_id, form)
            if spelling:  # an empty id matches nothing, ever
                items.append((receipt, at, spelling, lookups(connection, spelling, learned)))
        if not items:
            return [], 0
        found = self._redis.mget([key for *_, keys in items for _kind, key in keys])
        events, waiting = [], []
        evidence = _Evidence()
        at = 0
        for item in items:
            values, at = found[at : at + len(item[3])], at + len(item[3])
            verdict, target = self._decide(item, values, forms, evidence)
            if verdict == _MATCH:
                events.append(self._make(connection, target, item[0], item[1]))
            else:
                waiting.append((*item, verdict == _HOLD))
        late, parked = self._park(connection, waiting, forms, evidence) if waiting else ([], 0)
        if forms is not None:
            evidence.apply(self._redis, connection, forms)
        return events + late, parked

    @staticmethod
    def _decide(item, values, forms: Forms | None, evidence: _Evidence):
        """(verdict, target) for one receipt from its lookups' values; notes evidence."""
        _receipt, _at, spelling, keys = item
        hits = {kind: _target(v) for (kind, _key), v in zip(keys, values, strict=True) if v}
        if "exact" in hits:
            if forms is not None and forms.learned is None and not is_numeric_only(spelling):
                evidence.proof = spelling
            return _MATCH, hits["exact"]
        if "fallback" in hits:  # learned a conversion, yet this id matched as it is
            if forms is not None and not is_numeric_only(spelling):
                evidence.proof = spelling
            return _MATCH, hits["fallback"]
        if not hits:
            return _PARK, None
        for conversion in hits:  # matched only through a conversion: held, and it may vote
            own = unconverted(spelling, conversion) or ""
            if conversion == "hex2dec" and not is_numeric_only(own):
                evidence.votes[conversion].add(spelling)
            elif conversion == "dec2hex" and not is_numeric_only(spelling):
                if forms is not None and not forms.resp_hex:
                    evidence.votes[conversion].add(spelling)
        return _HOLD, None

    def _park(
        self, connection: str, waiting: list, forms: Forms | None, evidence: _Evidence
    ) -> tuple[list[ReceiptEvent], int]:
        """Park (or hold) receipts and re-read their maps atomically; take back the ones now
        matched exactly. Returns (events taken back, how many stay parked or held)."""
        pipe = self._redis.pipeline(transaction=True)
        for receipt, at, spelling, keys, _held in waiting:
            okey = redis_keys.dlr_orphan_key(connection, spelling)
            pipe.rpush(okey, encode_receipt(receipt, at))
            pipe.expire(okey, self._orphan_ttl)
            pipe.mget([key for _kind, key in keys])
        held = sorted({w[2] for w in waiting if w[4]})
        if held:
            learning.count_held(pipe, connection, held, self._orphan_ttl)
        results = pipe.execute()
        late: dict[str, tuple[str, tuple[str, int]]] = {}  # orphan key -> (spelling, target)
        newly_held: set[str] = set()
        for item, values in zip(waiting, results[2 : 3 * len(waiting) : 3], strict=True):
            verdict, target = self._decide(item[:4], values, forms, evidence)
            if verdict == _MATCH:
                late[redis_keys.dlr_orphan_key(connection, item[2])] = (item[2], target)
            elif verdict == _HOLD and not item[4]:
                newly_held.add(item[2])  # its converted candidate came in between
        newly_held -= {spelling for spelling, _t in late.values()}
        if forms is not None:
            forms.held += len(held) + len(newly_held)
        still = len(waiting) - sum(1 for w in waiting if w[2] in {s for s, _t in late.values()})
        if not late and not newly_held:
            if held:
                self._refresh(connection, forms)
            return [], still
        pipe = self._redis.pipeline(transaction=True)
        if newly_held:
            learning.count_held(pipe, connection, sorted(newly_held), self._orphan_ttl)
        if late and forms is not None:
            pipe.srem(redis_keys.dlr_held_key(connection), *[s for s, _t in late.values()])
        for okey in late:
            pipe.lpop(okey, ORPHANS_PER_ID)
        taken = pipe.execute()[-len(late) :] if late else []
        if held or newly_held:
            self._refresh(connection, forms)
        return [
            self._event(connection, target, payload)
            for (_spelling, target), payloads in zip(late.values(), taken, strict=True)
            for payload in payloads or ()
        ], still

    def _refresh(self, connection: str, forms: Forms | None) -> None:
        """Re-read the learned state into ``forms`` after holding receipts or moving orphans.

        Another worker may have learned since ``forms`` was read, and drained the held set
        before this call held anything: read after the hold, either this read sees it learned
        (and this call drains) or the learner changes it later (and drains after that).
        """
        if forms is None:
            return
        fresh = self.forms(connection)
        forms.learned, forms.resp_hex, forms.held = fresh.learned, fresh.resp_hex, fresh.held

    def _drain(self, connection: str, forms: Forms) -> list[ReceiptEvent]:
        """Once learned, try the held receipts again (bounded rounds per call).

        The held count read may be stale: a process that has just changed what is learned
        retries the set anyway (see :meth:`_refresh`).
        """
        if forms.learned is None or (forms.held <= 0 and not forms.changed):
            return []
        events: list[ReceiptEvent] = []
        hkey = redis_keys.dlr_held_key(connection)
        for _ in range(DRAIN_ROUNDS):
            spellings = self._redis.spop(hkey, HELD_PER_ROUND)
            if not spellings:
                forms.held = 0
                break
            pipe = self._redis.pipeline(transaction=False)
            for s in spellings:
                name = s.decode() if isinstance(s, bytes) else s
                pipe.lpop(redis_keys.dlr_orphan_key(connection, name), ORPHANS_PER_ID)
            receipts = [decode_receipt(p) for ps in pipe.execute() for p in ps or ()]
            events += self._correlate(connection, "auto", receipts, forms)[0]
        return events

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


class _Evidence:
    """What one correlation call saw about the connection's SMSC (applied once, at its end)."""

    def __init__(self) -> None:
        self.proof: str | None = None  # an id with a letter that matched exactly
        self.votes: dict[str, set[str]] = defaultdict(set)

    def apply(self, redis, connection: str, forms: Forms) -> None:
        if self.proof is not None:
            learning.learn_same(redis, connection, forms, self.proof)
        elif self.votes:
            learning.vote(redis, connection, forms, dict(self.votes))
