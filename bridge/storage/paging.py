"""Keyset pagination shared by every listing (messages, inbox): newest first on
``(created_at, id)`` with an opaque cursor, ``base64url("1.<created_at µs>.<id>")``, version first.
A cursor we did not make is a 400 naming ``cursor``."""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from bridge.errors import InvalidInput

CURSOR_VERSION = "1"
BAD_CURSOR = (
    "cursor is not one this API gave out; pass the next_cursor of the previous answer "
    "unchanged, or leave cursor out to start from the newest message."
)
DEFAULT_LIMIT = 100  # messages per page when the caller does not say
MAX_LIMIT = 1000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MAX_MICROS = 253402300799999999  # 9999-12-31T23:59:59.999999Z
_CURSOR_TEXT = re.compile(r"[A-Za-z0-9_-]{1,120}")
_ULID = re.compile(r"[0-9A-HJKMNP-TV-Z]{26}")


@dataclass(frozen=True)
class Key:
    """A message's place in the newest-first order."""

    created_at: datetime
    message_id: str


def encode_cursor(key: Key) -> str:
    micros = (key.created_at - _EPOCH) // timedelta(microseconds=1)
    raw = f"{CURSOR_VERSION}.{micros}.{key.message_id}".encode("ascii")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def decode_cursor(cursor: str) -> Key:
    """The key a cursor names; InvalidInput naming ``cursor`` for anything we did not make."""
    if not _CURSOR_TEXT.fullmatch(cursor):
        raise InvalidInput(BAD_CURSOR, field="cursor")
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise InvalidInput(BAD_CURSOR, field="cursor") from None
    version, _, rest = raw.partition(".")
    micros, _, message_id = rest.partition(".")
    if (
        version != CURSOR_VERSION
        or not micros.isdigit()
        or not micros.isascii()
        or len(micros) > 18
        or int(micros) > _MAX_MICROS
        or not _ULID.fullmatch(message_id)
    ):
        raise InvalidInput(BAD_CURSOR, field="cursor")
    return Key(_EPOCH + timedelta(microseconds=int(micros)), message_id)
