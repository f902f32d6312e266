"""The webhook sender: reads events from the ``sb:webhooks`` stream and POSTs them, signed.

At least once, never lost: an entry is taken with XREADGROUP and acknowledged (XACK, XDEL) only
in the same MULTI that stores its outcome: delivered, a retry in the retry set, or a dead
letter. A sender killed mid-request leaves its entries pending; another sender (or the next
start) claims them with XAUTOCLAIM once idle for ``webhook_claim_idle_seconds`` (a live sender
re-claims its own long-held entries, so they never look idle). Every attempt sends the event's
stable id as ``webhook-id``, so receivers drop duplicates by it.

Retries: connection errors, timeouts, 408, 429 and 5xx, with exponential backoff and full
jitter (a 429's or 503's Retry-After is a floor), until ``webhook_retry_seconds`` after the
event was first enqueued; then it is dead-lettered. Other answers are final (2xx delivered,
3xx/4xx failed, dead-lettered at once). Due retries go back on the stream (one Lua script, so a
crash can neither lose nor double them). Isolation per endpoint: bridge.webhooks.endpoints.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import random
import socket
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

import redis as redis_lib
from sqlalchemy.exc import SQLAlchemyError

from bridge.config import Config
from bridge.errors import NotFound
from bridge.redis import keys
from bridge.telemetry.logs import message_context
from bridge.telemetry.metrics import count_webhook_attempt
from bridge.webhooks import attempts
from bridge.webhooks.client import Answer, DeliveryError, WebhookClient
from bridge.webhooks.endpoints import DEFER, RUN, WAIT, Endpoints, full_jitter
from bridge.webhooks.events import (
    EventFormatError,
    WebhookEvent,
    decode_event,
    event_fields,
    text,
)
from bridge.webhooks.failure_log import FailureLog
from bridge.webhooks.group import FORGET_AFTER, FORGET_GONE, MOVE_DUE, ensure_group
from bridge.webhooks.secret_cache import SecretCache
from bridge.webhooks.signing import sign
from bridge.webhooks.ssrf import (
    Resolver,
    Target,
    TargetRefused,
    TargetUnresolvable,
    endpoint_of,
    resolve_target,
)

log = logging.getLogger(__name__)
_endpoint_of = lru_cache(maxsize=4096)(endpoint_of)  # a URL's endpoint, parsed once

DEAD_KEPT = 100_000  # newest dead letters kept (XADD MAXLEN ~)
MOVE_BATCH = 500  # due retries moved back to the stream per pass
HOUSEKEEPING = 0.05  # seconds between passes of the retry mover
WRITE_BATCH = 256  # outcomes stored per MULTI at most
# seconds the writer waits after an outcome for more to join its MULTI (without it a MULTI held
# ~4 events at 2,000/s and cost more CPU than the rest of the write); delays only the XACK
WRITE_LINGER = 0.01
RESOLVED_TTL = 5.0  # seconds a URL's checked, resolved target is reused


@dataclass
class _Item:
    entry_id: str
    event: WebhookEvent
    taken: float  # monotonic time it was taken or last re-claimed


@dataclass
class _Write:
    """What settling some taken entries stores, in the writer's next MULTI with their XACK."""

    items: list[_Item]
    retries: dict[str, float] = field(default_factory=dict)  # retry set member -> due (ms)
    dead: list[dict[Any, Any]] = field(default_factory=list)  # dead-letter stream entries
    attempts: list[tuple[str, dict[str, Any]]] = field(default_factory=list)  # (message, record)


@dataclass(frozen=True)
class Outcome:
    result: str  # "delivered" | "retry" | "failed"
    status: int | None = None
    error: str | None = None
    retry_after: float | None = None  # seconds asked by the receiver
    endpoint_ok: bool | None = None  # True: it answered; False: it failed; None: no verdict


def classify(answer: Answer) -> Outcome:
    """What an HTTP answer means: 2xx delivered; 408, 429, 5xx retried; anything else final."""
    status = answer.status
    if 200 <= status < 300:
        return Outcome("delivered", status, endpoint_ok=True)
    if status in (408, 429) or 500 <= status < 600:
        return Outcome("retry", status, retry_after=answer.retry_after, endpoint_ok=False)
    error = "redirects are not followed" if 300 <= status < 400 else None
    return Outcome("failed", status, error=error, endpoint_ok=True)


