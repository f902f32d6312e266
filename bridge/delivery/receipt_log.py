"""The receipt log: a delivery receipt is in Redis before the SMSC hears that we have it.

A session's ``on_receipts`` calls :meth:`ReceiptLog.add` with the receipts of one read: ONE
round trip (a Lua script) appends an entry per receipt to ``redis_keys.RECEIPTS_STREAM``
(fields ``c`` connection, ``f`` message_id_form, ``r`` the receipt and its arrival time as
JSON) and reads them straight back through the group ``RECEIPTS_GROUP`` as this worker's
consumer, so from the moment an entry exists it is pending under a consumer. When Redis cannot
take them (down, or the log already holds ``limit`` entries) ``add`` raises and the session
answers ESME_RX_T_APPN: the SMSC sends them again later.

The settlement writer applies the receipts; only after that transaction committed are their
entries XACKed and XDELed (:meth:`ReceiptLog.ack`). A dead worker's entries stay pending and are
taken over by a live worker once idle longer than ``claim_idle_seconds`` (XAUTOCLAIM) and
applied again (:class:`ReceiptIntake` does this for a worker): applying a receipt twice changes
nothing (settlement.rules: a part's receipt is stored once; a final state never changes).
Entries the writer could not store (an unexpected error, logged) go to ``RECEIPTS_DEAD``
(capped) with the error, and out of the log.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import redis as redis_lib

from bridge.config import WorkerSettings
from bridge.delivery.reader import StreamReader
from bridge.delivery.settlement.correlation import decode_receipt, encode_receipt
from bridge.delivery.settlement.outcomes import ReceiptIn
from bridge.redis import keys as redis_keys
from smpp.codec.receipt import Receipt

log = logging.getLogger(__name__)

DEAD_MAXLEN = 10_000  # dead-lettered receipts kept (approximate trim)

# KEYS[1] the stream; ARGV: group, consumer, limit, then (connection, form, receipt) triples.
# Refuses (an error reply, nothing written) when the log would pass the limit; creates the
# group when it is missing (Redis restarted empty). Returns {our ids, in order; entries nobody
# had read (a recreated group), at most 1000, as [id, fields]}: all pending under us now.
_ADD = """
local n = (#ARGV - 3) / 3
local length = redis.call('XLEN', KEYS[1])
if length + n > tonumber(ARGV[3]) then
  return redis.error_reply('RECEIPTS_FULL ' .. length)
end
local ids, ours = {}, {}
for i = 4, #ARGV, 3 do
  local id = redis.call('XADD', KEYS[1], '*', 'c', ARGV[i], 'f', ARGV[i + 1], 'r', ARGV[i + 2])
  ids[#ids + 1] = id
  ours[id] = true
end
local function read()
  return redis.pcall('XREADGROUP', 'GROUP', ARGV[1], ARGV[2], 'COUNT', n + 1000,
                     'STREAMS', KEYS[1], '>')
end
local got = read()
if type(got) == 'table' and got.err then
  redis.call('XGROUP', 'CREATE', KEYS[1], ARGV[1], '0', 'MKSTREAM')
  got = read()
end
local others = {}
if type(got) == 'table' and got[1] then
  for _, e in ipairs(got[1][2]) do
    if not ours[e[1]] then others[#others + 1] = e end
  end
end
return {ids, others}
"""


class ReceiptLogFull(RuntimeError):
    """The receipt log holds ``limit`` receipts not yet applied: settlement is behind (or
    down); receipts are refused with a retryable status until it catches up."""


class ReceiptLog:
    """The receipt stream for one worker's consumer (see the module docstring)."""

    def __init__(self, redis: redis_lib.Redis, consumer: str, *, limit: int = 100_000) -> None:
        self.redis = redis
        self.limit = limit
        self.stream = StreamReader(
            redis,
            consumer,
            stream=redis_keys.receipts_stream_key(),
            group=redis_keys.RECEIPTS_GROUP,
        )
        self._add = redis.register_script(_ADD)

    @property
    def consumer(self) -> str:
        return self.stream.consumer

    def add(
        self, connection: str, form: str, receipts: Sequence[Receipt], at: float
    ) -> list[ReceiptIn]:
        """Log receipts (one round trip); the ReceiptIn of each, plus those of entries nobody
        had read (now ours). Raises RedisError, or ReceiptLogFull past ``limit``."""
        argv: list[Any] = [self.stream.group, self.consumer, self.limit]
        for receipt in receipts:
            argv += [connection, form, encode_receipt(receipt, at)]
        try:
            ids, others = self._add(keys=[self.stream.stream], args=argv)
        except redis_lib.ResponseError as exc:
            if "RECEIPTS_FULL" in str(exc):
                raise ReceiptLogFull(
                    f"the receipt log holds {str(exc).split()[-1]} receipts not yet applied "
                    f"(limit {self.limit}); refusing receipts until settlement catches up"
                ) from None
            raise
        taken = [
            ReceiptIn(connection, form, receipt, at, _text(eid))
            for eid, receipt in zip(ids, receipts, strict=True)
        ]
        return taken + self._decode_all(others)

    def take_over(self, min_idle_seconds: float, count: int) -> list[ReceiptIn]:
        """Entries idle longer than ``min_idle_seconds`` (a dead worker's), now ours."""
        return self._decode_all(self.stream.take_over_raw(min_idle_seconds, count))

    def _decode_all(self, rows: Sequence[Any]) -> list[ReceiptIn]:
        """Entries as ReceiptIn; one that cannot be read is logged and dead-lettered as is."""
        out = []
        for entry_id, fields in rows:
            data = {_text(k): v for k, v in _pairs(fields)}
            try:
                receipt, at = decode_receipt(data["r"])
                out.append(
                    ReceiptIn(_text(data["c"]), _text(data["f"]), receipt, at, _text(entry_id))
                )
            except (KeyError, ValueError, TypeError) as exc:
                log.error("receipt log entry %s is unreadable (%s): %r", entry_id, exc, data)
                self._bury(_text(entry_id), {**data, "error": f"unreadable: {exc}"})
        return out

    def touch(self, entry_ids: Sequence[str]) -> None:
        """Reset the idle time of entries this worker holds, so no one takes them over."""
        self.stream.touch(entry_ids)

    def ack(self, entry_ids: Sequence[str]) -> None:
        """XACK + XDEL entries whose receipts are applied (one pipeline)."""
        self.stream.ack(entry_ids)

    def dead_letter(self, items: Sequence[ReceiptIn], error: str) -> None:
        """Move receipts settlement could not store to the dead-letter stream."""
        for item in items:
            fields = {"c": item.connection, "f": item.id_form}
            fields["r"] = encode_receipt(item.receipt, item.at)
            self._bury(item.entry_id, {**fields, "error": error[:500]})

    def _bury(self, entry_id: str | None, fields: dict[str, Any]) -> None:
        """Copy an entry to RECEIPTS_DEAD and take it out of the log (one MULTI)."""
        pipe = self.redis.pipeline(transaction=True)
        dead: dict[Any, Any] = {**fields, "entry": entry_id or ""}
        pipe.xadd(
            redis_keys.receipts_dead_key(),
            dead,
            maxlen=DEAD_MAXLEN,
            approximate=True,
        )
        if entry_id:
            pipe.xack(self.stream.stream, self.stream.group, entry_id)
            pipe.xdel(self.stream.stream, entry_id)
        pipe.execute()

    def ensure_group(self) -> None:
        self.stream.ensure_group()


def backlog(redis: redis_lib.Redis) -> int:
    """Receipts in the log not yet applied (all workers)."""
    return int(redis.xlen(redis_keys.receipts_stream_key()))


def _pairs(fields: Any) -> list[tuple[Any, Any]]:
    """A stream entry's fields: a dict (redis-py's replies) or a flat list (a script's)."""
    if isinstance(fields, dict):
        return list(fields.items())
    return list(zip(fields[::2], fields[1::2], strict=True))


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class ReceiptIntake:
    """A worker's receipts between the log and the settlement writer: :meth:`take` (session
    threads) logs them and queues them for the writer; :meth:`applied` (the writer, after its
    commit) acks their entries; a thread retries failed acks, touches the entries held here
    (so no one takes them over) and takes over idle ones (a dead worker's, or ones a full
    writer queue left in the log)."""

    def __init__(
        self,
        log: ReceiptLog,
        put: Callable[[ReceiptIn, float], bool],
        settings: WorkerSettings,
    ) -> None:
        self.log = log
        self._put = put  # SettlementWriter.put(item, timeout)
        self._settings = settings
        self._held: set[str] = set()  # entries queued or being applied here
        self._unacked: list[str] = []  # applied; their XACK failed: retried
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="worker-receipts", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """After the writer stopped (everything queued is applied): end the thread, ack."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(10)
        self._ack()

    def take(self, connection: str, form: str, receipts: list[Receipt], at: float) -> None:
        """Session thread: log (raises when Redis cannot take them), then queue."""
        self._queue(self.log.add(connection, form, receipts, at))

    def applied(self, entry_ids: list[str]) -> None:
        """Writer thread, after a commit: the receipts' entries go (XACK + XDEL)."""
        with self._lock:
            self._unacked.extend(entry_ids)
        self._ack()

    def failed(self, items: list[ReceiptIn]) -> None:
        """Writer thread: a batch with an outcome that could not be stored (logged there):
        its receipts go to the dead-letter stream for replay (replaying one is harmless)."""
        try:
            self.log.dead_letter(items, "settlement could not store this batch")
        except redis_lib.RedisError as exc:  # they stay pending: taken over, tried again
            log.warning("could not dead-letter %d receipt(s): %s", len(items), exc)
            return
        with self._lock:
            self._held.difference_update(i.entry_id for i in items)

    def _queue(self, items: list[ReceiptIn]) -> None:
        """Queue logged receipts for the writer (each entry once). When its queue stays full
        they are left in the log, pending, and taken over once idle."""
        with self._lock:
            fresh = [i for i in items if i.entry_id not in self._held]
            self._held.update(i.entry_id for i in fresh if i.entry_id)
        for n, item in enumerate(fresh):
            if not self._put(item, 1.0):
                left = fresh[n:]
                with self._lock:
                    self._held.difference_update(i.entry_id for i in left)
                log.warning(
                    "settlement queue full: %d logged receipt(s) left in the receipt log; "
                    "taken over after %ss",
                    len(left),
                    self._settings.claim_idle_seconds,
                )
                return

    def _ack(self) -> None:
        with self._lock:
            ids, self._unacked = self._unacked, []
        if not ids:
            return
        try:
            self.log.ack(ids)
        except redis_lib.RedisError as exc:
            log.warning("ack of %d receipt log entries failed (%s); retrying", len(ids), exc)
            with self._lock:
                self._unacked.extend(ids)
            return
        with self._lock:
            self._held.difference_update(ids)

    def _run(self) -> None:
        s = self._settings
        last_touch = time.monotonic()
        while not self._stop.wait(s.claim_interval_seconds):
            try:
                self._ack()
                if time.monotonic() - last_touch >= s.touch_interval:
                    last_touch = time.monotonic()
                    with self._lock:
                        held = list(self._held)
                    self.log.touch(held)
                for _ in range(10):  # bounded per pass; the scan resumes next time
                    taken = self.log.take_over(s.claim_idle_seconds, s.batch_size)
                    if taken:
                        log.info("took over %d receipt(s) left in the receipt log", len(taken))
                        self._queue(taken)
                    if self.log.stream.scan_complete:
                        break
            except redis_lib.RedisError as exc:
                log.warning("receipt recovery: %s; retrying in %ss", exc, s.claim_interval_seconds)
