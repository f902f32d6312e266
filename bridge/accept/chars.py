"""Which characters a request's text may hold: one rule for every parameter, in one place.

Control characters (C0 U+0000-U+001F, DEL U+007F, C1 U+0080-U+009F) are refused in every
parameter, except TAB, LF and CR in the message text: line breaks are real SMS content (GSM 03.38
has LF and CR) and a pasted TAB is sent as is (it makes the message UCS-2). Form feed, which
GSM 03.38 calls a page break, is refused too: handsets show it inconsistently and it is almost
always copy-paste debris. Lone surrogates (U+D800-U+DFFF, possible only as JSON ``\\ud800``
escapes) are not characters at all and are refused before any parameter is read.
"""

from __future__ import annotations

import re

_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")
_MESSAGE_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")  # all but TAB, LF, CR
_SURROGATE = re.compile("[\ud800-\udfff]")


def codepoint(char: str) -> str:
    """``U+0000`` notation of one character."""
    return f"U+{ord(char):04X}"


def control_problem(name: str, value: str, *, message_text: bool = False) -> str | None:
    """The sentence refusing ``value`` of parameter ``name`` for a control character, or None.

    ``message_text`` allows TAB, LF and CR (the SMS text itself)."""
    found = (_MESSAGE_CONTROL if message_text else _CONTROL).search(value)
    if found is None:
        return None
    allowed = " (TAB, LF and CR are allowed)" if message_text else ""
    return (
        f"{name} contains a control character ({codepoint(found.group())}) at position "
        f"{found.start() + 1}; remove it{allowed}."
    )


def surrogate_problem(name: str, value: str) -> str | None:
    """The sentence refusing a text that holds a lone surrogate, or None."""
    found = _SURROGATE.search(value)
    if found is None:
        return None
    return (
        f"{name} contains {codepoint(found.group())}, a lone surrogate, which is not a "
        "character; send valid Unicode (in JSON a \\uD800-\\uDBFF escape must be followed by its "
        "\\uDC00-\\uDFFF pair)."
    )
