"""Parsing of untrusted JSON values into domain types. Pure: no I/O."""

import math
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation

from common.errors import InvalidInput
from common.numbers import MAX_DECIMAL

EARLIEST_TIMESTAMP = datetime.fromisoformat("2015-01-01T00:00:00+00:00")
MAX_CLOCK_AHEAD = timedelta(days=1)
# Postgres' numeric keeps at most 16,383 digits after the point and refuses more ("value
# overflows numeric format"); the columns keep 12. More than this many is nobody's real number.
MAX_FRACTION_DIGITS = 1000
# Real time zones are within -12:00 and +14:00; Postgres refuses displacements past 15:59.
MAX_UTC_OFFSET = timedelta(hours=14)


def parse_decimal(
    value: object, *, field: str, row: int | None = None, allow_negative: bool = False
) -> Decimal:
    """A finite decimal (non-negative unless allowed) from a JSON number or a decimal string
    (Binance sends strings)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise InvalidInput(
            field=field,
            row=row,
            reason=f"must be a number or a decimal string, got {kind_of(value)}",
        )
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidInput(field=field, row=row, reason="must be finite")
        value = repr(value)
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        raise InvalidInput(
            field=field, row=row, reason=f"{value!r} is not a decimal number"
        ) from None
    if not number.is_finite():
        raise InvalidInput(field=field, row=row, reason="must be finite")
    if number < 0 and not allow_negative:
        raise InvalidInput(field=field, row=row, reason="must not be negative")
    if abs(number) >= MAX_DECIMAL:
        raise InvalidInput(field=field, row=row, reason="is too large (at most 18 integer digits)")
    if number.as_tuple().exponent < -MAX_FRACTION_DIGITS:
        raise InvalidInput(
            field=field,
            row=row,
            reason=f"has more than {MAX_FRACTION_DIGITS} digits after the decimal point",
        )
    return number


def parse_timestamp(
    value: object, *, field: str, now: datetime, row: int | None = None
) -> datetime:
    """An ISO-8601 timestamp with a zone (e.g. 2025-12-01T12:34:56Z), not far in the future;
    returned in UTC."""
    moment = parse_aware_datetime(value, field=field, row=row)
    if moment < EARLIEST_TIMESTAMP:
        raise InvalidInput(field=field, row=row, reason=f"{value!r} is before 2015")
    if moment > now + MAX_CLOCK_AHEAD:
        raise InvalidInput(field=field, row=row, reason=f"{value!r} is more than a day ahead")
    return moment


def parse_aware_datetime(value: object, *, field: str, row: int | None = None) -> datetime:
    """An ISO-8601 timestamp with a real-world UTC offset, in UTC (Postgres refuses offsets past
    15:59 and Python's datetime overflows near its year limits: both become InvalidInput)."""
    if not isinstance(value, str):
        raise InvalidInput(
            field=field, row=row, reason=f"must be an ISO-8601 string, got {kind_of(value)}"
        )
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidInput(
            field=field, row=row, reason=f"{value[:64]!r} is not an ISO-8601 timestamp"
        ) from None
    offset = moment.utcoffset()
    if offset is None:
        raise InvalidInput(
            field=field, row=row, reason=f"{value!r} has no time zone (add 'Z' or '+00:00')"
        )
    if abs(offset) > MAX_UTC_OFFSET:
        raise InvalidInput(
            field=field,
            row=row,
            reason=f"{value!r} has a UTC offset out of range (at most ±14:00)",
        )
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        raise InvalidInput(field=field, row=row, reason=f"{value!r} is out of range") from None


def kind_of(value: object) -> str:
    return {
        dict: "an object",
        list: "a list",
        str: "a string",
        bool: "a boolean",
        int: "an integer",
        float: "a number",
        type(None): "null",
    }.get(type(value), type(value).__name__)


IGNORED_FIELDS_MAX = 50


def ignored_field_names(keys) -> list[str]:
    """Unknown keys of a body, sorted, as an answer can carry them: at most IGNORED_FIELDS_MAX,
    each cut to 64 characters, lone surrogates and NULs escaped (they cannot be sent as UTF-8)."""
    names = sorted({_printable(str(key))[:64] for key in keys})
    return names[:IGNORED_FIELDS_MAX]


def text_problem(value: str) -> str | None:
    """Why `value` cannot be stored as Postgres text, or None."""
    if "\x00" in value:
        return "must not contain NUL characters"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "must be valid Unicode (it has a lone surrogate)"
    return None


def _printable(text: str) -> str:
    return text.encode("utf-8", "backslashreplace").decode("utf-8").replace("\x00", "\\x00")
