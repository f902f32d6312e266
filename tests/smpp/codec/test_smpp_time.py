"""SMPP 3.4 §7.1.1 absolute times: what the bridge writes as validity_period."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from smpp.codec.smpp_time import absolute_time, parse_absolute_time


def test_absolute_time_is_utc_with_tenths_and_a_zero_offset():
    moment = datetime(2030, 3, 17, 17, 48, 5, 730_000, tzinfo=UTC)
    # YY MM DD hh mm ss | t (tenths) | nn (quarter hours from UTC) | p (+: ahead of UTC)
    assert absolute_time(moment) == "300317174805700+"
    assert absolute_time(moment.timestamp()) == "300317174805700+"
    # another zone, same moment, same field
    assert absolute_time(moment.astimezone(timezone(timedelta(hours=3)))) == "300317174805700+"
    assert len(absolute_time(moment)) == 16  # the field is C-Octet String of 17 with its NUL


def test_parse_reads_any_offset():
    assert parse_absolute_time("300317204800012+") == datetime(2030, 3, 17, 17, 48, tzinfo=UTC)
    assert parse_absolute_time("300317144800008-") == datetime(2030, 3, 17, 16, 48, tzinfo=UTC)
    for bad in ("", "000000000000000R", "3003171748000+", "300317174800000 "):
        with pytest.raises(ValueError):
            parse_absolute_time(bad)
