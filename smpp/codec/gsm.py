"""GSM 03.38 (3GPP TS 23.038) default alphabet and its extension table, unpacked.

SMPP carries data_coding 0 text as *unpacked* septets: one septet per octet, values 0x00-0x7F.
Characters of the extension table are sent as two septets, ESC (0x1B) then the code, and so
cost two septets of a message's 160. Pure functions over strings and bytes; no state.
"""

from __future__ import annotations

ESC = 0x1B

# The basic table, indexed by septet value. 0x1B is ESC (not a character); we keep a placeholder
# there so indexes line up, and exclude it from the encode map below.
BASIC_TABLE = (
    "@£$¥èéùìòÇ\nØø\rÅå"
    "Δ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ"
    " !\"#¤%&'()*+,-./"
    "0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNO"
    "PQRSTUVWXYZÄÖÑÜ§"
    "¿abcdefghijklmno"
    "pqrstuvwxyzäöñüà"
)
assert len(BASIC_TABLE) == 128

# The extension table (after ESC): form feed, ^ { } \ [ ~ ] | and the euro sign.
EXTENSION_TABLE = {
    "\f": 0x0A,
    "^": 0x14,
    "{": 0x28,
    "}": 0x29,
    "\\": 0x2F,
    "[": 0x3C,
    "~": 0x3D,
    "]": 0x3E,
    "|": 0x40,
    "€": 0x65,
}

BASIC_ENCODE = {ch: i for i, ch in enumerate(BASIC_TABLE) if i != ESC}
EXTENSION_DECODE = {code: ch for ch, code in EXTENSION_TABLE.items()}
# Octets (read as Latin-1 code points) to text when there is no ESC: the basic table, and
# U+FFFD above 0x7F (decode_gsm)
_DECODE_PLAIN = {i: ch for i, ch in enumerate(BASIC_TABLE) if ch != chr(i)}
_DECODE_PLAIN.update({i: "\ufffd" for i in range(0x80, 0x100)})

#: Characters that cost one septet / two septets; their union is the whole GSM repertoire.
BASIC_CHARS = frozenset(BASIC_ENCODE)
EXTENSION_CHARS = frozenset(EXTENSION_TABLE)
GSM_CHARS = BASIC_CHARS | EXTENSION_CHARS

# Encoding table for str.translate: each character to its septet(s) as a 1- or 2-char string.
_TRANSLATE = {ord(ch): chr(i) for ch, i in BASIC_ENCODE.items()}
_TRANSLATE.update({ord(ch): chr(ESC) + chr(code) for ch, code in EXTENSION_TABLE.items()})


def is_gsm(text: str) -> bool:
    """True when every character of `text` is in the default alphabet or its extension table."""
    return GSM_CHARS.issuperset(text)


def septet_count(text: str) -> int:
    """Septets `text` takes in GSM 03.38 (extension characters count two). Assumes is_gsm."""
    return len(text) + sum(map(text.count, EXTENSION_CHARS))


def char_septets(ch: str) -> int:
    """Septets one GSM character takes: 2 for the extension table (ESC + code), else 1."""
    return 2 if ch in EXTENSION_CHARS else 1


def encode_gsm(text: str) -> bytes:
    """Encode `text` as unpacked GSM septets (0x1B escape for extension characters).

    Raises ValueError naming the first character outside the alphabet: call `segment()` first,
    which chooses UCS-2 for such text.
    """
    if not is_gsm(text):
        bad = next(ch for ch in text if ch not in GSM_CHARS)
        raise ValueError(
            f"character {bad!r} (U+{ord(bad):04X}) is not in the GSM 03.38 alphabet; "
            "encode this text as UCS-2 (segment() picks the encoding for you)"
        )
    return text.translate(_TRANSLATE).encode("latin-1")


def decode_gsm(data: bytes) -> str:
    """Decode unpacked GSM septets to text; never raises.

    As TS 23.038 asks, an ESC followed by a code the extension table does not define shows the
    basic-table character for that code; a trailing ESC or ESC ESC shows a space. Octets above
    0x7F are not septets at all and become U+FFFD.
    """
    if ESC not in data:  # one table lookup per octet, in C (receipts, most MO texts)
        return data.decode("latin-1").translate(_DECODE_PLAIN)
    out: list[str] = []
    escaped = False
    for octet in data:
        if octet > 0x7F:
            out.append("\ufffd")
            escaped = False
        elif escaped:
            escaped = False
            if octet in EXTENSION_DECODE:
                out.append(EXTENSION_DECODE[octet])
            else:
                out.append(" " if octet == ESC else BASIC_TABLE[octet])
        elif octet == ESC:
            escaped = True
        else:
            out.append(BASIC_TABLE[octet])
    if escaped:
        out.append(" ")
    return "".join(out)
