"""Scenarios: small behaviours layered on the happy SMSC, one class each, composed by name.

Each overrides only the hooks it needs; the SMSC calls a hook only on scenarios that override it,
so an SMSC without scenarios pays nothing. Hooks run on the server thread. Submit verdicts are
asked in the order the scenarios were given; the first that answers wins (so a throttled
submit is not counted by a later `silent`). Command-line form: ``name:key=value,key=value``.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, ClassVar, Final, Literal

from smpp.codec.pdu import ShortMessage
from smpp.codec.status import (
    ESME_RBINDFAIL,
    ESME_RINVDSTADR,
    ESME_RMSGQFUL,
    ESME_RTHROTTLED,
    parse_status,
)
from smpp.codec.tlv import MESSAGE_STATES, TAG_MESSAGE_PAYLOAD

if TYPE_CHECKING:  # pragma: no cover
    from smpp.simulator.connection import Connection
    from smpp.simulator.smsc import Smsc

SILENT: Final = "silent"  # a submit verdict: never answer this PDU
#: What Scenario.submit() returns: a status to refuse with, SILENT, or None (no opinion).
Verdict = int | Literal["silent"] | None
#: Each parameter's parser: its text on the command line to the value the scenario takes.
Params = dict[str, Callable[[str], Any]]


class ScenarioError(ValueError):
    """A scenario name or parameter is wrong; the message lists what is allowed."""


class Scenario:
    """Base: every hook does nothing. ``name`` is the command-line name, ``PARAMS`` maps each
    parameter to the function that parses its command-line text."""

    name: ClassVar[str] = ""
    PARAMS: ClassVar[Params] = {}
    receipt_first: ClassVar[bool] = False

    def bind(self, system_id: str) -> int | None:
        """A status to refuse this bind with, or None."""
        return None

    def submit(self, now: float, message: ShortMessage) -> Verdict:
        """A status to refuse this submit with, SILENT to never answer it, or None."""
        return None

    def outcome(self, message: ShortMessage) -> str | None:
        """The receipt stat for this accepted message, or None for the configured mix."""
        return None

    def response_delay(self) -> float:
        """Seconds to hold this submit's response."""
        return 0.0

    def after_pdu(self, conn: Connection) -> None:
        """Called after each PDU a connection sent us has been handled."""

    def receipt(self, body: ShortMessage, rid: str, text: str) -> tuple[ShortMessage, str]:
        """The receipt deliver_sm body to send for message ``rid`` and its text as sent."""
        return body, text

    def start(self, smsc: Smsc) -> None:
        """The scenario became active (periodic ones schedule themselves here)."""

    def stop(self) -> None:
        """The scenario was replaced or the SMSC stopped."""


def _bool(text: str) -> bool:
    if text.lower() in ("1", "true", "yes", "on"):
        return True
    if text.lower() in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"{text!r} is not a boolean; use 1 or 0")


def _prefixes(text: str) -> tuple[str, ...]:
    """'25479+25471' (or with |) -> ('25479', '25471'); a leading + of E.164 is dropped."""
    return tuple(p for p in re.split(r"[+|]", text) if p)


def _stat(text: str) -> str:
    if text.upper() not in MESSAGE_STATES:
        raise ValueError(f"{text!r} is not a receipt stat; use {', '.join(MESSAGE_STATES)}")
    return text.upper()


@dataclass
class Latency(Scenario):
    """Hold every submit_sm_resp / data_sm_resp ``ms`` milliseconds, plus up to ``jitter_ms``
    (responses then come back out of order, as busy SMSCs do)."""

    name: ClassVar[str] = "latency"
    PARAMS: ClassVar[Params] = {"ms": float, "jitter_ms": float}
    ms: float = 5.0
    jitter_ms: float = 0.0
    _rng: random.Random = field(default_factory=lambda: random.Random(0), repr=False, compare=False)

    def response_delay(self) -> float:
        return (self.ms + (self._rng.random() * self.jitter_ms if self.jitter_ms else 0)) / 1000


@dataclass
class Throttle(Scenario):
    """At most ``tps`` submits a second across the SMSC (a token bucket holding ``burst``,
    default one second's worth); the rest get ``status`` (ESME_RTHROTTLED)."""

    name: ClassVar[str] = "throttle"
    PARAMS: ClassVar[Params] = {"tps": float, "burst": int, "status": parse_status}
    tps: float = 100.0
    burst: int | None = None
    status: int = ESME_RTHROTTLED
    refused: int = field(default=0, compare=False)  # so far
    _tokens: float = field(default=-1.0, repr=False, compare=False)
    _last: float = field(default=0.0, repr=False, compare=False)

    def submit(self, now: float, message: ShortMessage) -> int | None:
        cap = self.burst or max(1, int(self.tps))
        if self._tokens < 0:
            self._tokens = float(cap)
        else:
            self._tokens = min(cap, self._tokens + (now - self._last) * self.tps)
        self._last = now
        if self._tokens >= 1:
            self._tokens -= 1
            return None
        self.refused += 1
        return self.status


