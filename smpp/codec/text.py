"""Encoding choice, segmentation and decoding of SMS text (pure functions, no I/O).

Public names are re-exported by `smpp.codec`; import them from there.

A text goes out as GSM 03.38 when every character is in the default alphabet or its extension
table, else as UCS-2 (UTF-16-BE on the wire, so characters outside the BMP take two code units).
One SMS carries 140 octets: 160 septets or 70 UTF-16 code units. A concatenated part loses the
octets of its UDH: with the usual 6-octet UDH (8-bit reference) 153 septets / 67 code units
remain, with the 7-octet UDH (16-bit reference) 152 / 66.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from smpp.codec.gsm import EXTENSION_CHARS, decode_gsm, encode_gsm, is_gsm, septet_count

GSM = "gsm"
UCS2 = "ucs2"

#: SMPP data_coding per encoding: 0x00 = SMSC default alphabet (GSM 03.38), 0x08 = UCS-2.
DATA_CODING = {GSM: 0x00, UCS2: 0x08}

SMS_OCTETS = 140
#: UDH lengths in octets: 05 00 03 ref total seq (8-bit ref) and 06 08 04 ref ref total seq.
UDH_LENGTH_8BIT = 6
UDH_LENGTH_16BIT = 7

_ASTRAL = "\U00010000"


@dataclass(frozen=True)
class Segments:
    """How a text goes out: its encoding, the SMPP data_coding, and the text of each part."""

    encoding: str
    data_coding: int
    texts: tuple[str, ...]

    @property
    def parts(self) -> int:
        """Number of SMS the text takes (what is billed)."""
        return len(self.texts)


def capacity(encoding: str, udh_length: int = 0) -> int:
    """Characters (septets or UTF-16 code units) one SMS holds after a UDH of `udh_length` octets.

    The UDH takes whole octets; in GSM it is padded to a septet boundary, so 6 octets (48 bits)
    cost 7 septets and 7 octets cost 8.
    """
    if encoding == GSM:
        return SMS_OCTETS * 8 // 7 - -(-udh_length * 8 // 7)
    return (SMS_OCTETS - udh_length) // 2


# Characters that take two units: extension-table characters in GSM (ESC + code), characters
# outside the BMP in UCS-2 (a surrogate pair).
_DOUBLE_RE = {
    GSM: re.compile("[" + re.escape("".join(sorted(EXTENSION_CHARS))) + "]"),
    UCS2: re.compile("[\U00010000-\U0010ffff]"),
}


def _part_ends(text: str, encoding: str, cap: int) -> list[int]:
    """End index of each part when `text` is cut greedily into parts of at most `cap` units.

    Walks only the two-unit characters (found by a regex, in C), so a long text costs a few
    Python steps per part rather than per character. A two-unit character that would straddle
    the limit starts the next part instead.
    """
    doubles = [m.start() for m in _DOUBLE_RE[encoding].finditer(text)]
    ends: list[int] = []
    pos = j = 0
    n = len(text)
    while True:
        budget = cap
        while j < len(doubles) and doubles[j] - pos + 2 <= budget:
            budget -= doubles[j] - pos + 2
            pos = doubles[j] + 1
            j += 1
        if j < len(doubles):
            pos += min(budget, doubles[j] - pos)
        else:
            pos += budget
        if pos >= n:
            ends.append(n)
            return ends
        ends.append(pos)


def ucs2_units(text: str) -> int:
    """UTF-16 code units `text` takes (characters outside the BMP count two)."""
    if not text or max(text) < _ASTRAL:
        return len(text)
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def choose_encoding(text: str) -> str:
    """GSM when every character is in the GSM 03.38 alphabet (or extension table), else UCS2."""
    return GSM if is_gsm(text) else UCS2


def segment(text: str, *, udh_length: int = UDH_LENGTH_8BIT) -> Segments:
    """Choose the encoding and cut `text` into the parts it will be sent as.

    A text within one SMS (160 septets / 70 code units) is one part; longer texts are cut
    greedily into parts that fit beside a UDH of `udh_length` octets (6: 153 / 67, 7: 152 / 66).
    An extension character (ESC + code) or a surrogate pair is never cut. Empty text: one "".
    Grapheme clusters (flags, ZWJ emoji sequences, combining marks) may be cut between parts;
    handsets join the parts before display, so this only matters to a handset that does not.
    """
    encoding = choose_encoding(text)
    units = septet_count(text) if encoding == GSM else ucs2_units(text)
    if units <= capacity(encoding):
        texts: tuple[str, ...] = (text,)
    else:
        ends = _part_ends(text, encoding, capacity(encoding, udh_length))
        texts = tuple(text[a:b] for a, b in zip([0, *ends], ends, strict=False))
    return Segments(encoding, DATA_CODING[encoding], texts)


def count_parts(text: str, *, udh_length: int = UDH_LENGTH_8BIT) -> tuple[str, int]:
    """(encoding, number of parts) for `text`: the same answer as segment(), computed faster.

    Used on the API hot path: it never builds the part strings, and only when a long text
    holds two-unit characters (extension characters, emoji), which can push a character into
    the next part and so change the count, does it walk them.
    """
    encoding = choose_encoding(text)
    if encoding == GSM:
        units = septet_count(text)
    else:
        units = ucs2_units(text)
    if units <= capacity(encoding):
        return encoding, 1
    cap = capacity(encoding, udh_length)
    if units == len(text):
        return encoding, -(-units // cap)
    return encoding, len(_part_ends(text, encoding, cap))


def encode_ucs2(text: str) -> bytes:
    """UTF-16-BE bytes of `text` (what SMPP data_coding 8 carries; astral chars as pairs)."""
    return text.encode("utf-16-be", "surrogatepass")


def decode_ucs2(data: bytes) -> str:
    """Text from UTF-16-BE bytes; an odd trailing byte or lone surrogate becomes U+FFFD."""
    return data.decode("utf-16-be", "replace")


def encode(text: str, encoding: str) -> bytes:
    """Bytes of `text` in `encoding` (GSM: unpacked septets; UCS2: UTF-16-BE)."""
    if encoding == GSM:
        return encode_gsm(text)
    if encoding == UCS2:
        return encode_ucs2(text)
    raise ValueError(f"unknown encoding {encoding!r}; use {GSM!r} or {UCS2!r}")


# SMPP 3.4 section 5.2.19: data_coding 0x00-0x0E. Values not listed here fall through to the
# GSM 03.38 coding groups (decode_alphabet) or, failing that, to Latin-1.
_SMPP_CODECS = {
    0x01: "ascii",  # IA5 (CCITT T.50) / ASCII
    0x02: "latin-1",  # octet unspecified (8-bit binary): shown byte for byte
    0x03: "latin-1",  # Latin 1 (ISO-8859-1)
    0x04: "latin-1",  # octet unspecified (8-bit binary): shown byte for byte
    0x05: "shift_jis",  # JIS (X 0208-1990)
    0x06: "iso8859-5",  # Cyrillic (ISO-8859-5)
    0x07: "iso8859-8",  # Latin/Hebrew (ISO-8859-8)
    0x0A: "iso2022_jp",  # ISO-2022-JP (Music Codes)
    0x0E: "euc_kr",  # KS C 5601
}


def _coding_group_alphabet(data_coding: int) -> str | None:
    """GSM 03.38 alphabet ("gsm", "8bit", "ucs2") for data_coding's coding group, if defined.

    0x10-0x3F: general data coding (bits 3-2 choose the alphabet; compressed text, bit 5, is
    not decodable and returns None). 0xC0-0xDF: message waiting, GSM; 0xE0-0xEF: message
    waiting, UCS-2; 0xF0-0xFF: data coding / message class (bit 2: 8-bit, else GSM).
    """
    group = data_coding & 0xF0
    if 0x10 <= data_coding <= 0x3F and not data_coding & 0x20:
        return ("gsm", "8bit", "ucs2", None)[(data_coding >> 2) & 0x03]
    if group in (0xC0, 0xD0):
        return "gsm"
    if group == 0xE0:
        return "ucs2"
    if group == 0xF0:
        return "8bit" if data_coding & 0x04 else "gsm"
    return None


def decode(data: bytes, data_coding: int) -> str:
    """Text of a short_message / message_payload given its SMPP data_coding; never raises.

    0: GSM 03.38 unpacked septets; 1: IA5/ASCII; 3: Latin-1; 8: UCS-2 (read as UTF-16-BE so
    surrogate pairs come back as one character); 2 and 4 (binary): one character per byte
    (Latin-1), so nothing is lost; GSM coding groups (0x10-0x3F, 0xC0-0xFF) by their alphabet;
    anything else: Latin-1. Undecodable bytes become U+FFFD.
    """
    data = bytes(data)
    if data_coding == 0x00:
        return decode_gsm(data)
    if data_coding == 0x08:
        return decode_ucs2(data)
    codec = _SMPP_CODECS.get(data_coding)
    if codec is None:
        alphabet = _coding_group_alphabet(data_coding)
        if alphabet == "gsm":
            return decode_gsm(data)
        if alphabet == "ucs2":
            return decode_ucs2(data)
        codec = "latin-1"
    return data.decode(codec, "replace")
