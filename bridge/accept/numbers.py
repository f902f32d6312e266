"""Phone numbers: split the `numbers` parameter, normalise each to E.164, keep mobiles only.

libphonenumber rules (the `phonenumbers` package) against a default region, so ``0701234567``,
``+254701234567``, ``254701234567`` and ``0701 234 567`` are all ``+254701234567`` for KE.
Parsing costs ~10 µs a number; an LRU cache makes repeated numbers (bulk lists re-sent daily)
nearly free.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass

import phonenumbers
from phonenumbers import PhoneNumberFormat, PhoneNumberType

MOBILE_TYPES = frozenset({PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE_OR_MOBILE})
MAX_RAW_LENGTH = 40  # longer strings are not phone numbers, whatever their punctuation


@dataclass(frozen=True)
class Normalised:
    """The unique E.164 numbers in first-seen order, and the raw entries that were refused."""

    numbers: list[str]
    invalid: list[str]


def split_numbers(numbers: str | Iterable[object] | None) -> list[str]:
    """Entries of a comma-separated string or a list, stripped, empty entries dropped."""
    if numbers is None:
        return []
    if isinstance(numbers, (list, tuple)):
        items: Iterable[object] = numbers
    else:  # a string, or a lone value some client sent as a JSON number
        items = str(numbers).split(",")
    out = []
    for item in items:
        text = item.strip() if isinstance(item, str) else str(item).strip()
        if text:
            out.append(text)
    return out


@functools.lru_cache(maxsize=65_536)
def to_e164(raw: str, region: str) -> str | None:
    """E.164 of ``raw`` when it is a valid mobile number for delivery, else None."""
    if len(raw) > MAX_RAW_LENGTH:
        return None
    try:
        parsed = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException:
        return None
    # number_type() is UNKNOWN for invalid numbers, so it doubles as the validity check
    if phonenumbers.number_type(parsed) not in MOBILE_TYPES:
        return None
    return phonenumbers.format_number(parsed, PhoneNumberFormat.E164)


def normalise(raw_numbers: list[str], region: str) -> Normalised:
    """Normalise every entry; duplicates (same E.164) collapse to the first occurrence."""
    seen: dict[str, None] = {}
    invalid: list[str] = []
    for raw in raw_numbers:
        e164 = to_e164(raw, region)
        if e164 is None:
            invalid.append(raw)
        else:
            seen.setdefault(e164, None)
    return Normalised(list(seen), invalid)
