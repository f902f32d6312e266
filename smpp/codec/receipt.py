"""Delivery receipts: parse a deliver_sm receipt (TLVs and the SMPP 3.4 Appendix B text).

The text form is informal and every SMSC bends it: "id:1A2B sub:001 dlvrd:001 submit
date:2406011200 done date:2406011201 stat:DELIVRD err:000 text:Hello". Keys may be in any case,
'submit date' may be 'submit_date', fields may be missing, 'text:' is last and holds anything.
TLVs (receipted_message_id, message_state, network_error_code) are structured and win over the
text. Deciding that a deliver_sm *is* a receipt (esm_class bits 2-5 == 0x04) is the session's
job; parse_receipt only tells a receipt-shaped body from anything else. Pure; never raises.

Message-id normalisation (id_forms, canonical_id) lives in smpp.codec.message_id and is re-exported.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, tzinfo

from smpp.codec import tlv
from smpp.codec.message_id import ID_FORMS, canonical_id, clean_id, id_forms
from smpp.codec.text import decode
from smpp.codec.tlv import TAG_MESSAGE_STATE, TAG_NETWORK_ERROR_CODE, TAG_RECEIPTED_MESSAGE_ID

__all__ = [
    "FINAL_STATES",
    "ID_FORMS",
    "MESSAGE_STATES",
    "STATES",
    "Receipt",
    "canonical_id",
    "id_forms",
    "parse_receipt",
    "parse_receipt_date",
    "parse_receipt_text",
]

#: message_state TLV values (SMPP 3.4 5.2.28) to the receipt text's 7-letter stat.
MESSAGE_STATES = {value: stat for stat, value in tlv.MESSAGE_STATES.items()}

#: stat -> (our state name, final?). Final states settle a message; the others are notes.
#: DELETED -> undelivered: the SMSC dropped the message (cancel_sm or an operator) before it
#:   reached the handset, which for the sender is exactly "not delivered".
#: ACCEPTD -> accepted, not final: many SMSCs send it as an intermediate "taken over" note,
#:   and a later DELIVRD/UNDELIV must still be able to settle the message.
#: UNKNOWN -> unknown, not final: the SMSC lost track; a later receipt or the engine's own
#:   expiry decides. Any unrecognised stat is treated the same way.
STATES = {
    "DELIVRD": ("delivered", True),
    "UNDELIV": ("undelivered", True),
    "EXPIRED": ("expired", True),
    "DELETED": ("undelivered", True),
    "REJECTD": ("rejected", True),
    "ENROUTE": ("enroute", False),
    "ACCEPTD": ("accepted", False),
    "UNKNOWN": ("unknown", False),
}
FINAL_STATES = frozenset(state for state, final in STATES.values() if final)

# Spellings SMSCs use for the stat values, to the 7-letter form.
_STAT_ALIASES = {
    "DELIVERED": "DELIVRD",
    "UNDELIVERABLE": "UNDELIV",
    "UNDELIVERED": "UNDELIV",
    "ACCEPTED": "ACCEPTD",
    "REJECTED": "REJECTD",
    "DELETE": "DELETED",
}

# Receipt keys at the start of the text or after whitespace, and what we call them.
_KEY_RE = re.compile(
    r"(?:^|(?<=\s))(id|sub|dlvrd|submit[ _]?date|done[ _]?date|stat|err|text)\s*:", re.IGNORECASE
)
# The same keys, lower case, each as it may be spelled -> the field it names.
_KEY_NAMES = {key: key for key in ("id", "sub", "dlvrd", "stat", "err", "text")}
_KEY_NAMES.update(
    {f"{base}{sep}date": f"{base}_date" for base in ("submit", "done") for sep in (" ", "_", "")}
)
_KEY_LENGTHS = sorted({len(key) for key in _KEY_NAMES}, reverse=True)


@dataclass(frozen=True)
class Receipt:
    """A parsed delivery receipt.

    stat is the SMSC's 7-letter state (upper case); state is our name for it and final says
    whether it settles the message (see STATES). Dates are as the SMSC wrote them, in the
    SMSC's local time: naive datetimes unless parse_receipt was given the SMSC's tz.
    message_state / network_error are the raw TLV values when present.
    """

    message_id: str
    stat: str
    state: str
    final: bool
    err: str | None = None
    sub: str | None = None
    dlvrd: str | None = None
    submit_date: datetime | None = None
    done_date: datetime | None = None
    text: str | None = None
    message_state: int | None = None
    network_error: bytes | None = None


def parse_receipt_text(text: str) -> dict[str, str]:
    """The fields of a receipt text, keyed id, sub, dlvrd, submit_date, done_date, stat, err,
    text; values stripped. Keys are case-insensitive; the first 'text:' takes the rest of the
    string, colons and all. Missing fields are absent; a repeated key keeps its first value.
    """
    fields: dict[str, str] = {}
    keys = _keys(text)
    for i, (_start, after, key) in enumerate(keys):
        if key == "text":
            fields.setdefault("text", text[after:].strip())
            break
        end = keys[i + 1][0] if i + 1 < len(keys) else len(text)
        fields.setdefault(key, text[after:end].strip())
    return fields


def _keys(text: str) -> list[tuple[int, int, str]]:
    """(start, end, field name) of every key ``_KEY_RE`` finds in ``text``, in order. An ASCII
    text (a receipt, in practice) is read colon by colon (a key is the word(s) just before a
    colon, after optional whitespace, at the start or after whitespace), not by a regex scan
    of every position; any other text by the regex."""
    if not text.isascii():
        found = []
        for match in _KEY_RE.finditer(text):
            key = match.group(1).lower()
            if key.endswith("date"):  # submit date, submit_date, submitdate -> submit_date
                key = key[:-4].rstrip(" _") + "_date"
            found.append((match.start(), match.end(), key))
        return found
    lower = text.lower()
    found = []
    colon = text.find(":")
    while colon >= 0:
        end = colon
        while end and text[end - 1].isspace():
            end -= 1
        for length in _KEY_LENGTHS:
            start = end - length
            name = _KEY_NAMES.get(lower[start:end]) if start >= 0 else None
            if name is not None and (start == 0 or text[start - 1].isspace()):
                found.append((start, colon + 1, name))
                break
        colon = text.find(":", colon + 1)
    return found


def parse_receipt_date(value: str | None, tz: tzinfo | None = None) -> datetime | None:
    """A receipt date (YYMMDDhhmm, YYMMDDhhmmss or YYYYMMDDhhmmss) or None if it is not one.

    Two-digit years are 2000-2099. With `tz` the result is aware in that zone, else naive.
    """
    if not value or len(value) not in (10, 12, 14) or not value.isdecimal():
        return None  # isdecimal: the digits \d matches
    if len(value) == 14:
        value = value[2:]
    parts = [int(value[i : i + 2]) for i in range(0, len(value), 2)]
    year, month, day, hour, minute = parts[:5]
    second = parts[5] if len(parts) > 5 else 0
    try:
        return datetime(2000 + year, month, day, hour, minute, second, tzinfo=tz)
    except ValueError:  # month 13, 31 February, hour 24...: not a date we can use
        return None


def _normalise_stat(stat: str) -> str:
    stat = stat.strip().upper()
    return _STAT_ALIASES.get(stat, stat)


def _tlv_bytes(tlvs: Mapping[int, object], tag: int) -> bytes | None:
    value = tlvs.get(tag)
    if isinstance(value, str):
        return value.encode("latin-1", "replace")
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    return None


def _tlv_state(tlvs: Mapping[int, object]) -> int | None:
    value = tlvs.get(TAG_MESSAGE_STATE)
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    raw = _tlv_bytes(tlvs, TAG_MESSAGE_STATE)
    return int.from_bytes(raw, "big") if raw else None


def _body_text(short_message: bytes | str, data_coding: int | None) -> str:
    """The receipt body as text: by data_coding when known, else ASCII-ish Latin-1, or UTF-16
    when the bytes look like it (some SMSCs send receipts in UCS-2)."""
    if isinstance(short_message, str):
        return short_message
    data = bytes(short_message)
    if data_coding is not None:
        return decode(data, data_coding)
    if len(data) >= 4 and data[0] == 0 and data[0::2].count(0) * 2 > len(data) // 2:
        return decode(data, 0x08)
    return data.decode("latin-1")


def parse_receipt(
    short_message: bytes | str,
    tlvs: Mapping[int, object] | None = None,
    *,
    data_coding: int | None = None,
    tz: tzinfo | None = None,
) -> Receipt | None:
    """The Receipt in a deliver_sm body and its TLVs, or None when it is not a receipt.

    receipted_message_id (NULs stripped) and message_state TLVs win over the text's id/stat.
    A receipt needs an id and a state (stat text or message_state TLV). TLV values may be bytes,
    str or (message_state) int. `data_coding` decodes a bytes body; `tz` makes dates aware.
    Never raises on arbitrary input.
    """
    tlvs = tlvs or {}
    fields = parse_receipt_text(_body_text(short_message, data_coding))
    raw_id = _tlv_bytes(tlvs, TAG_RECEIPTED_MESSAGE_ID)
    message_id = clean_id(raw_id.decode("latin-1")) if raw_id else ""
    message_id = message_id or clean_id(fields.get("id", "").split(" ")[0])
    message_state = _tlv_state(tlvs)
    if message_state in MESSAGE_STATES:
        stat = MESSAGE_STATES[message_state]
    else:
        stat = _normalise_stat(fields.get("stat", "").split(" ")[0])
    if not message_id or not (stat or message_state is not None):
        return None
    stat = stat or "UNKNOWN"
    state, final = STATES.get(stat, ("unknown", False))
    return Receipt(
        message_id=message_id,
        stat=stat,
        state=state,
        final=final,
        err=fields.get("err") or None,
        sub=fields.get("sub") or None,
        dlvrd=fields.get("dlvrd") or None,
        submit_date=parse_receipt_date(fields.get("submit_date"), tz),
        done_date=parse_receipt_date(fields.get("done_date"), tz),
        text=fields.get("text"),
        message_state=message_state,
        network_error=_tlv_bytes(tlvs, TAG_NETWORK_ERROR_CODE),
    )
