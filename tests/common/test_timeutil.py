from datetime import UTC, datetime

from common.timeutil import datetime_from_ms, ms_from_datetime


def test_ms_and_datetimes_convert_both_ways_exactly():
    moment = datetime(2024, 12, 1, 12, 34, 56, 123000, tzinfo=UTC)
    ms = ms_from_datetime(moment)
    assert ms == 1733056496123
    assert datetime_from_ms(ms) == moment
    for value in (0, 1, 999, 1_700_000_000_001, 4_102_444_800_000):
        assert ms_from_datetime(datetime_from_ms(value)) == value


def test_sub_millisecond_parts_are_dropped_towards_the_past():
    assert ms_from_datetime(datetime(2024, 1, 1, 0, 0, 0, 999, tzinfo=UTC)) == 1704067200000
    assert ms_from_datetime(datetime(1969, 12, 31, 23, 59, 59, 999500, tzinfo=UTC)) == -1
