"""Accepting a send: validate, price, charge, store, then enqueue — with no per-recipient I/O.

The request thread does the pure work (numbers, segments, prices, ids, message rows). A send
without an Idempotency-Key is then group-committed with the other sends this process has queued
at that moment (bridge.accept.group): one transaction, one XADD pipeline per group. A send with
one runs its own transaction of a fixed number of statements whatever the recipient count:
Idempotency-Key lookup, the conditional balance UPDATE, one ledger row, one executemany INSERT
of every message, the Idempotency-Key answer. Either way the messages are XADDed only after the
commit; if Redis is down then, the request still succeeds and the sweeper re-enqueues the
messages later (transactional outbox). The ``queued`` mark is written by the background
:class:`~bridge.accept.flusher.Flusher`, not on the request path.

A send with ``send_at`` is charged and stored the same way, as ``scheduled``, and is not XADDed:
its ids go into the schedule set and the releaser (bridge.delivery.release) enqueues them when
due. ``validity`` (minutes) sets each message's ``expires_at``: from send_at (or now) on.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from urllib.parse import urlsplit

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from bridge.accept.callbacks import EVENTS_FINAL, callback_events
from bridge.accept.flusher import Flusher
from bridge.accept.group import MAX_GROUP_SENDS, GroupAccept, Prepared, enqueue
from bridge.accept.numbers import hints, normalise, split_numbers
from bridge.config import Config
from bridge.errors import InvalidInput, InvalidNumbers
from bridge.ids import IdGenerator
from bridge.redis.pinned import PinnedConnections
from bridge.routing.router import Router
from bridge.storage import ledger
from bridge.storage.accounts import AccountInfo
from bridge.storage.db import Database
from bridge.storage.models import idempotency_keys, messages
from bridge.storage.states import MessageState
from smpp.codec import count_parts

log = logging.getLogger(__name__)

REFERENCE_MAX = 128
SEND_AT_MAX_DAYS = 30  # how far ahead send_at may be
CALLBACK_URL_MAX = 2048
IDEMPOTENCY_KEY_MAX = 255

Pricer = Callable[[str], Decimal]  # E.164 -> price of one part

_INSERT_MESSAGES = messages.insert()  # built once: statement construction costs on every send
_INSERT_IDEMPOTENCY = idempotency_keys.insert()


def make_pricer(config: Config) -> Pricer:
    """THE one place the per-part price is chosen: the route's (``Router.price`` falls back to
    config.price_per_part itself)."""
    return Router.from_config(config).price


@dataclass(frozen=True)
class SendResult:
    """``body`` is the exact JSON-ready 200 answer; ``replayed`` marks an Idempotency-Key repeat."""

    body: dict
    replayed: bool = False
    status_code: int = 200


@dataclass
class _Plan:
    """A validated, priced request, before any I/O."""

    numbers: list[str]
    text: str
    encoding: str
    parts: int
    sender_id: str
    reference: str | None
    callback_url: str | None
    callback_events: str | None = None  # "final" | "all" when callback_url is set
    prices: list[Decimal] = field(default_factory=list)
    send_at: datetime | None = None  # aware UTC; None = send at once
    validity_seconds: int | None = None  # None = config.validity_seconds
    refused: list[str] = field(default_factory=list)  # opted-out numbers left out (not charged)
    requested: list[str] | None = None  # every number asked for, when some were refused

    @property
    def cost(self) -> Decimal:
        return sum(self.prices, Decimal(0))

    def request_hash(self) -> str:
        """What an Idempotency-Key repeat must match: the request after normalisation."""
        numbers = self.requested if self.requested is not None else self.numbers
        values: list = [numbers, self.text, self.sender_id, self.reference, self.callback_url]
        if self.callback_events not in (None, EVENTS_FINAL):  # old keys' hashes stay the same
            values.append(self.callback_events)
        if self.send_at is not None or self.validity_seconds is not None:
            values.append(
                [self.send_at.isoformat() if self.send_at else None, self.validity_seconds]
            )
        canonical = json.dumps(
            values,
            ensure_ascii=False,
            separators=(",", ":"),
        )
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def plan(
    config: Config,
    account: AccountInfo,
    pricer: Pricer,
    numbers,
    message_body,
    sender_id: str | None,
    reference: str | None,
    callback_url: str | None,
    events: str | None = None,
    check_callback: Callable[[str], None] | None = None,
    *,
    send_at: datetime | None = None,
    validity: int | None = None,
    now: float | None = None,
) -> _Plan:
    """Validate and price a request; raises InvalidInput / InvalidNumbers. The only I/O is
    ``check_callback(callback_url)`` (the callback host's DNS lookup, cached; see
    bridge.accept.callbacks) for a request that names a callback_url. ``send_at`` (aware) must
    lie after ``now`` (epoch seconds) and at most SEND_AT_MAX_DAYS ahead; ``validity`` is
    minutes, 1..config.max_validity_minutes."""
    raw = split_numbers(numbers)
    if not raw:
        raise InvalidInput("The numbers field is required.", field="numbers")
    if not isinstance(message_body, str) or not message_body.strip():
        raise InvalidInput("The message_body field is required.", field="message_body")
    if len(raw) > config.max_recipients:
        raise InvalidInput(
            f"Too many numbers: {len(raw)}, the limit is {config.max_recipients} per request.",
            field="numbers",
        )
    encoding, parts = count_parts(message_body)
    if parts > config.max_parts:
        raise InvalidInput(
            f"message_body is too long: {parts} parts, the limit is {config.max_parts} parts.",
            field="message_body",
        )
    sender = resolve_sender(config, account, sender_id)
    _check_optional(reference, callback_url)
    moment = check_send_at(send_at, time.time() if now is None else now)
    validity_seconds = check_validity(config, validity)
    chosen_events = callback_events(events, account.callback_events)
    normalised = normalise(raw, config.default_region)
    if normalised.invalid:
        help_text = hints(numbers, normalised.invalid, config.default_region)
        extra = {"help": help_text} if help_text else {}
        raise InvalidNumbers(invalid_numbers=normalised.invalid, **extra)
    if callback_url and check_callback is not None:
        check_callback(callback_url)  # after the pure checks: no DNS for a request refused anyway
    p = _Plan(
        normalised.numbers,
        message_body,
        encoding,
        parts,
        sender,
        reference or None,
        callback_url or account.callback_url,
    )
    if p.callback_url:
        p.callback_events = chosen_events
    p.send_at, p.validity_seconds = moment, validity_seconds
    p.prices = [pricer(number) * parts for number in p.numbers]
    return p


OPTED_OUT = "opted out"  # the reason a refused number carries (docs/api.md)
ALL_OPTED_OUT = (
    "Every number has opted out of this account's messages (they sent STOP); nothing was sent "
    "or charged."
)
ALL_OPTED_OUT_HELP = (
    "A number opts back in by sending START, or remove it with DELETE /api/v2/optouts/{number} "
    "when it asked you to."
)


def without_opted_out(p: _Plan, opted_out: set[str]) -> _Plan:
    """Leave out the numbers that opted out of the account (they are not priced or charged);
    InvalidInput (400) when that is every number."""
    if not opted_out:
        return p
    keep = [i for i, number in enumerate(p.numbers) if number not in opted_out]
    refused = [number for number in p.numbers if number in opted_out]
    if not keep:
        raise InvalidInput(
            ALL_OPTED_OUT,
            field="numbers",
            refused=[{"number": n, "reason": OPTED_OUT} for n in refused],
            help=ALL_OPTED_OUT_HELP,
        )
    p.requested = list(p.numbers)
    p.numbers = [p.numbers[i] for i in keep]
    p.prices = [p.prices[i] for i in keep]
    p.refused = refused
    return p


def check_send_at(send_at: datetime | None, now: float) -> datetime | None:
    """A scheduled send's time (aware, UTC), or None; InvalidInput naming send_at when it is
    not in the future or more than SEND_AT_MAX_DAYS ahead."""
    if send_at is None:
        return None
    if not isinstance(send_at, datetime) or send_at.utcoffset() is None:
        raise InvalidInput(
            "send_at must be an ISO 8601 date and time with its offset, e.g. "
            "2030-03-17T17:48:00Z or 2030-03-17T20:48:00+03:00.",
            field="send_at",
        )
    moment = send_at.astimezone(UTC)
    current = datetime.fromtimestamp(now, UTC)
    shown = moment.isoformat(timespec="seconds").replace("+00:00", "Z")
    if moment <= current:
        raise InvalidInput(
            f"send_at {shown} is not in the future; give a later time, or leave send_at out "
            "to send now.",
            field="send_at",
        )
    if moment > current + timedelta(days=SEND_AT_MAX_DAYS):
        raise InvalidInput(
            f"send_at {shown} is more than {SEND_AT_MAX_DAYS} days ahead; schedule at most "
            f"{SEND_AT_MAX_DAYS} days in advance.",
            field="send_at",
        )
    return moment


def check_validity(config: Config, minutes: int | None) -> int | None:
    """Seconds of the send's validity, None for the default; InvalidInput naming validity."""
    if minutes is None:
        return None
    top = config.max_validity_minutes
    if isinstance(minutes, bool) or not isinstance(minutes, int) or not 1 <= minutes <= top:
        raise InvalidInput(validity_error(top), field="validity")
    return minutes * 60


