"""SMPP 3.4 time fields (§7.1.1): schedule_delivery_time and validity_period. Pure.

The absolute form is ``YYMMDDhhmmsstnnp``: year to second, ``t`` tenths of a second, ``nn`` the
offset from UTC in quarter hours and ``p`` its sign (``+`` ahead of UTC, ``-`` behind). The
bridge always writes UTC (``nn = 00``, ``p = +``): the moment is then the same at any SMSC,
whatever its own time zone. (The relative form, ``p = R``, would count from when the SMSC gets
the message, so time spent in the bridge's queue would stretch the validity.)
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

_ABSOLUTE = re.compile(r"(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(\d)(\d{2})([+-])")


def absolute_time(moment: datetime | float) -> str:
    """The 16-character absolute UTC form of an aware datetime or epoch seconds, e.g.
    ``300317174800000+`` for 2030-03-17 17:48:00 UTC."""
    when = (
        datetime.fromtimestamp(moment, UTC)
        if isinstance(moment, (int, float))
        else moment.astimezone(UTC)
    )
    return when.strftime("%y%m%d%H%M%S") + f"{when.microsecond // 100_000}00+"


def parse_absolute_time(value: str) -> datetime:
    """The aware UTC datetime of an absolute SMPP time (any offset); ValueError otherwise."""
    m = _ABSOLUTE.fullmatch(value)
    if m is None:
        raise ValueError(f"not an absolute SMPP time: {value!r}")
    yy, mo, dd, hh, mi, ss, tenth, quarters, sign = m.groups()
    local = datetime(
        2000 + int(yy), int(mo), int(dd), int(hh), int(mi), int(ss), int(tenth) * 100_000
    )
    offset = timedelta(minutes=15 * int(quarters)) * (1 if sign == "+" else -1)
    return (local - offset).replace(tzinfo=UTC)
