"""Phone numbers: split the `numbers` parameter, normalise each to E.164, keep mobiles only.

libphonenumber rules (the `phonenumbers` package) against a default region, so ``0701234567``,
``+254701234567``, ``254701234567`` and ``0701 234 567`` are all ``+254701234567`` for KE.
Parsing costs ~10 µs a number; an LRU cache makes repeated numbers (bulk lists re-sent daily)
nearly free. An entry holding a control character is never valid (libphonenumber itself would
skip a trailing NUL). :func:`hints` says what to do about refused entries when we can tell.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass

import phonenumbers
from phonenumbers import PhoneNumberFormat, PhoneNumberType

from bridge.accept.chars import control_problem

MOBILE_TYPES = frozenset({PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE_OR_MOBILE})
MAX_RAW_LENGTH = 40  # longer strings are not phone numbers, whatever their punctuation
MAX_HINTS = 3  # a help text names at most this many entries
# what "blanks around entries" means: whitespace, but not the control characters Python counts
# as whitespace (U+000B, U+000C, U+001C-U+001F, U+0085), which make an entry invalid instead
_BLANKS = "".join(
    c
    for c in map(chr, range(0x3001))
    if c.isspace() and control_problem("", c, message_text=True) is None
)


@dataclass(frozen=True)
class Normalised:
    """The unique E.164 numbers in first-seen order, and the raw entries that were refused."""

    numbers: list[str]
    invalid: list[str]


def split_numbers(numbers: str | int | Iterable[object] | None) -> list[str]:
    """Entries of a comma-separated string or a list, stripped, empty entries dropped."""
    if numbers is None:
        return []
    if isinstance(numbers, (list, tuple)):
        items: Iterable[object] = numbers
    else:  # a string, or a lone value some client sent as a JSON number
        items = str(numbers).split(",")
    out = []
    for item in items:
        text = (item if isinstance(item, str) else str(item)).strip(_BLANKS)
        if text:
            out.append(text)
    return out


@functools.lru_cache(maxsize=65_536)
def to_e164(raw: str, region: str) -> str | None:
    """E.164 of ``raw`` when it is a valid mobile number for delivery, else None."""
    if len(raw) > MAX_RAW_LENGTH or control_problem("", raw) is not None:
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


def hints(numbers: str | Iterable[object] | None, invalid: list[str], region: str) -> str | None:
    """What to do about the refused entries, when we can tell more than "not a mobile number".

    Two cases: an entry holding a control character, and an entry that is valid with a leading
    ``+`` and came after a blank, which is what a ``+`` becomes in a form body or query string
    sent without percent-encoding (``numbers=+447911123456`` arrives as ``" 447911123456"``)."""
    bad = set(invalid)
    found: list[str] = []
    for entry, blank_before in _entries(numbers):
        if entry not in bad or len(found) == MAX_HINTS:
            continue
        problem = control_problem(f"numbers entry {entry!r}", entry)
        if problem is not None:
            found.append(problem)
        elif blank_before and to_e164("+" + entry, region) is not None:
            found.append(
                f"{entry} would be valid as +{entry}: a bare + in a query string or form body "
                "means a space, so send it as %2B."
            )
        bad.discard(entry)
    return " ".join(found) or None


def _entries(numbers: str | Iterable[object] | None) -> Iterable[tuple[str, bool]]:
    """Each text entry, stripped, with whether blanks came before it in the value as sent."""
    if numbers is None:
        return
    items = numbers if isinstance(numbers, (list, tuple)) else [numbers]
    for item in items:
        if isinstance(item, str):
            for piece in item.split(","):
                entry = piece.strip(_BLANKS)
                if entry:
                    yield entry, piece[:1] == " "