class Sender:
    """One sender process's machinery; ``start`` it, ``stop`` it (bounded), or ``run``."""

    def __init__(
        self,
        config: Config,
        redis: redis_lib.Redis,
        secrets: SecretCache,
        *,
        consumer: str | None = None,
        resolver: Resolver | None = None,
        client: WebhookClient | None = None,
        clock: Callable[[], float] = time.time,
        rng: Callable[[], float] = random.random,
        batch: int = 200,
        forget_after: float = FORGET_AFTER,
    ) -> None:
        self.config, self.redis, self.secrets = config, redis, secrets
        self.consumer = consumer or f"{socket.gethostname()}-{os.getpid()}-{os.urandom(2).hex()}"
        self.resolver, self.clock, self.rng, self.batch = resolver, clock, rng, batch
        self.client = client or WebhookClient(
            config.webhook_connect_timeout_seconds,
            config.webhook_timeout_seconds,
            pool_size=config.webhook_endpoint_concurrency,
        )
        self.endpoints = Endpoints(
            config.webhook_endpoint_concurrency,
            config.webhook_endpoint_pause_after,
            config.webhook_backoff_base_seconds,
            config.webhook_backoff_max_seconds,
            rng=rng,
        )
        self.failures = FailureLog(clock)  # failed attempts at WARNING, rate-limited
        self.max_in_hand = max(64, 8 * config.webhook_workers)
        self._pool = ThreadPoolExecutor(config.webhook_workers, thread_name_prefix="webhook")
        self._broken = ""  # why a webhook thread failed (run() then stops the sender)
        self._move_due = redis.register_script(MOVE_DUE)
        self._forget_gone = redis.register_script(FORGET_GONE)
        self.forget_after = forget_after
        self._in_hand: dict[str, _Item] = {}
        self._resolved: dict[str, tuple[float, Target]] = {}
        self._room = threading.Condition()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._writes: queue.Queue[_Write] = queue.Queue()
        self._writer_stop = threading.Event()
        self._writer = threading.Thread(
            target=self._write_loop, name="webhooks-writer", daemon=True
        )

    # ------------------------------------------------------------------ life cycle

    def start(self) -> None:
        ensure_group(self.redis)
        self._writer.start()
        for target, name in ((self._read_loop, "reader"), (self._housekeeping, "housekeeping")):
            thread = threading.Thread(target=target, name=f"webhooks-{name}", daemon=True)
            thread.start()
            self._threads.append(thread)
        log.info("webhook sender %s started", self.consumer)

    def stop(self, timeout: float | None = None) -> None:
        """Stop reading, hand held events back to Redis, finish requests in flight."""
        self._stop.set()
        with self._room:
            self._room.notify_all()
        for thread in self._threads:
            thread.join(timeout or 5.0)
        held = self.endpoints.drain()
        if held:
            self._defer(held, self.clock())
        self._pool.shutdown(wait=True)
        self._writer_stop.set()
        self._writer.join(10.0)
        self.client.close()

    def run(self, stop: threading.Event) -> None:
        self.start()
        try:
            while not stop.wait(0.5):
                for thread in (*self._threads, self._writer):  # the writer acks: it too
                    if not thread.is_alive():
                        raise RuntimeError(f"{thread.name} died; see the log above")
                if self._broken:  # a webhook thread failed after its POST: see _work
                    raise RuntimeError(f"a webhook thread failed: {self._broken}")
        finally:
            self.stop()

    # ------------------------------------------------------------------ taking entries

    def _read_loop(self) -> None:
        streams: dict[Any, Any] = {keys.webhooks_stream_key(): ">"}
        while not self._stop.is_set():
            with self._room:
                while len(self._in_hand) >= self.max_in_hand and not self._stop.is_set():
                    self._room.wait(0.5)
            room = self.max_in_hand - len(self._in_hand)
            try:
                got: Any = self.redis.xreadgroup(
                    keys.WEBHOOKS_GROUP,
                    self.consumer,
                    streams,
                    count=min(self.batch, room),
                    block=500,
                )
            except redis_lib.ResponseError as exc:
                if "NOGROUP" not in str(exc):
                    raise
                ensure_group(self.redis)
                continue
            except redis_lib.RedisError as exc:
                log.warning("cannot read the webhook stream (%s); retrying in 1 s", exc)
                self._stop.wait(1.0)
                continue
            for _stream, entries in got or ():
                for entry_id, fields in entries:
                    if fields:  # a claimed entry that was deleted meanwhile has none
                        self._take(text(entry_id), fields)

    def _take(self, entry_id: str, fields: dict) -> None:
        try:
            event = decode_event(fields)
        except EventFormatError as exc:
            self._dead_raw(entry_id, fields, str(exc))
            return
        item = _Item(entry_id, event, time.monotonic())
        endpoint = _endpoint_of(event.url) or "invalid-url"
        with self._room:
            self._in_hand[entry_id] = item
        while True:
            verdict, until = self.endpoints.admit(endpoint, item, self.clock())
            if verdict != WAIT or self._stop.is_set():
                break
            self.endpoints.wait_for_room(endpoint, 0.05)  # healthy and full: drains in ms
        if verdict == RUN:
            self._pool.submit(self._work, endpoint, item)
        elif verdict == DEFER or verdict == WAIT:  # WAIT only when stopping: back to Redis
            self._defer([item], until or self.clock())
        # HOLD: the endpoint's next free slot runs it (Endpoints.done)

    def _release(self, items: list[_Item]) -> None:
        with self._room:
            for item in items:
                self._in_hand.pop(item.entry_id, None)
            self._room.notify_all()

    # ------------------------------------------------------------------ delivering

    def _work(self, endpoint: str, item: _Item | None) -> None:
        """POST ``item``, then the endpoint's next ones, until it has none ready. An error
        after the POST (storing the outcome, the endpoint's book) would strand the event (held
        and kept fresh by this live process, never retried) and the endpoint's slot: the
        sender stops instead, so the supervisor restarts it and the event goes to a sender
        that takes it over (the thread pool would swallow the error silently)."""
        try:
            self._work_on(endpoint, item)
        except BaseException as exc:
            log.exception("webhook thread failed for endpoint %s; stopping this sender", endpoint)
            self._broken = self._broken or f"{type(exc).__name__}: {exc}"
            raise

    def _work_on(self, endpoint: str, item: _Item | None) -> None:
        while item is not None:
            try:
                outcome = self.attempt(item.event)
            except Exception as exc:  # a bug must not strand the slot; retried, bounded
                log.exception("webhook %s: unexpected error", item.event.id)
                outcome = Outcome("retry", error=f"internal error: {type(exc).__name__}")
            self._settle(endpoint, item, outcome)
            pause = outcome.retry_after if outcome.status == 429 else None
            if outcome.status == 429 and pause is None:
                pause = self.config.webhook_backoff_base_seconds
            item, deferred, until = self.endpoints.done(
                endpoint, outcome.endpoint_ok, self.clock(), pause
            )
            if deferred:
                self._defer(deferred, until)

    def attempt(self, event: WebhookEvent) -> Outcome:
        """One POST of ``event``: checked target, signed now; the outcome (no Redis writes)."""
        config = self.config
        try:
            target = self._target(event.url)
        except TargetRefused as exc:
            return Outcome("failed", error=str(exc))
        except TargetUnresolvable as exc:
            return Outcome("retry", error=str(exc), endpoint_ok=False)
        now = datetime.fromtimestamp(self.clock(), UTC)
        try:
            secrets = self.secrets.get(event.account_id)
        except NotFound:
            return Outcome("failed", error=f"account {event.account_id} does not exist")
        except SQLAlchemyError as exc:
            return Outcome("retry", error=f"cannot read the signing secret: {_line(exc)}")
        body = event.body.encode("utf-8")
        headers = sign(
            event.id, body, secrets.signing(now, config.webhook_secret_overlap_seconds), now
        )
        try:
            return classify(self.client.post(target, body, headers))
        except DeliveryError as exc:
            return Outcome("retry", error=str(exc), endpoint_ok=False)

    def _target(self, url: str) -> Target:
        """The checked target of ``url``, kept RESOLVED_TTL s (the connection goes to the
        address that was checked, so a cached answer can only be stale, never unchecked)."""
        now = time.monotonic()
        hit = self._resolved.get(url)
        if hit is not None and hit[0] > now:
            return hit[1]
        target = resolve_target(url, self.config.webhook_allow_networks, self.resolver)
        if len(self._resolved) >= 10_000:
            self._resolved.clear()
        self._resolved[url] = (now + RESOLVED_TTL, target)
        return target

    def _settle(self, endpoint: str, item: _Item, outcome: Outcome) -> None:
        """Store the outcome and acknowledge the entry in one MULTI; a failure is logged
        (FailureLog: WARNING, one line per endpoint per interval)."""
        event, now_ms = item.event, self.clock() * 1000
        number = event.attempt + 1
        first = event.first_at or _entry_ms(item.entry_id)
        deadline = first + self.config.webhook_retry_seconds * 1000
        write = _Write([item])
        result, next_ms = outcome.result, None
        reason = outcome.error or f"HTTP {outcome.status}"
        if result == "retry" and now_ms >= deadline:
            result = "dead"
        if result == "retry":
            delay = full_jitter(
                number,
                self.config.webhook_backoff_base_seconds,
                self.config.webhook_backoff_max_seconds,
                self.rng,
            )
            next_ms = min(now_ms + max(delay, outcome.retry_after or 0) * 1000, deadline)
            later = replace(event, attempt=number, first_at=first)
            write.retries[_member(later)] = next_ms
        elif result in ("failed", "dead"):
            if result == "dead":
                reason = f"retry period spent; last: {reason}"
            fields = event_fields(replace(event, attempt=number))
            write.dead.append(self._dead_entry(fields, reason, now_ms))
        count_webhook_attempt(result)
        outcome_word = {"retry": "retrying"}.get(result, result)
        if event.message_id:
            entry = attempts.record(
                event.id,
                number,
                now_ms,
                outcome_word,
                status=outcome.status,
                error=outcome.error,
                next_retry_ms=next_ms,
            )
            write.attempts.append((event.message_id, entry))
        self._writes.put(write)  # acknowledged with its batch (_write_loop)
        if result == "delivered":
            self.failures.delivered(endpoint)
        else:
            self.failures.failed(endpoint, event.id, event.message_id, result, reason)
        if log.isEnabledFor(logging.DEBUG):
            log.debug(
                "webhook %s attempt %d: %s",
                event.id,
                number,
                outcome_word,
                extra=message_context(event.message_id),
            )

    def _defer(self, items: list[_Item], until: float) -> None:
        """Park events (no attempt made) in the retry set until ``until`` (clock seconds)."""
        write = _Write(items)
        for item in items:
            first = item.event.first_at or _entry_ms(item.entry_id)
            write.retries[_member(replace(item.event, first_at=first))] = until * 1000
        self._writes.put(write)  # acknowledged with its batch (_write_loop)

    def _write_loop(self) -> None:
        """Store outcomes and acknowledge their entries, many events per MULTI: one round trip
        and a few commands per batch (one XACK, XDEL, ZADD and attempt script for all), not
        per event. A failed MULTI leaves its entries pending: claimed again."""
        while True:
            try:
                batch = [self._writes.get(timeout=0.1)]
            except queue.Empty:
                if self._writer_stop.is_set():
                    return
                continue
            if self._writes.qsize() < WRITE_BATCH and not self._writer_stop.is_set():
                time.sleep(WRITE_LINGER)
            while len(batch) < WRITE_BATCH:
                try:
                    batch.append(self._writes.get_nowait())
                except queue.Empty:
                    break
            items = [item for write in batch for item in write.items]
            pipe = self.redis.pipeline(transaction=True)
            for write in batch:
                for dead in write.dead:
                    pipe.xadd(keys.webhooks_dead_key(), dead, maxlen=DEAD_KEPT, approximate=True)
            retries = {m: due for write in batch for m, due in write.retries.items()}
            if retries:
                pipe.zadd(keys.webhooks_retry_key(), retries)
            attempts.add_many(pipe, [a for write in batch for a in write.attempts])
            self._ack(pipe, [item.entry_id for item in items])
            try:
                pipe.execute()
            except redis_lib.RedisError as exc:
                log.warning(
                    "cannot store %d webhook outcome(s) (%s); they are retried", len(items), exc
                )
            finally:
                self._release(items)

    def _dead_raw(self, entry_id: str, fields: dict, reason: str) -> None:
        pipe = self.redis.pipeline(transaction=True)
        dead = self._dead_entry({text(k): text(v) for k, v in fields.items()}, reason, None)
        pipe.xadd(keys.webhooks_dead_key(), dead, maxlen=DEAD_KEPT, approximate=True)
        self._ack(pipe, [entry_id])
        pipe.execute()
        log.warning("webhook stream entry %s dead-lettered: %s", entry_id, reason)

    def _dead_entry(
        self, fields: dict[str, str], reason: str, at_ms: float | None
    ) -> dict[Any, Any]:
        return {**fields, "reason": reason, "dead_at": str(int(at_ms or self.clock() * 1000))}

    @staticmethod
    def _ack(pipe: Any, entry_ids: list[str]) -> None:
        if entry_ids:
            pipe.xack(keys.webhooks_stream_key(), keys.WEBHOOKS_GROUP, *entry_ids)
            pipe.xdel(keys.webhooks_stream_key(), *entry_ids)

    # ------------------------------------------------------------------ housekeeping

    def _housekeeping(self) -> None:
        """Move due retries back to the stream; claim dead senders' entries (and forget their
        names once they hold nothing); keep ours."""
        idle = self.config.webhook_claim_idle_seconds
        next_claim = next_keep = time.monotonic()
        while not self._stop.wait(HOUSEKEEPING):
            try:
                self._move_due(
                    keys=[keys.webhooks_retry_key(), keys.webhooks_stream_key()],
                    args=[int(self.clock() * 1000), MOVE_BATCH],
                )
                now = time.monotonic()
                if now >= next_keep:
                    self._keep_mine(now, idle / 3)
                    next_keep = now + idle / 6
                if now >= next_claim:
                    self._claim_idle(idle)
                    self._forget_gone(
                        keys=[keys.webhooks_stream_key()],
                        args=[keys.WEBHOOKS_GROUP, int(self.forget_after * 1000), self.consumer],
                    )
                    next_claim = now + min(idle / 4, 5.0)
            except redis_lib.RedisError as exc:
                log.warning("webhook housekeeping: %s; retrying", exc)
                self._stop.wait(1.0)

    def _keep_mine(self, now: float, older: float) -> None:
        """Re-claim our entries held longer than ``older`` s, so no other sender takes them."""
        with self._room:
            held = [i for i in self._in_hand.values() if now - i.taken >= older]
        if not held:
            return
        self.redis.xclaim(
            keys.webhooks_stream_key(),
            keys.WEBHOOKS_GROUP,
            self.consumer,
            0,
            [i.entry_id for i in held],
            justid=True,
        )
        for item in held:
            item.taken = now

    def _claim_idle(self, idle: float) -> None:
        """Take over entries pending longer than ``idle`` s (their sender died)."""
        cursor = "0-0"
        for _ in range(100):  # bounded: at most 100 pages a pass
            room = self.max_in_hand - len(self._in_hand)
            if room <= 0 or self._stop.is_set():
                return
            reply = self.redis.xautoclaim(
                keys.webhooks_stream_key(),
                keys.WEBHOOKS_GROUP,
                self.consumer,
                int(idle * 1000),
                start_id=cursor,
                count=min(100, room),
            )
            cursor, claimed = text(reply[0]), reply[1]
            gone = [text(i) for i in (reply[2] if len(reply) > 2 else ())]
            if gone:  # deleted while pending: nothing to send
                self.redis.xack(keys.webhooks_stream_key(), keys.WEBHOOKS_GROUP, *gone)
            for entry_id, fields in claimed:
                entry_id = text(entry_id)
                if entry_id in self._in_hand:
                    continue
                if fields:
                    log.info("webhook entry %s claimed from an idle sender", entry_id)
                    self._take(entry_id, fields)
            if cursor == "0-0":
                return


def _member(event: WebhookEvent) -> str:
    return json.dumps(event_fields(event), sort_keys=True, separators=(",", ":"))


def _entry_ms(entry_id: str) -> int:
    return int(entry_id.split("-", 1)[0])


def _line(exc: BaseException) -> str:
    return (str(getattr(exc, "orig", None) or exc).strip().splitlines() or [""])[0][:200]
