"""Poller tasks: thin wrappers; the logic is in oi.poller and oi.snapshot_sink."""

from datetime import UTC, datetime

from celery import shared_task
from django.conf import settings

from liquidity.tasks import universe_refresh_task
from oi.poller import (
    ShardPlan,
    ingested_samples_process,
    poller_dispatch,
    poller_run_shard,
    ring_backfill,
    universe_refresh_requested,
)
from oi.retention import snapshots_prune
from oi.snapshot_sink import snapshot_pending_flush

POLL_QUEUE = "oi_poll"
BACKFILL_QUEUE = "oi_backfill"
BACKFILL_CHUNK = 25
SHARD_LEAD_SEC = 0.25


def _utc(ms: float) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


@shared_task(name="oi.poll_dispatch", ignore_result=True, soft_time_limit=10, time_limit=15)
def poll_dispatch_task() -> None:
    """Every OI_WINDOW_SEC (beat): queue the shards of the next windows, and needed backfills."""
    plan = poller_dispatch()
    if plan.n_symbols == 0 and universe_refresh_requested():
        # Beat first runs the liquidity job a whole period after it starts; do not wait for it.
        universe_refresh_task.apply_async(expires=60)
    window_ms = settings.OI_WINDOW_SEC * 1000
    for shard in plan.shards:
        poll_shard_task.apply_async(
            args=[shard.window_start_ms, shard.window_end_ms, shard.polls],
            queue=POLL_QUEUE,
            eta=_utc(shard.window_start_ms - SHARD_LEAD_SEC * 1000),
            # A shard not started within half its window is dropped, never run behind newer ones.
            expires=_utc(shard.window_start_ms + window_ms / 2),
        )
    for start in range(0, len(plan.backfill), BACKFILL_CHUNK):
        ring_backfill_task.apply_async(
            args=[plan.backfill[start : start + BACKFILL_CHUNK]], queue=BACKFILL_QUEUE, expires=120
        )


@shared_task(name="oi.poll_shard", ignore_result=True, soft_time_limit=30, time_limit=40)
def poll_shard_task(window_start_ms: int, window_end_ms: int, polls: list[list]) -> None:
    poller_run_shard(
        ShardPlan(
            window_start_ms, window_end_ms, [(int(due), str(symbol)) for due, symbol in polls]
        )
    )


@shared_task(name="oi.ring_backfill", ignore_result=True, soft_time_limit=240, time_limit=300)
def ring_backfill_task(symbols: list[str]) -> None:
    ring_backfill(symbols)


@shared_task(
    name="oi.snapshots_flush_pending", ignore_result=True, soft_time_limit=50, time_limit=60
)
def snapshots_flush_pending_task() -> None:
    snapshot_pending_flush()


@shared_task(
    name="oi.ingested_samples_process", ignore_result=True, soft_time_limit=60, time_limit=90
)
def ingested_samples_process_task(samples: list[list]) -> None:
    """Samples stored by the ingest API: into the ring buffers, then through alert evaluation."""
    ingested_samples_process(samples)


@shared_task(name="oi.snapshots_prune", ignore_result=True, soft_time_limit=300, time_limit=330)
def snapshots_prune_task() -> None:
    """Hourly (beat): delete snapshots older than OI_SNAPSHOT_RETENTION_DAYS."""
    snapshots_prune()
