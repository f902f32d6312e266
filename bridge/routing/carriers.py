"""Carrier names from `phonenumbers`' carrier data, for routing by carrier.

The carrier of a number is the one its prefix was allocated to (libphonenumber's data, the same
that ``phonenumbers.carrier.name_for_number(num, "en")`` answers for a valid mobile number; with
number portability a ported number keeps its original carrier's name). The lookup is slowish
(~10 µs with parsing), so `bridge.routing.router` caches decisions by number prefix; the helpers here
say how many leading digits decide the carrier of a number in each country calling code.
"""

from __future__ import annotations

import functools

import phonenumbers
from phonenumbers import carrier as _carrier


def carrier_name(digits: str) -> str:
    """The English carrier name for international digits ("254712345678"), or "" if unknown.

    The number is assumed to be a valid mobile number (the accept path checks that); anything
    that does not parse has no carrier.
    """
    try:
        number = phonenumbers.parse("+" + digits)
    except phonenumbers.NumberParseException:
        return ""
    return _carrier.name_for_valid_number(number, "en")


@functools.cache
def _prefix_lengths() -> dict[str, int]:
    """Country calling code -> length of its longest carrier prefix (calling code included).

    Reads the carrier table once (~30 ms). When the table is not the dict we expect (a future
    phonenumbers), every country gets the library's overall longest prefix: still correct,
    just a less effective cache.
    """
    codes = {str(cc) for cc in phonenumbers.COUNTRY_CODE_TO_REGION_CODE}
    longest: int = _carrier.CARRIER_LONGEST_PREFIX  # type: ignore[attr-defined]  # not in phonenumbers' stubs
    try:
        from phonenumbers.carrierdata import CARRIER_DATA

        keys = list(CARRIER_DATA)
    except (ImportError, TypeError):
        return {cc: longest for cc in codes}
    lengths: dict[str, int] = {}
    for key in keys:
        for size in (1, 2, 3):
            cc = key[:size]
            if cc in codes:
                lengths[cc] = max(lengths.get(cc, 0), len(key))
                break
    return lengths


def deciding_length(digits: str) -> int:
    """How many leading digits of ``digits`` decide its carrier (0: its country has no data).

    Country calling codes are prefix-free, so at most one of the first 1-3 digits is a code.
    """
    lengths = _prefix_lengths()
    for size in (1, 2, 3):
        found = lengths.get(digits[:size])
        if found is not None:
            return found
    return 0
