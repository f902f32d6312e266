"""SMPP 3.4 time fields (§7.1.1): schedule_delivery_time and validity_period. Pure.

The absolute form is ``YYMMDDhhmmsstnnp``: year to second, ``t`` tenths of a second, ``nn`` the
offset from UTC in quarter hours and ``p`` its sign (``+`` ahead of UTC, ``-`` behind). The
bridge writes UTC (``nn = 00``, ``p = +``): the moment is then the same at any SMSC, whatever its
own time zone, as long as the SMSC reads the offset right.

The relative form (§7.1.1.2) is ``YYMMDDhhmmss000R``: a duration counted from when the SMSC
receives the message, for SMSCs that misread absolute times. The bridge writes it normalised
(``YY = MM = 00``, days up to 99) from the time left at the moment the submit_sm is built, so the
time spent in the bridge's queue does not stretch the validity. The spec gives no length to a
relative year or month; :func:`parse_relative_time` counts 365 and 30 days.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime, timedelta

_ABSOLUTE = re.compile(r"(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(\d)(\d{2})([+-])")
_RELATIVE = re.compile(r"(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})000R")

MAX_RELATIVE_SECONDS = 99 * 86_400 + 86_399  # 99d23h59m59s: the largest normalised duration
_YEAR_DAYS, _MONTH_DAYS = 365, 30  # a relative year and month, as parse_relative_time reads them


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


def relative_time(seconds: float) -> str:
    """The 16-character relative form of a duration, e.g. ``000001023000000R`` for 1 day
    2 h 30 min. Whole seconds, rounded down (never later than the deadline it came from);
    at least 1 s (a deadline already passed: the SMSC lets it go at once, as it would a past
    absolute time; "0" could read as "the SMSC's default validity") and at most
    MAX_RELATIVE_SECONDS."""
    if not seconds >= 1:  # passed, under a second, or NaN
        whole = 1
    elif seconds >= MAX_RELATIVE_SECONDS:
        whole = MAX_RELATIVE_SECONDS
    else:
        whole = math.floor(seconds)
    days, rest = divmod(whole, 86_400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    return f"0000{days:02d}{hours:02d}{minutes:02d}{secs:02d}000R"


def parse_relative_time(value: str) -> timedelta:
    """The duration of a relative SMPP time (fields need not be normalised: ``hh`` may pass
    23); a year counts 365 days, a month 30. ValueError when it is not one."""
    m = _RELATIVE.fullmatch(value)
    if m is None:
        raise ValueError(f"not a relative SMPP time: {value!r}")
    yy, mo, dd, hh, mi, ss = (int(g) for g in m.groups())
    return timedelta(days=yy * _YEAR_DAYS + mo * _MONTH_DAYS + dd, hours=hh, minutes=mi, seconds=ss)


def time_end(value: str, received: datetime) -> datetime | None:
    """When an SMPP time field ends for a PDU received at ``received`` (aware): the moment of
    an absolute time, ``received`` plus a relative one, None for "" (the SMSC's default).
    ValueError when the field is neither form."""
    if not value:
        return None
    if value.endswith("R"):
        return received + parse_relative_time(value)
    return parse_absolute_time(value)
