"""CSV exports streamed out of Postgres by `COPY (SELECT ...) TO STDOUT WITH CSV HEADER`.

A selector (`oi.selectors.snapshot_export`, `alerts.selectors.alert_export`) builds a `CsvExport`:
the SELECT, composed with psycopg's `sql` module, and its parameters. psycopg merges the
parameters of a COPY client-side, each quoted as a literal by its own dumper (Postgres takes no
`$n` parameters in COPY), so nothing a client sends is ever spliced into the SQL as text.

Two readers of the same statement, both with flat memory (nothing holds more than one chunk):
- `csv_chunks`: synchronous, on Django's connection (the management commands);
- `csv_chunks_async`: an async generator on a psycopg AsyncConnection of its own (the APIs).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

import psycopg
from django.db import connection
from psycopg import sql

from common.errors import InvalidInput
from common.parsing import parse_aware_datetime
from common.symbols import symbol_problem
from common.timeutil import datetime_from_ms

# COPY hands over one CSV line per read (~80 bytes); lines are joined into chunks of about this
# size before they are written or sent, so an export is a few thousand sends, not millions.
CHUNK_BYTES = 64 * 1024
# How an export writes a timestamp: ISO-8601 in UTC with microseconds, e.g.
# 2025-12-01T12:34:56.000000Z (whatever the session's time zone).
ISO_UTC_FORMAT = 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'
# `from`/`to` as epoch ms: ASCII digits only (not '-5', not Unicode digits), up to 9999-12-31.
_EPOCH_MS = re.compile(r"[0-9]{1,15}")
_MAX_EPOCH_MS = 253_402_300_799_999
EXPORT_MAX_SYMBOLS = 1000
CSV_CONTENT_TYPE = "text/csv; charset=utf-8"


@dataclass(frozen=True)
class CsvExport:
    """A SELECT to export with COPY, its parameters, and its CSV columns (the header)."""

    select: sql.Composable
    params: Sequence[object]
    columns: tuple[str, ...]
    filename: str

    @property
    def copy_statement(self) -> sql.Composed:
        return sql.SQL("COPY ({}) TO STDOUT WITH (FORMAT csv, HEADER true)").format(self.select)


def iso_utc(column: str) -> sql.Composed:
    """A timestamptz column as the exports write it (see ISO_UTC_FORMAT)."""
    return sql.SQL("to_char({} AT TIME ZONE 'UTC', {})").format(
        sql.Identifier(column), sql.Literal(ISO_UTC_FORMAT)
    )


def plain_numeric(column: str) -> sql.Composed:
    """A numeric column without its padding zeros (85374.562, not 85374.562000000000)."""
    return sql.SQL("trim_scale({})").format(sql.Identifier(column))


def select_list(columns: Sequence[tuple[str, sql.Composable | None]]) -> sql.Composed:
    """`expr AS name, ...`; an expression of None is the column itself."""
    return sql.SQL(", ").join(
        sql.SQL("{} AS {}").format(expression or sql.Identifier(name), sql.Identifier(name))
        for name, expression in columns
    )


def time_range_where(
    *,
    since: datetime,
    until: datetime,
    symbols: Sequence[str] | None,
    source: str | None,
) -> tuple[sql.Composed, list[object]]:
    """`ts >= since AND ts < until [AND symbol = ANY(symbols)] [AND source = source]`."""
    conditions = [sql.SQL("ts >= %s"), sql.SQL("ts < %s")]
    params: list[object] = [since, until]
    if symbols:
        conditions.append(sql.SQL("symbol = ANY(%s)"))
        params.append(list(symbols))
    if source:
        conditions.append(sql.SQL("source = %s"))
        params.append(source)
    return sql.SQL(" AND ").join(conditions), params


# --- parameters ---------------------------------------------------------------------------------


def parse_time_bound(value: object, *, field: str) -> datetime:
    """`from`/`to`: ISO-8601 with a zone, or epoch milliseconds (digits only); in UTC."""
    if isinstance(value, str) and _EPOCH_MS.fullmatch(value):
        ms = int(value)
        if ms > _MAX_EPOCH_MS:
            raise InvalidInput(field=field, reason=f"{value!r} is beyond the year 9999")
        return datetime_from_ms(ms)
    return parse_aware_datetime(value, field=field)


def parse_symbol_list(value: str, *, field: str = "symbols") -> list[str]:
    """A comma-separated list of symbols (blanks ignored), each a Binance symbol name."""
    symbols = list(dict.fromkeys(s.strip() for s in value.split(",") if s.strip()))
    if len(symbols) > EXPORT_MAX_SYMBOLS:
        raise InvalidInput(field=field, reason=f"at most {EXPORT_MAX_SYMBOLS} symbols")
    for symbol in symbols:
        problem = symbol_problem(symbol)
        if problem:
            raise InvalidInput(field=field, reason=f"{symbol[:32]!r} {problem}")
    return symbols


@dataclass(frozen=True)
class ExportFilters:
    since: datetime
    until: datetime
    symbols: list[str] | None
    source: str | None


def parse_export_filters(query: Mapping[str, object], *, sources: Sequence[str]) -> ExportFilters:
    """`from` and `to` (required; from <= ts < to), `symbols` (comma list) and `source` of an
    export, from a query string or the command's options; InvalidInput names the field."""
    bounds = {}
    for field in ("from", "to"):
        value = query.get(field)
        if value is None or value == "":
            raise InvalidInput(field=field, reason="is required (ISO-8601 or epoch ms)")
        bounds[field] = parse_time_bound(value, field=field)
    if bounds["to"] <= bounds["from"]:
        raise InvalidInput(field="to", reason="must be after 'from'")
    symbols = query.get("symbols")
    if symbols is not None and not isinstance(symbols, str):
        raise InvalidInput(field="symbols", reason="must be a comma-separated list of symbols")
    source = query.get("source") or None
    if source is not None and source not in sources:
        raise InvalidInput(
            field="source", reason=f"{str(source)[:32]!r} is not one of {', '.join(sources)}"
        )
    return ExportFilters(
        since=bounds["from"],
        until=bounds["to"],
        symbols=parse_symbol_list(symbols) or None if symbols else None,
        source=source,
    )


