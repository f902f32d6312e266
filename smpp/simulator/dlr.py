"""What the simulated SMSC decides per accepted message: its id, its outcome, and the delivery
receipt deliver_sm that reports it. Pure apart from the injected random generator and clock."""

from __future__ import annotations

import bisect
import itertools
import random
import time
import uuid
from collections.abc import Callable, Mapping

from smpp.codec import decode, pdu
from smpp.codec.tlv import MESSAGE_STATES, TAG_MESSAGE_STATE, TAG_RECEIPTED_MESSAGE_ID

#: err: value written in receipts for each stat (the SMSC's own error code, 3 digits).
RECEIPT_ERRORS = {
    "DELIVRD": "000",
    "ACCEPTD": "000",
    "ENROUTE": "000",
    "EXPIRED": "001",
    "UNDELIV": "002",
    "REJECTD": "003",
    "DELETED": "004",
    "UNKNOWN": "005",
}


class MessageIds:
    """Message ids in one of the forms SMSCs use: "decimal" (a counter from a random 10-digit
    start), "sequential" (decimal from 1, the way many SMSCs number: every id also reads as
    hex), "hex" (the random-start counter, upper-case hex) or "uuid" (random, seeded). ``start``
    continues an earlier generator's counter, so ids never repeat within one simulator."""

    def __init__(self, form: str, rng: random.Random, start: int | None = None) -> None:
        self.form = form
        self._rng = rng
        if start is not None:
            self.counter = start
        elif form == "sequential":
            self.counter = 1
        else:
            self.counter = rng.randrange(1_000_000_000, 3_000_000_000)

    def next(self) -> str:
        n = self.counter
        self.counter = n + 1
        if self.form in ("decimal", "sequential"):
            return str(n)
        if self.form == "hex":
            return f"{n:X}"
        return str(uuid.UUID(int=self._rng.getrandbits(128), version=4))


def receipt_id(message_id: str, id_form: str, receipt_form: str) -> str:
    """The id as a receipt carries it: the submit_sm_resp id, or the same number in the other
    base (the hex/decimal mismatch some SMSCs have)."""
    if receipt_form == "same" or receipt_form == id_form.replace("sequential", "decimal"):
        return message_id
    number = int(message_id, 16 if id_form == "hex" else 10)
    return f"{number:X}" if receipt_form == "hex" else str(number)


class ReceiptDelays:
    """Seconds from submit_sm_resp to the receipt: ``low``, or uniform in [low, high] (seeded)
    when ``high`` is set, so receipts come back out of submission order as carriers' do."""

    def __init__(self, low: float, high: float | None, rng: random.Random) -> None:
        self.low, self.high, self._rng = low, high, rng

    def next(self) -> float:
        if self.high is None or self.high <= self.low:
            return self.low
        return self._rng.uniform(self.low, self.high)


class Outcomes:
    """Picks a receipt stat by weight, e.g. {"DELIVRD": 0.9, "UNDELIV": 0.1}."""

    def __init__(self, weights: Mapping[str, float], rng: random.Random) -> None:
        items = [(stat, w) for stat, w in weights.items() if w > 0]
        self._stats = [stat for stat, _ in items]
        self._cumulative = list(itertools.accumulate(w for _, w in items))
        self._rng = rng

    def choose(self) -> str:
        if len(self._stats) == 1:
            return self._stats[0]
        point = self._rng.random() * self._cumulative[-1]
        return self._stats[bisect.bisect_right(self._cumulative, point)]


class ReceiptDates:
    """YYMMDDhhmm (UTC) strings, cached per minute: receipts are built at high rates."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self._minute = -1
        self._text = ""

    def now(self) -> tuple[float, str]:
        t = self.clock()
        minute = int(t // 60)
        if minute != self._minute:
            self._minute, self._text = minute, time.strftime("%y%m%d%H%M", time.gmtime(t))
        return t, self._text

    @staticmethod
    def format(t: float) -> str:
        return time.strftime("%y%m%d%H%M", time.gmtime(t))


def receipt_text(rid: str, stat: str, submit_date: str, done_date: str, sample: str) -> str:
    """The de-facto standard receipt text (SMPP 3.4 appendix B)."""
    delivered = "001" if stat == "DELIVRD" else "000"
    return (
        f"id:{rid} sub:001 dlvrd:{delivered} submit date:{submit_date} "
        f"done date:{done_date} stat:{stat} err:{RECEIPT_ERRORS.get(stat, '000')} "
        f"text:{sample}"
    )


#: Printable ASCII octets that mean the same character in the GSM 03.38 default alphabet.
_GSM_AS_ASCII = bytes(
    c
    for c in range(0x20, 0x7F)
    if c not in (0x24, 0x40, 0x5B, 0x5C, 0x5D, 0x5E, 0x5F, 0x60, 0x7B, 0x7C, 0x7D, 0x7E)
)


def text_sample(payload: bytes, data_coding: int) -> str:
    """The first 20 characters of a message for the receipt's text: field, printable ASCII
    (anything else shown as '.')."""
    head = payload[:20]
    if data_coding in (0, 1, 3) and not head.translate(None, _GSM_AS_ASCII):
        return head.decode("ascii")  # the common case, without a full decode
    sample = decode(payload[:40], data_coding)[:20]
    return "".join(c if c.isascii() and c.isprintable() else "." for c in sample)


def receipt_message(
    submitted: pdu.ShortMessage, rid: str, stat: str, text: str
) -> pdu.ShortMessage:
    """The deliver_sm body of a receipt for ``submitted``: addresses swapped, esm_class 0x04,
    receipted_message_id and message_state TLVs."""
    return pdu.ShortMessage(
        "",
        submitted.dest_addr_ton,
        submitted.dest_addr_npi,
        submitted.destination_addr,
        submitted.source_addr_ton,
        submitted.source_addr_npi,
        submitted.source_addr,
        pdu.ESM_CLASS_DELIVERY_RECEIPT,
        0,
        0,
        "",
        "",
        0,
        0,
        0,
        0,
        text.encode("ascii"),
        {
            TAG_RECEIPTED_MESSAGE_ID: rid.encode("ascii") + b"\0",
            TAG_MESSAGE_STATE: bytes((MESSAGE_STATES[stat],)),
        },
    )
