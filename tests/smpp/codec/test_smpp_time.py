"""SMPP 3.4 §7.1.1 absolute and relative times: what the bridge writes as validity_period."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smpp.codec.smpp_time import (
    MAX_RELATIVE_SECONDS,
    absolute_time,
    parse_absolute_time,
    parse_relative_time,
    relative_time,
    time_end,
)

PROFILE = settings(max_examples=300, deadline=None)


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


def test_relative_time_is_normalised_days_hours_minutes_seconds():
    # YY MM (always 00) | DD hh mm ss | 000R (tenths and offset unused, R: relative)
    assert relative_time(86_400 + 2 * 3600 + 30 * 60) == "000001023000000R"
    assert relative_time(59.99) == "000000000059000R"  # rounded down: never past the deadline
    assert relative_time(7 * 60) == "000000000700000R"
    assert len(relative_time(5)) == 16


@pytest.mark.parametrize("seconds", [0, -5, 0.4, float("-inf"), float("nan")])
def test_a_passed_or_sub_second_deadline_is_the_smallest_positive_duration(seconds):
    assert relative_time(seconds) == "000000000001000R"


@pytest.mark.parametrize("seconds", [MAX_RELATIVE_SECONDS, 100 * 86_400, 10**12, float("inf")])
def test_relative_time_is_capped_at_99_days(seconds):
    assert relative_time(seconds) == "000099235959000R"


def test_parse_relative_reads_unnormalised_fields_and_years_and_months():
    assert parse_relative_time("000000720000000R") == timedelta(hours=72)
    assert parse_relative_time("010203000000000R") == timedelta(days=365 + 2 * 30 + 3)
    for bad in ("", "300317174800000+", "000000000100001R", "00000000010000R", "0000000001000 0R"):
        with pytest.raises(ValueError):
            parse_relative_time(bad)


@PROFILE
@given(st.integers(min_value=1, max_value=MAX_RELATIVE_SECONDS))
def test_relative_round_trip(seconds):
    text = relative_time(seconds)
    assert parse_relative_time(text) == timedelta(seconds=seconds)
    assert relative_time(parse_relative_time(text).total_seconds()) == text


@PROFILE
@given(st.floats(min_value=-1e15, max_value=1e15, allow_nan=False))
def test_relative_time_of_any_float_parses_within_bounds(seconds):
    got = parse_relative_time(relative_time(seconds)).total_seconds()
    assert 1 <= got <= MAX_RELATIVE_SECONDS
    assert got <= max(seconds, 1)  # never longer than asked (but the 1 s floor)


@PROFILE
@given(st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2099, 12, 31)))
def test_absolute_round_trip_to_tenths(moment):
    moment = moment.replace(tzinfo=UTC)
    tenths = moment.replace(microsecond=moment.microsecond // 100_000 * 100_000)
    assert parse_absolute_time(absolute_time(moment)) == tenths


def test_time_end_reads_both_forms_from_the_receipt_moment():
    received = datetime(2030, 3, 17, 17, 0, tzinfo=UTC)
    assert time_end("", received) is None
    assert time_end("000000004800000R", received) == received + timedelta(minutes=48)
    assert time_end("300317174800000+", received) == datetime(2030, 3, 17, 17, 48, tzinfo=UTC)
    with pytest.raises(ValueError):
        time_end("soon", received)
