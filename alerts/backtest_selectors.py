"""Reads for the backtest: stored open-interest samples straight into numpy arrays.

``COPY ... TO STDOUT (FORMAT binary)`` with fixed-width columns only (a NULL price is sent as NaN),
so every row has the same 46 bytes and numpy reads the whole answer as one structured array: no
per-row Python. Times are epoch ms computed by Postgres (``floor(epoch × 1000)``, the sub-ms part
dropped as ``common.timeutil.ms_from_datetime`` does); numerics become float8 in Postgres, the
same double as Python's ``float(Decimal)`` of the stored value.

Only the poller's rows (source ``realtime``) are replayed: the hourly script's full-universe
snapshots (source ``snapshot``) are another sampling of the same symbols and the live engine never
mixes them with its ring; the ring's backfilled 5-minute history is never written to Postgres.
"""

import itertools
import json
from collections.abc import Iterator, Sequence
from datetime import datetime

import numpy as np
from django.db import connection
from django.db.models import Max, Min
from psycopg import sql

from alerts.backtest import Series
from common.redis import get_redis
from oi.models import OpenInterestSnapshot, SnapshotSource

BACKTEST_JOB_KEY = "oi:backtest:job:{}"
_HEADER_BYTES = 19  # PGCOPY signature (11), flags (4), header extension length (4)
_TRAILER_BYTES = 2
_ROW = np.dtype(
    [
        ("fields", ">i2"),
        ("len_symbol", ">i4"), ("symbol", ">i4"),
        ("len_ts", ">i4"), ("ts_us", ">i8"),
        ("len_oi", ">i4"), ("oi", ">f8"),
        ("len_price", ">i4"), ("price", ">f8"),
    ]
)  # fmt: skip
# A binary timestamptz is microseconds since 2000-01-01T00:00Z.
_PG_EPOCH_MS = 946_684_800_000

# No ORDER BY: the rows are read in their physical order (the poller writes them in time order,
# all symbols of a poll together), which reads each heap page once; one symbol's rows in ts order
# would read one page per row. Symbols become their position in the list (a hash join), so every
# row has the same width; numpy sorts them by (symbol, time).
_SELECT = sql.SQL(
    "COPY (SELECT k.position::int4, s.ts, s.open_interest::float8, "
    "coalesce(s.mark_price::float8, 'NaN'::float8) "
    "FROM open_interest_snapshots s "
    "JOIN unnest({symbols}::text[]) WITH ORDINALITY AS k(symbol, position) ON k.symbol = s.symbol "
    "WHERE s.source = {source} AND s.ts >= {since} AND s.ts <= {until}) TO STDOUT (FORMAT binary)"
)


def snapshot_series(
    symbols: Sequence[str], *, since: datetime, until: datetime
) -> dict[str, Series]:
    """The realtime samples of ``symbols`` with ``since <= ts <= until``, per symbol in time
    order (one query; a symbol without samples is left out)."""
    if not symbols:
        return {}
    statement = _SELECT.format(
        symbols=sql.Literal(list(symbols)),
        source=sql.Literal(SnapshotSource.REALTIME.value),
        since=sql.Literal(since),
        until=sql.Literal(until),
    )
    data = bytearray()
    with connection.cursor() as django_cursor:
        cursor = django_cursor.cursor  # psycopg's own: Django's wrapper has no copy()
        with cursor.copy(statement) as copy:
            for chunk in copy:
                data += chunk
    rows = np.frombuffer(data, dtype=_ROW, offset=_HEADER_BYTES, count=_row_count(data))
    series: dict[str, Series] = {}
    if not len(rows):
        return series
    positions = rows["symbol"].astype(np.int32)
    times = rows["ts_us"].astype(np.int64) // 1000 + _PG_EPOCH_MS
    order = np.lexsort((times, positions))
    positions, times = positions[order], times[order]
    values = rows["oi"].astype(np.float64)[order]
    prices = rows["price"].astype(np.float64)[order]
    bounds = [0, *(np.flatnonzero(np.diff(positions)) + 1).tolist(), len(positions)]
    for lo, hi in itertools.pairwise(bounds):
        symbol = symbols[int(positions[lo]) - 1]
        series[symbol] = Series(symbol, times[lo:hi], values[lo:hi], prices[lo:hi])
    return series


def _row_count(data: bytes) -> int:
    body = len(data) - _HEADER_BYTES - _TRAILER_BYTES
    if body < 0 or body % _ROW.itemsize:
        raise ValueError(f"unexpected COPY answer of {len(data)} bytes")
    return body // _ROW.itemsize


def snapshot_batches(
    symbols: Sequence[str], *, since: datetime, until: datetime, batch: int
) -> Iterator[tuple[list[str], dict[str, Series]]]:
    """``snapshot_series`` in batches of ``batch`` symbols (memory follows the batch)."""
    for start in range(0, len(symbols), batch):
        chunk = list(symbols[start : start + batch])
        yield chunk, snapshot_series(chunk, since=since, until=until)


def stored_symbols(symbols: Sequence[str]) -> set[str]:
    """Those of ``symbols`` with at least one realtime sample stored."""
    return set(
        OpenInterestSnapshot.objects.filter(
            symbol__in=list(symbols), source=SnapshotSource.REALTIME
        )
        .values_list("symbol", flat=True)
        .distinct()
    )


def stored_span(
    symbols: Sequence[str] | None, *, since: datetime, until: datetime
) -> tuple[datetime | None, datetime | None]:
    """The first and last realtime sample time of ``symbols`` (all when None) in the range."""
    rows = OpenInterestSnapshot.objects.filter(
        source=SnapshotSource.REALTIME, ts__gte=since, ts__lte=until
    )
    if symbols is not None:
        rows = rows.filter(symbol__in=list(symbols))
    span = rows.aggregate(first=Min("ts"), last=Max("ts"))
    return span["first"], span["last"]


def realtime_symbols_in(*, since: datetime, until: datetime) -> list[str]:
    """Every symbol with realtime samples in the range, sorted."""
    return sorted(
        OpenInterestSnapshot.objects.filter(
            source=SnapshotSource.REALTIME, ts__gte=since, ts__lte=until
        )
        .values_list("symbol", flat=True)
        .distinct()
    )


def backtest_job_get(job_id: str) -> dict | None:
    """A job's state, progress and (once done) result; None when unknown or expired."""
    raw = get_redis().hgetall(BACKTEST_JOB_KEY.format(job_id))
    if not raw:
        return None
    job = {
        "job": job_id,
        "state": raw.get("state"),
        "done": int(raw.get("done", 0)),
        "total": int(raw.get("total", 0)),
    }
    if "result" in raw:
        job["result"] = json.loads(raw["result"])
    if "error" in raw:
        job["error"] = raw["error"]
    return job
