"""Time-ordered unique ids for messages and batches (ULID layout, Crockford base32, 26 chars).

48 bits of milliseconds since the epoch, then 80 random bits. Ids made by one generator are
strictly increasing: within the same millisecond the random part is incremented instead of
re-drawn, so ``sorted(ids)`` is creation order. The clock and the randomness are injectable so
tests get deterministic ids.
"""

from __future__ import annotations

import base64
import os
import re
import threading
import time
from collections.abc import Callable

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
# base64.b32encode uses the RFC 4648 alphabet; map it onto Crockford's, position for position.
_FROM_RFC4648 = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", _CROCKFORD)
_RANDOM_MAX = (1 << 80) - 1
# What a path's message, batch or inbound id may look like before it is looked up: anything
# else (a NUL byte, which PostgreSQL refuses in text, a 500 before this) is simply not found.
ID_SHAPE = re.compile(r"[0-9A-Za-z]{1,26}")


def _encode_time(ms: int) -> str:
    """10 Crockford characters for a 48-bit millisecond count (top two bits are zero)."""
    chars = []
    for _ in range(10):
        chars.append(_CROCKFORD[ms & 31])
        ms >>= 5
    return "".join(reversed(chars))


def _encode_random(value: int) -> str:
    """16 Crockford characters for an 80-bit integer (80 bits = exactly 16 base32 digits)."""
    return base64.b32encode(value.to_bytes(10, "big")).decode("ascii").translate(_FROM_RFC4648)


def timestamp_ms(identifier: str) -> int:
    """The creation time (ms since the epoch) encoded in an id."""
    ms = 0
    for ch in identifier[:10]:
        ms = (ms << 5) | _CROCKFORD.index(ch)
    return ms


class IdGenerator:
    """Makes ULID-like ids; thread-safe; ``many(n)`` makes a block of n increasing ids cheaply."""

    def __init__(
        self, clock: Callable[[], float] = time.time, randbytes: Callable[[int], bytes] = os.urandom
    ) -> None:
        self._clock = clock
        self._randbytes = randbytes
        self._lock = threading.Lock()
        self._last_ms = -1
        self._last_random = 0

    def _reserve(self, n: int) -> tuple[int, int]:
        """Claim n consecutive random values in one millisecond slot; returns (ms, first)."""
        with self._lock:
            ms = max(int(self._clock() * 1000), self._last_ms)
            if ms == self._last_ms and self._last_random + n <= _RANDOM_MAX:
                first = self._last_random + 1
            else:
                if ms == self._last_ms:  # the random space of this millisecond is spent
                    ms += 1
                # leave headroom so a block never overflows 80 bits
                first = int.from_bytes(self._randbytes(10), "big") >> 1
                if first + n > _RANDOM_MAX:
                    first = _RANDOM_MAX - n
            self._last_ms = ms
            self._last_random = first + n - 1
            return ms, first

    def new(self) -> str:
        """One new id."""
        ms, value = self._reserve(1)
        return _encode_time(ms) + _encode_random(value)

    def many(self, n: int) -> list[str]:
        """n new ids, increasing, sharing one timestamp prefix (used for a batch's messages)."""
        if n <= 0:
            return []
        ms, first = self._reserve(n)
        prefix = _encode_time(ms)
        return [prefix + _encode_random(first + i) for i in range(n)]


default_ids = IdGenerator()