# --- readers ------------------------------------------------------------------------------------


def csv_chunks(export: CsvExport) -> Iterator[bytes]:
    """The CSV (header first) in chunks of about CHUNK_BYTES, on Django's connection."""
    with connection.cursor() as django_cursor:
        cursor = django_cursor.cursor  # psycopg's own: Django's wrapper has no copy()
        with cursor.copy(export.copy_statement, export.params) as copy:
            yield from _joined(copy)


def csv_stream(export: CsvExport) -> AsyncIterator[bytes]:
    """`csv_chunks_async` of `export`, with the connection parameters read now (in the view's
    thread, not on the event loop)."""
    return csv_chunks_async(export, _async_connection_params())


async def csv_chunks_async(export: CsvExport, connection_params: dict) -> AsyncIterator[bytes]:
    """The CSV (header first) in chunks of about CHUNK_BYTES, read on the event loop.

    Why an async generator on a connection of its own: under ASGI, Django's StreamingHttpResponse
    consumes a *synchronous* iterator whole (`sync_to_async(list)`, with a warning) before it
    sends a byte, so a sync iterator would hold the entire export in memory. An async iterator is
    sent chunk by chunk, and each `await` on uvicorn's send waits while the client's socket buffer
    is full, so at most a chunk or two is held whatever the export's size. Django's database API
    is synchronous only, hence a psycopg AsyncConnection (Django's connection settings, outside
    its pool), opened when the first chunk is asked for and closed when the generator ends,
    including when the client goes away (Django 5 closes the iterator on a disconnect; leaving the
    COPY early cancels the query on the server).
    """
    async with (
        await psycopg.AsyncConnection.connect(
            **connection_params, autocommit=True
        ) as async_connection,
        async_connection.cursor() as cursor,
        cursor.copy(export.copy_statement, export.params) as copy,
    ):
        chunks = _Chunks()
        async for data in copy:
            if chunk := chunks.add(data):
                yield chunk
        if chunk := chunks.rest():
            yield chunk


def _joined(copy) -> Iterator[bytes]:
    chunks = _Chunks()
    for data in copy:
        if chunk := chunks.add(data):
            yield chunk
    if chunk := chunks.rest():
        yield chunk


class _Chunks:
    """COPY's pieces (a row or so each) joined into chunks of about CHUNK_BYTES, for the sync and
    the async reader alike."""

    def __init__(self) -> None:
        self._parts: list[bytes] = []
        self._size = 0

    def add(self, data) -> bytes | None:
        """Take a piece; a whole chunk once CHUNK_BYTES are held, else None."""
        self._parts.append(bytes(data))
        self._size += len(data)
        return self.rest() if self._size >= CHUNK_BYTES else None

    def rest(self) -> bytes:
        """What is held, as one chunk (b"" when nothing is)."""
        chunk = b"".join(self._parts)
        self._parts, self._size = [], 0
        return chunk


def _async_connection_params() -> dict:
    """Django's connection parameters for psycopg, without what only Django's sync cursors use."""
    params = connection.get_connection_params()
    for key in ("cursor_factory", "context", "prepare_threshold"):
        params.pop(key, None)
    return params
