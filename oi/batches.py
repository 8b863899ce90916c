"""Parsing and validation of open-interest snapshot batches (design §4.4). Pure: no I/O.

A batch is all-or-nothing: the first bad row stops parsing with an `InvalidInput` that names the
row index, the field and the reason.

Bodies are taken exactly as the VolSpike scripts send them (issue 13): no `source` means
`snapshot`; `totalSymbols` need not be the row count; a `markPrice` or `openInterestUsd` of 0 means
"price unavailable" and is stored as unknown (NULL). Unknown fields are not refused (upstream
drops them): they are collected in `ignored_fields` for the answer, so a typo is visible.

One rule set for every way a sample comes in: the ingest API's rows and the poller's exchange
answers both pass `sample_values_checked` (non-negative, finite, fits numeric(30, 12), OI × price
fits too, not before 2015, not more than a small skew ahead of the clock), and come out
normalised to what Postgres stores (12 decimal places, no -0, no exponent), so the ring buffers
and Postgres hold the same values.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Context, Decimal

from common.errors import InvalidInput
from common.formatting import iso_z
from common.parsing import (
    EARLIEST_TIMESTAMP,
    MAX_DECIMAL,
    ignored_field_names,
    kind_of,
    parse_decimal,
    parse_timestamp,
)
from common.symbols import symbol_problem
from oi.models import SnapshotSource

KNOWN_SOURCES = tuple(SnapshotSource.values)
# numeric(30, 12) of oi.models: values are rounded to this many places, as Postgres rounds them.
STORED_PLACES = Decimal("1e-12")
# A sample may be dated at most this far ahead of the receiving clock (clocks drift a little; a
# sample from the future would silence its symbol's alerts until that time comes).
DEFAULT_MAX_AHEAD = timedelta(seconds=10)
_WIDE = Context(prec=60, rounding=ROUND_HALF_UP)
ROW_FIELDS = frozenset(
    {"symbol", "openInterest", "openInterestUsd", "markPrice", "source", "timestamp"}
)
BATCH_FIELDS = frozenset({"data", "timestamp", "totalSymbols", "source"})


@dataclass(frozen=True, slots=True)
class SnapshotRow:
    symbol: str
    ts: datetime
    open_interest: Decimal
    open_interest_usd: Decimal | None
    mark_price: Decimal | None
    source: str

    def as_json(self) -> dict:
        """The row as the ingest API takes it and the live feed sends it (design §4.4)."""
        return {
            "symbol": self.symbol,
            "openInterest": format(self.open_interest, "f"),
            "openInterestUsd": _text(self.open_interest_usd),
            "markPrice": _text(self.mark_price),
            "source": self.source,
            "timestamp": iso_z(self.ts),
        }

    @classmethod
    def from_json(cls, data: Mapping) -> "SnapshotRow":
        """A row this project wrote with `as_json` (checked already: not checked again)."""
        return cls(
            symbol=data["symbol"],
            ts=datetime.fromisoformat(data["timestamp"]),
            open_interest=Decimal(data["openInterest"]),
            open_interest_usd=_decimal_or_none(data["openInterestUsd"]),
            mark_price=_decimal_or_none(data["markPrice"]),
            source=data["source"],
        )


def _text(value: Decimal | None) -> str | None:
    return None if value is None else format(value, "f")


def _decimal_or_none(text: str | None) -> Decimal | None:
    return None if text is None else Decimal(text)


@dataclass(frozen=True, slots=True)
class SnapshotBatch:
    rows: list[SnapshotRow]
    total_symbols: int | None
    # Unknown keys, not stored: "name" on the batch, "data[].name" on rows.
    ignored_fields: tuple[str, ...] = ()

    @property
    def is_partial(self) -> bool:
        """The sender said the universe had more symbols than this batch carries."""
        return self.total_symbols is not None and self.total_symbols > len(
            {row.symbol for row in self.rows}
        )


def parse_snapshot_batch(
    payload: object, *, now: datetime, max_rows: int, max_ahead: timedelta = DEFAULT_MAX_AHEAD
) -> SnapshotBatch:
    """Validate a whole batch; return its rows or raise `InvalidInput` for the first bad row."""
    if not isinstance(payload, Mapping):
        raise InvalidInput(field="body", reason=f"must be a JSON object, got {kind_of(payload)}")
    ignored = set(payload) - BATCH_FIELDS
    data = payload.get("data")
    if not isinstance(data, list):
        raise InvalidInput(field="data", reason=f"must be a list of rows, got {kind_of(data)}")
    if not data:
        raise InvalidInput(field="data", reason="must hold at least one row")
    if len(data) > max_rows:
        raise InvalidInput(field="data", reason=f"has {len(data)} rows; at most {max_rows}")

    batch_ts = None
    if payload.get("timestamp") is not None:
        batch_ts = parse_timestamp(payload["timestamp"], field="timestamp", row=None, now=now)
    batch_source = payload.get("source", SnapshotSource.SNAPSHOT)
    if batch_source not in KNOWN_SOURCES:
        raise InvalidInput(field="source", reason=f"must be one of {', '.join(KNOWN_SOURCES)}")
    total_symbols = payload.get("totalSymbols")
    if total_symbols is not None and (
        isinstance(total_symbols, bool) or not isinstance(total_symbols, int) or total_symbols < 0
    ):
        raise InvalidInput(field="totalSymbols", reason="must be a non-negative integer")

    rows: list[SnapshotRow] = []
    first_index_of_key: dict[tuple[str, datetime, str], int] = {}
    for index, item in enumerate(data):
        row = _parse_row(item, index=index, batch_ts=batch_ts, batch_source=batch_source, now=now)
        row = sample_values_checked(row, now=now, max_ahead=max_ahead, row_index=index)
        key = (row.symbol, row.ts, row.source)
        earlier = first_index_of_key.setdefault(key, index)
        if earlier != index:
            raise InvalidInput(
                field="symbol",
                row=index,
                reason=f"repeats row {earlier} (same symbol, timestamp and source)",
            )
        rows.append(row)
        if isinstance(item, Mapping) and not ROW_FIELDS.issuperset(item):
            ignored.update(f"data[].{name}" for name in set(item) - ROW_FIELDS)
    return SnapshotBatch(
        rows=rows, total_symbols=total_symbols, ignored_fields=tuple(ignored_field_names(ignored))
    )


def _parse_row(
    item: object, *, index: int, batch_ts: datetime | None, batch_source: str, now: datetime
) -> SnapshotRow:
    if not isinstance(item, Mapping):
        raise InvalidInput(
            field="data", row=index, reason=f"must be an object, got {kind_of(item)}"
        )
    symbol = item.get("symbol")
    problem = symbol_problem(symbol)
    if problem:
        raise InvalidInput(field="symbol", row=index, reason=problem)

    if "openInterest" not in item or item["openInterest"] is None:
        raise InvalidInput(field="openInterest", row=index, reason="is required")
    open_interest = parse_decimal(item["openInterest"], field="openInterest", row=index)
    mark_price = _optional_decimal(item, "markPrice", index)
    open_interest_usd = _optional_decimal(item, "openInterestUsd", index)
    if open_interest_usd is None and mark_price is not None:
        open_interest_usd = open_interest * mark_price
        if open_interest_usd >= MAX_DECIMAL:
            raise InvalidInput(
                field="markPrice", row=index, reason="makes openInterest × markPrice too large"
            )

    source = item.get("source", batch_source)
    if source not in KNOWN_SOURCES:
        raise InvalidInput(
            field="source", row=index, reason=f"must be one of {', '.join(KNOWN_SOURCES)}"
        )

    if item.get("timestamp") is not None:
        ts = parse_timestamp(item["timestamp"], field="timestamp", row=index, now=now)
    elif batch_ts is not None:
        ts = batch_ts
    else:
        raise InvalidInput(
            field="timestamp", row=index, reason="is required (on the row or on the batch)"
        )
    return SnapshotRow(
        symbol=symbol,
        ts=ts,
        open_interest=open_interest,
        open_interest_usd=open_interest_usd,
        mark_price=mark_price,
        source=source,
    )


def _optional_decimal(item: Mapping, field: str, index: int) -> Decimal | None:
    """None when absent, null or 0: the scripts send 0 when the mark price was unavailable, and
    no perpetual trades at a price of 0."""
    value = item.get(field)
    if value is None:
        return None
    number = parse_decimal(value, field=field, row=index)
    return None if number == 0 else number


# --- the one rule set for samples, from the ingest API or from the exchange -----------------------


def stored_decimal(value: Decimal) -> Decimal:
    """`value` as Postgres stores it in numeric(30, 12): rounded half away from zero to 12
    places, trailing zeros and -0 dropped, never an exponent in its text (1E+3 becomes 1000)."""
    rounded = value.quantize(STORED_PLACES, context=_WIDE)
    if rounded.is_zero():
        return Decimal(0)
    if rounded == rounded.to_integral_value():
        return rounded.quantize(Decimal(1), context=_WIDE)
    return rounded.normalize(context=_WIDE)


def amount_checked(value: Decimal | None, *, field: str, row: int | None) -> Decimal | None:
    if value is None:
        return None
    if not value.is_finite():
        raise InvalidInput(field=field, row=row, reason="must be finite")
    if value < 0 and not value.is_zero():
        raise InvalidInput(field=field, row=row, reason="must not be negative")
    if abs(value) >= MAX_DECIMAL:
        raise InvalidInput(field=field, row=row, reason="is too large (at most 18 integer digits)")
    return stored_decimal(value)


def sample_values_checked(
    row: SnapshotRow, *, now: datetime, max_ahead: timedelta, row_index: int | None = None
) -> SnapshotRow:
    """`row` with its values normalised as stored, or `InvalidInput` naming the field that no
    sample may have, whoever sent it (the ingest API's client or the exchange)."""
    open_interest = amount_checked(row.open_interest, field="openInterest", row=row_index)
    mark_price = amount_checked(row.mark_price, field="markPrice", row=row_index)
    open_interest_usd = amount_checked(
        row.open_interest_usd, field="openInterestUsd", row=row_index
    )
    if mark_price is not None and open_interest * mark_price >= MAX_DECIMAL:
        raise InvalidInput(
            field="markPrice", row=row_index, reason="makes openInterest × markPrice too large"
        )
    if row.ts < EARLIEST_TIMESTAMP:
        raise InvalidInput(
            field="timestamp", row=row_index, reason=f"{iso_z(row.ts)} is before 2015"
        )
    if row.ts > now + max_ahead:
        ahead = (row.ts - now).total_seconds()
        raise InvalidInput(
            field="timestamp",
            row=row_index,
            reason=f"{iso_z(row.ts)} is {ahead:.0f}s ahead of the server clock "
            f"(at most {max_ahead.total_seconds():.0f}s)",
        )
    return SnapshotRow(
        symbol=row.symbol,
        ts=row.ts,
        open_interest=open_interest,
        open_interest_usd=open_interest_usd,
        mark_price=mark_price,
        source=row.source,
    )


def exchange_sample_row(
    *,
    symbol: str,
    ts: datetime,
    open_interest: Decimal,
    mark_price: Decimal | None,
    source: str,
    now: datetime,
    max_ahead: timedelta = DEFAULT_MAX_AHEAD,
) -> SnapshotRow:
    """A poller sample as a stored row, through the same rules as an ingested row (raises
    `InvalidInput` naming the field). OI in USD is OI × mark price, as the ingest API derives it."""
    problem = symbol_problem(symbol)
    if problem:
        raise InvalidInput(field="symbol", reason=problem)
    checked = sample_values_checked(
        SnapshotRow(symbol, ts, open_interest, None, mark_price, source),
        now=now,
        max_ahead=max_ahead,
    )
    usd = None
    if checked.mark_price is not None:
        usd = stored_decimal(checked.open_interest * checked.mark_price)
    return SnapshotRow(
        symbol=checked.symbol,
        ts=checked.ts,
        open_interest=checked.open_interest,
        open_interest_usd=usd,
        mark_price=checked.mark_price,
        source=checked.source,
    )