def validity_error(top: int) -> str:
    return f"validity must be a whole number of minutes from 1 to {top}."


def resolve_sender(config: Config, account: AccountInfo, sender_id: str | None) -> str:
    """The sender id to use: the requested one if the account may use it, else its default."""
    default = account.default_sender_id or config.default_sender_id
    if sender_id is None or sender_id == "":
        return default
    if sender_id == default or sender_id in account.allowed_sender_ids:
        return sender_id
    raise InvalidInput("sender_id is not allowed for this account.", field="sender_id")


def _check_optional(reference: str | None, callback_url: str | None) -> None:
    if reference is not None and len(reference) > REFERENCE_MAX:
        raise InvalidInput(
            f"reference is too long: at most {REFERENCE_MAX} characters.", field="reference"
        )
    if callback_url:
        parts = urlsplit(callback_url) if len(callback_url) <= CALLBACK_URL_MAX else None
        if parts is None or parts.scheme not in ("http", "https") or not parts.netloc:
            raise InvalidInput(
                "callback_url must be an http or https URL of at most"
                f" {CALLBACK_URL_MAX} characters.",
                field="callback_url",
            )


class Acceptor:
    """Runs the accept transaction and the enqueue for validated requests.

    Sends without an Idempotency-Key are group-committed with the other sends of this process
    (bridge.accept.group); a send with one runs its own transaction, whose unique constraint
    on (account, key) settles races between repeats of the same key.
    """

    def __init__(
        self,
        config: Config,
        db: Database,
        redis,
        flusher: Flusher,
        ids: IdGenerator,
        clock: Callable[[], float],
        *,
        group_max_sends: int = MAX_GROUP_SENDS,
    ) -> None:
        # the XADDs go out on each request thread's own Redis connection (bridge.redis.pinned)
        self._redis = PinnedConnections(redis) if redis is not None else None
        self._config, self._db = config, db
        self._flusher, self._ids, self._clock = flusher, ids, clock
        self.group = GroupAccept(
            db,
            self._redis,
            flusher,
            clock=clock,
            sweeper_grace=config.sweeper_grace_seconds,
            max_sends=group_max_sends,
        )

    def accept(self, account: AccountInfo, p: _Plan, idempotency_key: str | None) -> SendResult:
        """Charge and store the plan (or replay an earlier answer), then enqueue it."""
        if idempotency_key is None:
            return self._accept_grouped(account, p)
        if not idempotency_key or len(idempotency_key) > IDEMPOTENCY_KEY_MAX:
            raise InvalidInput(
                f"Idempotency-Key must be 1 to {IDEMPOTENCY_KEY_MAX} characters.",
                field="Idempotency-Key",
            )
        request_hash = p.request_hash()
        try:  # run again after a dropped connection, even one that lost the COMMIT's answer:
            # a transaction that committed is found by its key and its stored answer replayed
            result, prep = self._db.once_more_if_gone(
                lambda: self._transaction(account, p, idempotency_key, request_hash),
                repeatable=True,
            )
        except IntegrityError:
            # lost a race on the same Idempotency-Key: the winner's answer is the answer
            with self._db.connect() as conn:
                replay = self._replay(conn, account.id, idempotency_key, request_hash)
            if replay is None:
                raise
            return replay
        if prep is not None:
            enqueue(self._redis, self._flusher, [prep], self._config.sweeper_grace_seconds)
        return result

    def _prepare(self, account: AccountInfo, p: _Plan, now: datetime) -> Prepared:
        """Ids and message rows for the plan: all the pure work, before any I/O."""
        batch_id = self._ids.new()
        ids = self._ids.many(len(p.numbers))
        return Prepared(
            account.id, batch_id, self._message_rows(account.id, batch_id, ids, p, now), p.cost, now
        )

    def _accept_grouped(self, account: AccountInfo, p: _Plan) -> SendResult:
        prep = self._prepare(account, p, datetime.fromtimestamp(self._clock(), UTC))
        balance = self.group.commit(prep)
        return SendResult(
            self._body(account, p, prep.batch_id, [r["id"] for r in prep.rows], balance)
        )

    def _transaction(
        self, account: AccountInfo, p: _Plan, key: str, request_hash: str
    ) -> tuple[SendResult, Prepared | None]:
        now = datetime.fromtimestamp(self._clock(), UTC)
        with self._db.begin() as conn:
            replay = self._replay(conn, account.id, key, request_hash, purge_stale=True)
            if replay is not None:
                return replay, None
            prep = self._prepare(account, p, now)
            balance = ledger.charge(conn, account.id, prep.cost, prep.batch_id, now)
            conn.execute(_INSERT_MESSAGES, prep.rows)
            body = self._body(account, p, prep.batch_id, [r["id"] for r in prep.rows], balance)
            conn.execute(
                _INSERT_IDEMPOTENCY,
                {
                    "account_id": account.id,
                    "key": key,
                    "request_hash": request_hash,
                    "response_json": json.dumps(body, ensure_ascii=False),
                    "status_code": 200,
                    "created_at": now,
                },
            )
        return SendResult(body), prep

    def replay(self, conn, account_id: int, key: str, request_hash: str) -> SendResult | None:
        """The stored answer of an Idempotency-Key repeat (None: none within its TTL)."""
        return self._replay(conn, account_id, key, request_hash)

    def _replay(
        self, conn, account_id: int, key: str, request_hash: str, purge_stale: bool = False
    ) -> SendResult | None:
        """The stored answer for this key, None if there is none (or it is past its TTL)."""
        row = (
            conn.execute(
                select(idempotency_keys).where(
                    idempotency_keys.c.account_id == account_id, idempotency_keys.c.key == key
                )
            )
            .mappings()
            .first()
        )
        if row is None:
            return None
        age = self._clock() - row["created_at"].timestamp()
        if age > self._config.idempotency_ttl_seconds:
            if purge_stale:
                conn.execute(delete(idempotency_keys).where(idempotency_keys.c.id == row["id"]))
            return None
        if row["request_hash"] != request_hash:
            raise InvalidInput(
                "Idempotency-Key was already used with a different request.",
                field="Idempotency-Key",
            )
        return SendResult(
            json.loads(row["response_json"]), replayed=True, status_code=row["status_code"]
        )

    def _message_rows(
        self, account_id: int, batch_id: str, ids: list[str], p: _Plan, now: datetime
    ) -> list[dict]:
        start = p.send_at or now
        expires = start + timedelta(seconds=p.validity_seconds or self._config.validity_seconds)
        common = {
            "batch_id": batch_id,
            "account_id": account_id,
            "sender_id": p.sender_id,
            "text": p.text,
            "encoding": p.encoding,
            "parts": p.parts,
            "state": MessageState.SCHEDULED if p.send_at else MessageState.ACCEPTED,
            "client_reference": p.reference,
            "callback_url": p.callback_url,
            "callback_events": p.callback_events,
            "created_at": now,
            "updated_at": now,
            "expires_at": expires,
            "send_at": p.send_at,
        }
        return [
            {**common, "id": mid, "destination": number, "price": price}
            for mid, number, price in zip(ids, p.numbers, p.prices, strict=True)
        ]

    @staticmethod
    def _body(
        account: AccountInfo, p: _Plan, batch_id: str, ids: list[str], balance: Decimal
    ) -> dict:
        parts = p.parts
        body = {
            "status": MessageState.ACCEPTED,
            "batch_id": batch_id,
            "count": len(ids),
            "parts": parts * len(ids),
            "cost": ledger.money_str(p.cost),
            "currency": account.currency,
            "balance": ledger.money_str(balance),
        }
        if p.reference is not None:
            body["reference"] = p.reference
        if p.refused:
            body["refused"] = [{"number": n, "reason": OPTED_OUT} for n in p.refused]
        state = MessageState.ACCEPTED
        if p.send_at is not None:
            body["send_at"] = p.send_at.isoformat(timespec="milliseconds").replace("+00:00", "Z")
            state = MessageState.SCHEDULED
        price_str: dict[Decimal, str] = {}
        body["messages"] = [
            {
                "number": number,
                "message_id": mid,
                "status": state,
                "parts": parts,
                "cost": price_str.get(price)
                or price_str.setdefault(price, ledger.money_str(price)),
            }
            for mid, number, price in zip(ids, p.numbers, p.prices, strict=True)
        ]
        return body