@dataclass
class QueueFull(Scenario):
    """After every ``every`` accepted submits, the next ``burst`` get ``status`` (RMSGQFUL)."""

    name: ClassVar[str] = "msgqful"
    PARAMS: ClassVar[Params] = {"every": int, "burst": int, "status": parse_status}
    every: int = 50
    burst: int = 5
    status: int = ESME_RMSGQFUL
    seen: int = field(default=0, compare=False)  # so far

    def submit(self, now: float, message: ShortMessage) -> int | None:
        self.seen += 1
        return self.status if (self.seen - 1) % (self.every + self.burst) >= self.every else None


@dataclass
class RejectPrefix(Scenario):
    """Destinations starting with one of ``prefixes`` get ``status`` (ESME_RINVDSTADR)."""

    name: ClassVar[str] = "reject-prefix"
    PARAMS: ClassVar[Params] = {"prefixes": _prefixes, "status": parse_status}
    prefixes: tuple[str, ...] = ()
    status: int = ESME_RINVDSTADR

    def submit(self, now: float, message: ShortMessage) -> int | None:
        return self.status if message.destination_addr.startswith(self.prefixes) else None


@dataclass
class Silent(Scenario):
    """Every ``every``-th submit (default: all) is never answered and never delivered."""

    name: ClassVar[str] = "silent"
    PARAMS: ClassVar[Params] = {"every": int}
    every: int = 1
    seen: int = field(default=0, compare=False)  # so far

    def submit(self, now: float, message: ShortMessage) -> Verdict:
        self.seen += 1
        return SILENT if self.seen % self.every == 0 else None


@dataclass
class Outcome(Scenario):
    """Messages to destinations starting with ``prefixes`` get receipt stat ``stat``."""

    name: ClassVar[str] = "outcome"
    PARAMS: ClassVar[Params] = {"prefixes": _prefixes, "stat": _stat}
    prefixes: tuple[str, ...] = ()
    stat: str = "UNDELIV"

    def outcome(self, message: ShortMessage) -> str | None:
        return self.stat if message.destination_addr.startswith(self.prefixes) else None


@dataclass
class DropAfter(Scenario):
    """Close each connection once it has sent ``pdus`` PDUs (that one is answered; anything
    pipelined behind it is lost). ``abort=1`` resets the TCP connection instead of closing."""

    name: ClassVar[str] = "drop-after"
    PARAMS: ClassVar[Params] = {"pdus": int, "abort": _bool}
    pdus: int = 100
    abort: bool = False

    def after_pdu(self, conn: Connection) -> None:
        if conn.received >= self.pdus:
            conn.drop(abort=self.abort)


@dataclass
class UnbindAfter(Scenario):
    """The SMSC sends unbind to each bound connection after it has sent ``pdus`` PDUs."""

    name: ClassVar[str] = "unbind-after"
    PARAMS: ClassVar[Params] = {"pdus": int}
    pdus: int = 100

    def after_pdu(self, conn: Connection) -> None:
        if conn.received >= self.pdus and conn.bound and not conn.unbinding:
            conn.unbind()


MALFORMED_KINDS = ("truncated", "unknown-command", "bad-length", "huge-length", "stray-resp")


@dataclass
class Malformed(Scenario):
    """Once per connection, after it has sent ``after`` PDUs, send it a malformed PDU:
    "truncated" (a deliver_sm whose body stops mid-field: answer generic_nack or an error
    deliver_sm_resp), "unknown-command" (id 0x00000999: answer generic_nack ESME_RINVCMDID) or
    "bad-length" (command_length 8: the stream is unusable, close it), "huge-length"
    (command_length 0x7FFFFFFF and no body: refuse it or close, never wait for the bytes) or
    "stray-resp" (a submit_sm_resp for sequence 0x7FFFFFFE, which the ESME never used: it
    must settle no submit)."""

    name: ClassVar[str] = "malformed"
    PARAMS: ClassVar[Params] = {"after": int, "kind": str}
    after: int = 5
    kind: str = "truncated"

    def __post_init__(self) -> None:
        if self.kind not in MALFORMED_KINDS:
            raise ScenarioError(f"malformed kind {self.kind!r}: use {', '.join(MALFORMED_KINDS)}")

    def after_pdu(self, conn: Connection) -> None:
        if conn.received >= self.after and "malformed" not in conn.flags:
            conn.flags.add("malformed")
            conn.send_malformed(self.kind)


@dataclass
class RefuseBinds(Scenario):
    """Refuse binds with ``status`` (ESME_RBINDFAIL): all of them, or the first ``count``."""

    name: ClassVar[str] = "refuse-binds"
    PARAMS: ClassVar[Params] = {"count": int, "status": parse_status}
    count: int | None = None
    status: int = ESME_RBINDFAIL
    refused: int = field(default=0, compare=False)  # so far

    def bind(self, system_id: str) -> int | None:
        if self.count is not None and self.refused >= self.count:
            return None
        self.refused += 1
        return self.status


@dataclass
class ReceiptFirst(Scenario):
    """Send each delivery receipt before the submit_sm_resp it belongs to."""

    name: ClassVar[str] = "receipt-first"
    receipt_first: ClassVar[bool] = True


