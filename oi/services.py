from dataclasses import dataclass

from django.db import connection, transaction

from common.redis import get_redis
from liquidity.selectors import universe_published_members_of
from oi.batches import SnapshotBatch, SnapshotRow
from oi.keys import DISPATCH_SENT_KEY, SNAPSHOTS_STORED_TOTAL_KEY

# One statement for the whole batch: atomic by itself, and idempotent through the unique key.
_INSERT_SNAPSHOTS_SQL = """
INSERT INTO open_interest_snapshots
    (symbol, ts, open_interest, open_interest_usd, mark_price, source, created_at)
SELECT symbol, ts, open_interest, open_interest_usd, mark_price, source, now()
FROM unnest(
    %s::text[], %s::timestamptz[], %s::numeric[], %s::numeric[], %s::numeric[], %s::text[]
) AS batch(symbol, ts, open_interest, open_interest_usd, mark_price, source)
ON CONFLICT (symbol, ts, source) DO NOTHING
"""


@dataclass(frozen=True)
class SnapshotIngestResult:
    received: int
    inserted: int
    duplicates: int
    partial: bool
    ignored_fields: tuple[str, ...] = ()
    live_rows: tuple[SnapshotRow, ...] = ()
    """The stored batch's rows of liquid symbols, for the sample pipeline (empty when the batch
    inserted nothing)."""


def snapshot_rows_store(*, rows: list[SnapshotRow]) -> int:
    """Store rows all-or-nothing; rows already stored (same symbol, ts, source) are skipped.

    Returns how many rows were new. The batch is one statement, atomic by itself: no
    transaction block around it (its BEGIN and COMMIT cost the poller two round trips more per
    batch).
    """
    if not rows:
        return 0
    with connection.cursor() as cursor:
        cursor.execute(
            _INSERT_SNAPSHOTS_SQL,
            [
                [row.symbol for row in rows],
                [row.ts for row in rows],
                [row.open_interest for row in rows],
                [row.open_interest_usd for row in rows],
                [row.mark_price for row in rows],
                [row.source for row in rows],
            ],
        )
        inserted = cursor.rowcount
    if inserted:
        transaction.on_commit(lambda: get_redis().incrby(SNAPSHOTS_STORED_TOTAL_KEY, inserted))
    return inserted


def liquid_rows(rows: list[SnapshotRow]) -> list[SnapshotRow]:
    """The rows whose symbol is in the liquid universe (the symbols the exchange lists and the
    poller polls): only those reach the ring buffers and alert trackers, whose memory is per
    symbol. Every ingested row is stored in Postgres all the same."""
    if not rows:
        return rows
    liquid = universe_published_members_of(row.symbol for row in rows)
    return [row for row in rows if row.symbol in liquid]


def snapshot_batch_ingest(*, batch: SnapshotBatch) -> SnapshotIngestResult:
    """Store an ingested batch. Its rows of liquid symbols (`live_rows`) are then for the sample
    pipeline's other sinks (ring, feed, alerts), in a worker: the ingest API hands them to the
    task `oi.ingested_samples_process` after commit. The others are kept in Postgres only."""
    inserted = snapshot_rows_store(rows=batch.rows)
    live_rows = liquid_rows(batch.rows) if inserted else []
    return SnapshotIngestResult(
        received=len(batch.rows),
        inserted=inserted,
        duplicates=len(batch.rows) - inserted,
        partial=batch.is_partial,
        ignored_fields=batch.ignored_fields,
        live_rows=tuple(live_rows),
    )


def poll_dispatch_sent_record(*, at_ms: int) -> None:
    """Beat's heartbeat: when a poll dispatch was last sent (readiness tells a stopped beat from a
    stopped poller by it). Kept a day, so that a long-dead beat still reads as dead."""
    get_redis().set(DISPATCH_SENT_KEY, at_ms, ex=86_400)
