"""Epoch milliseconds and aware UTC datetimes: the one conversion between the two.

Exchange answers, ring members, Redis stamps and frames carry epoch ms; Postgres and the APIs
carry datetimes. Integer arithmetic on a timedelta, so no float rounding at any magnitude.
"""

import time
from datetime import UTC, datetime, timedelta

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_MS = timedelta(milliseconds=1)


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def ms_from_datetime(moment: datetime) -> int:
    """Epoch ms of an aware datetime (sub-millisecond parts dropped, towards the past)."""
    return (moment - EPOCH) // _ONE_MS


def datetime_from_ms(ms: int | float) -> datetime:
    """The aware UTC datetime of epoch ms."""
    return EPOCH + timedelta(milliseconds=ms)