RECEIPT_SHAPES = ("text-only", "tlv-only", "payload", "ucs2", "text-id-differs")


def _shape(text: str) -> str:
    if text not in RECEIPT_SHAPES:
        raise ValueError(f"{text!r} is not a receipt shape; use {', '.join(RECEIPT_SHAPES)}")
    return text


@dataclass
class ReceiptShape(Scenario):
    """Receipts shaped as other SMSCs send them. ``shape``: "text-only" (no TLVs: id and stat
    only in the text), "tlv-only" (empty short_message), "payload" (the text in message_payload,
    empty short_message, no other TLVs), "ucs2" (the text in UCS-2, data_coding 8, no TLVs) or
    "text-id-differs" (the TLVs name the message; the text's id: is the previous receipt's, a
    message this receipt does not report, as SMSCs that write another id there do: the TLV
    wins, SMPP 3.4 5.3.2.12)."""

    name: ClassVar[str] = "receipt-shape"
    PARAMS: ClassVar[Params] = {"shape": _shape}
    shape: str = "text-only"
    _previous: str = field(default="0", repr=False, compare=False)  # the last receipt's id

    def receipt(self, body: ShortMessage, rid: str, text: str) -> tuple[ShortMessage, str]:
        if self.shape == "text-id-differs":
            text, self._previous = text.replace(f"id:{rid} ", f"id:{self._previous} ", 1), rid
            return replace(body, short_message=text.encode("ascii")), text
        if self.shape == "tlv-only":
            return replace(body, short_message=b""), ""
        if self.shape == "payload":
            payload = {TAG_MESSAGE_PAYLOAD: body.short_message}
            return replace(body, short_message=b"", tlvs=payload), text
        if self.shape == "ucs2":
            ucs2 = text.encode("utf-16-be")
            return replace(body, data_coding=0x08, short_message=ucs2, tlvs={}), text
        return replace(body, tlvs={}), text  # text-only


@dataclass
class Mo(Scenario):
    """Every ``every`` seconds, send a mobile-originated ``text`` from ``source`` to ``dest``
    to a bound receiver (of ``system_id``, or any), concatenated by ``parts`` ("udh", "sar",
    "payload"; none: one PDU), at most ``count`` times. Skipped while no receiver is bound."""

    name: ClassVar[str] = "mo"
    PARAMS: ClassVar[Params] = {
        "every": float,
        "source": str,
        "dest": str,
        "text": str,
        "parts": str,
        "system_id": str,
        "count": int,
    }
    every: float = 1.0
    source: str = "254700000001"
    dest: str = "12345"
    text: str = "hello from a handset"
    parts: str | None = None
    system_id: str | None = None
    count: int | None = None
    sent: int = field(default=0, compare=False)  # so far
    _active: bool = field(default=False, repr=False, compare=False)

    def start(self, smsc: Smsc) -> None:
        self._active = True
        smsc.timers.call_later(self.every, self._tick, smsc)

    def stop(self) -> None:
        self._active = False

    def _tick(self, smsc: Smsc) -> None:
        if not self._active or (self.count is not None and self.sent >= self.count):
            return
        parts = None if self.parts in (None, "", "none") else self.parts
        if smsc.send_mo(self.source, self.dest, self.text, parts, self.system_id) is not None:
            self.sent += 1
        smsc.timers.call_later(self.every, self._tick, smsc)


SCENARIOS: dict[str, type[Scenario]] = {
    cls.name: cls
    for cls in (
        Latency,
        Throttle,
        QueueFull,
        RejectPrefix,
        Silent,
        Outcome,
        DropAfter,
        UnbindAfter,
        Malformed,
        RefuseBinds,
        ReceiptFirst,
        ReceiptShape,
        Mo,
    )
}


def parse_scenario(spec: str) -> Scenario:
    """'throttle:tps=100' or 'refuse-binds' -> a Scenario."""
    name, _, params = spec.strip().partition(":")
    cls = SCENARIOS.get(name)
    if cls is None:
        raise ScenarioError(f"unknown scenario {name!r}; use one of {', '.join(SCENARIOS)}")
    kwargs: dict[str, Any] = {}
    for item in filter(None, (p.strip() for p in params.split(","))):
        key, eq, value = item.partition("=")
        key = key.strip().replace("-", "_")
        if key not in cls.PARAMS or not eq:
            allowed = ", ".join(f"{k}=..." for k in cls.PARAMS) or "no parameters"
            raise ScenarioError(f"scenario {name}: bad parameter {item!r}; it takes {allowed}")
        try:
            kwargs[key] = cls.PARAMS[key](value.strip())
        except (ValueError, KeyError) as exc:
            raise ScenarioError(f"scenario {name}: {key}={value!r}: {exc}") from None
    return cls(**kwargs)


def build_scenarios(items: Iterable[Scenario | str]) -> list[Scenario]:
    """Scenario objects as given, strings parsed."""
    return [item if isinstance(item, Scenario) else parse_scenario(item) for item in items]
