"""Poller tasks: thin wrappers; the logic is in oi.poller, oi.pipeline and oi.snapshot_sink."""

from collections.abc import Sequence

from celery import shared_task
from celery.signals import celeryd_after_setup, worker_ready, worker_shutdown, worker_shutting_down
from django.conf import settings
from django.db import transaction

from common.timeutil import datetime_from_ms, now_ms
from liquidity.selectors import universe_refreshed_once
from liquidity.tasks import universe_refresh_task
from oi.batches import SnapshotRow
from oi.egress import (
    POLL_QUEUE,
    heartbeat_start,
    heartbeat_stop,
    heartbeat_stop_soon,
    on_group_left,
    own_egress_id,
    poll_queue,
)
from oi.pipeline import (
    BatchOrigin,
    sample_batch_from_payload,
    sample_batch_payload,
    sample_batch_process,
)
from oi.poller import (
    ShardPlan,
    poller_dispatch,
    poller_run_shard,
    ring_backfill,
    shard_still_planned,
    universe_refresh_requested,
)
from oi.retention import snapshots_prune
from oi.snapshot_sink import snapshot_pending_flush

BACKFILL_QUEUE = "oi_backfill"
BACKFILL_CHUNK = 25
SHARD_LEAD_SEC = 0.25


@shared_task(name="oi.poll_dispatch", ignore_result=True, soft_time_limit=10, time_limit=15)
def poll_dispatch_task() -> None:
    """Every OI_WINDOW_SEC (beat): queue the shards of the next windows, and needed backfills."""
    plan = poller_dispatch()
    if (plan.n_symbols == 0 or not universe_refreshed_once()) and universe_refresh_requested():
        # Beat first runs the liquidity job a whole period after it starts; do not wait for it
        # while the universe is empty, nor while the one in Redis is not this system's own (left
        # by another run in the same Redis db while this database has never had one).
        universe_refresh_task.apply_async(expires=60)
    window_ms = settings.OI_WINDOW_SEC * 1000
    for shard in plan.shards:
        poll_shard_task.apply_async(
            args=[shard.window_start_ms, shard.window_end_ms, shard.polls],
            kwargs={"egress_id": shard.egress_id, "epoch": shard.epoch},
            queue=poll_queue(shard.egress_id) if shard.egress_id else POLL_QUEUE,
            eta=datetime_from_ms(shard.window_start_ms - SHARD_LEAD_SEC * 1000),
            # A shard not started within half its window is dropped, never run behind newer ones.
            expires=datetime_from_ms(shard.window_start_ms + window_ms / 2),
        )
    for start in range(0, len(plan.backfill), BACKFILL_CHUNK):
        ring_backfill_task.apply_async(
            args=[plan.backfill[start : start + BACKFILL_CHUNK]], queue=BACKFILL_QUEUE, expires=120
        )


@shared_task(name="oi.poll_shard", ignore_result=True, soft_time_limit=30, time_limit=40)
def poll_shard_task(
    window_start_ms: int,
    window_end_ms: int,
    polls: list[list],
    egress_id: str = "",
    epoch: int = 0,
) -> None:
    shard = ShardPlan(
        window_start_ms,
        window_end_ms,
        [(int(due), str(symbol)) for due, symbol in polls],
        str(egress_id),
        int(epoch),
    )
    if shard_still_planned(shard):  # not re-planned since (the egress groups changed)
        poller_run_shard(shard)


def _consumes(consumer, queue: str) -> bool:
    queues = getattr(getattr(getattr(consumer, "app", None), "amqp", None), "queues", None)
    return queues is not None and queue in queues.consume_from


@celeryd_after_setup.connect
def _poll_queue_of_own_group(sender=None, instance=None, **kwargs: object) -> None:
    """A worker consuming oi_poll (beat's dispatches) also consumes its own group's shards,
    oi_poll.<BINANCE_EGRESS_ID>: a poller host needs no queue setting of its own."""
    if instance is not None and _consumes(instance, POLL_QUEUE):
        instance.app.amqp.queues.select_add(poll_queue(own_egress_id()))


@worker_ready.connect
def _egress_heartbeat_in_pollers(sender=None, **kwargs: object) -> None:
    """Each poller worker keeps its group's heartbeat while it runs (oi.egress)."""
    if _consumes(sender, poll_queue(own_egress_id())):
        heartbeat_start()


def _dispatch_now() -> None:
    """This poller's group left the plan at a clean stop: its next windows go to the other
    groups now, not at beat's next dispatch (up to a window later: windows nobody runs). Sent as
    beat sends it (its queue, its expiry)."""
    poll_dispatch_task.apply_async(**settings.CELERY_BEAT_SCHEDULE["oi-poll-dispatch"]["options"])


on_group_left(_dispatch_now)


@worker_shutting_down.connect
def _egress_leaves_at_once(sender=None, **kwargs: object) -> None:
    """At SIGTERM, not after the warm shutdown's last shard (oi.egress.heartbeat_stop_soon)."""
    heartbeat_stop_soon()


@worker_shutdown.connect
def _egress_heartbeat_stop(sender=None, **kwargs: object) -> None:
    heartbeat_stop()


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
def ingested_samples_process_task(payload: dict) -> None:
    """Samples of liquid symbols stored by the ingest API: through the sample pipeline's other
    sinks (the ring, the feed, the alerts)."""
    sample_batch_process(sample_batch_from_payload(payload, at_ms=now_ms()))


def ingested_samples_process_later(rows: Sequence[SnapshotRow]) -> None:
    """After the ingest's commit, hand its stored rows of liquid symbols to a worker."""
    if rows:
        payload = sample_batch_payload(rows, origin=BatchOrigin.INGEST, stored=True)
        transaction.on_commit(lambda: ingested_samples_process_task.delay(payload))


@shared_task(name="oi.snapshots_prune", ignore_result=True, soft_time_limit=300, time_limit=330)
def snapshots_prune_task() -> None:
    """Hourly (beat): delete snapshots older than OI_SNAPSHOT_RETENTION_DAYS."""
    snapshots_prune()
