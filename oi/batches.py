"""Parsing and validation of open-interest snapshot batches (design §4.4). Pure: no I/O.

A batch is all-or-nothing: the first bad row stops parsing with an `InvalidInput` that names the
row index, the field and the reason.

Bodies are taken exactly as the VolSpike scripts send them (issue 13): no `source` means
`snapshot`; `totalSymbols` need not be the row count; a `markPrice` or `openInterestUsd` of 0 means
"price unavailable" and is stored as unknown (NULL). Unknown fields are not refused (upstream
drops them): they are collected in `ignored_fields` for the answer, so a typo is visible.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from common.errors import InvalidInput
from common.formatting import iso_z
from common.parsing import (
    MAX_DECIMAL,
    ignored_field_names,
    kind_of,
    parse_decimal,
    parse_timestamp,
)
from common.symbols import symbol_problem

KNOWN_SOURCES = ("snapshot", "realtime")
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
            "openInterest": str(self.open_interest),
            "openInterestUsd": _text(self.open_interest_usd),
            "markPrice": _text(self.mark_price),
            "source": self.source,
            "timestamp": iso_z(self.ts),
        }


def _text(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


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


def parse_snapshot_batch(payload: object, *, now: datetime, max_rows: int) -> SnapshotBatch:
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
    batch_source = payload.get("source", "snapshot")
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
