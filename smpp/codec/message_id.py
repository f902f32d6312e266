"""SMSC message-id normalisation, so a receipt finds the submit it belongs to.

Many SMSCs return the id in submit_sm_resp in one form and quote it in the receipt in another:
hex in the response ("1A2B3C") and decimal in the receipt ("1715004"), or with leading zeros,
or in another case. Two tools:

* canonical_id(id, form) when the connection's forms are known (configuration says "this SMSC's
  responses are hex, its receipts decimal"): each side maps to one key deterministically.
* id_forms(id) when they are not: every spelling the id could have on the other side; a receipt
  matches a submit when their sets intersect.

The ambiguity id_forms lives with: an all-digit id is also valid hex, so "10" means ten or
sixteen, and the forms of two *different* ids can intersect ("10" and "16" share "16"). Match
within one connection and a recent window, prefer an exact match, and configure the form when
an SMSC is known; canonical_id has no such ambiguity.
"""

from __future__ import annotations

_HEX = frozenset("0123456789abcdef")
_DEC = frozenset("0123456789")
#: Longest id converted between bases (longer ids are compared only as strings): stays far
#: below Python's int/str conversion limit, and no SMSC id is anywhere near this long.
_MAX_NUMERIC_LEN = 64

#: The forms canonical_id accepts.
ID_FORMS = ("str", "dec", "hex")


def clean_id(message_id: str) -> str:
    """The id without NULs (C-octet strings) and surrounding whitespace."""
    return message_id.replace("\x00", "").strip()


def id_forms(message_id: str) -> frozenset[str]:
    """Every canonical spelling `message_id` could have in the other message.

    The lower-cased id without leading zeros, plus str(int(id, 16)) when it is valid hex, plus
    format(int(id), "x") when it is all decimal. An empty id has no forms (matches nothing).
    """
    text = clean_id(message_id).lower()
    if not text:
        return frozenset()
    forms = {text.lstrip("0") or "0"}
    if len(text) <= _MAX_NUMERIC_LEN and _HEX.issuperset(text):
        forms.add(str(int(text, 16)))
        if _DEC.issuperset(text):
            forms.add(format(int(text), "x"))
    return frozenset(forms)


def canonical_id(message_id: str, form: str) -> str:
    """One key for `message_id` given the form the SMSC is known to use for it.

    "dec": a decimal number, keyed as str(int(id)); "hex": a hex number, keyed as its decimal
    str(int(id, 16)); "str": an opaque string, keyed lower-cased as is. So a hex response and a
    decimal receipt of the same message get the same key. An id that is not valid in the
    declared form falls back to "str" (it will simply not match, rather than fail the PDU).
    Raises ValueError for an unknown form: that is a configuration mistake.
    """
    if form not in ID_FORMS:
        raise ValueError(f"unknown message id form {form!r}; use one of {ID_FORMS}")
    text = clean_id(message_id).lower()
    if text and len(text) <= _MAX_NUMERIC_LEN:
        if form == "dec" and _DEC.issuperset(text):
            return str(int(text))
        if form == "hex" and _HEX.issuperset(text):
            return str(int(text, 16))
    return text


#: How an SMSC may rewrite a submit_sm_resp id in its receipts; form "auto" learns which one
#: a connection's SMSC uses ("same": no rewriting, only case and leading zeros).
CONVERSIONS = ("hex2dec", "dec2hex")


def exact_spelling(message_id: str) -> str:
    """The id lower-cased without leading zeros ("" for an empty id): its own spelling."""
    text = clean_id(message_id).lower()
    return (text.lstrip("0") or "0") if text else ""


def converted_spellings(message_id: str) -> dict[str, str]:
    """What a resp id becomes in a receipt under each conversion that applies to it.

    "hex2dec": the id read as hex, written in decimal (only for an all-hex id);
    "dec2hex": the id read as decimal, written in lower-case hex (only for an all-digit id).
    """
    text = exact_spelling(message_id)
    if not text or len(text) > _MAX_NUMERIC_LEN or not _HEX.issuperset(text):
        return {}
    forms = {"hex2dec": str(int(text, 16))}
    if _DEC.issuperset(text):
        forms["dec2hex"] = format(int(text), "x")
    return forms


def unconverted(spelling: str, conversion: str) -> str | None:
    """The resp id (its exact spelling) that a receipt's exact spelling names under a
    conversion; None when the receipt's id cannot be the output of that conversion."""
    if not spelling or len(spelling) > _MAX_NUMERIC_LEN:
        return None
    if conversion == "hex2dec":
        return format(int(spelling), "x") if _DEC.issuperset(spelling) else None
    if conversion == "dec2hex":
        return str(int(spelling, 16)) if _HEX.issuperset(spelling) else None
    raise ValueError(f"unknown conversion {conversion!r}; use one of {CONVERSIONS}")


def is_numeric_only(spelling: str) -> bool:
    """True for an all-digit spelling: it reads as decimal and as hex alike (ambiguous)."""
    return _DEC.issuperset(spelling)
