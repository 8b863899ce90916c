"""The sample pipeline's stores of this app (see oi.pipeline): Postgres first, then the ring."""

from collections import defaultdict

from django.conf import settings

from common.redis import get_redis
from common.timeutil import ms_from_datetime
from oi import ring
from oi.pipeline import BatchOrigin, SampleBatch
from oi.snapshot_sink import snapshot_rows_deliver


def postgres_store(batch: SampleBatch) -> None:
    """The batch into Postgres (or the remote backend of a split deployment). Failure: a batch
    that cannot be written now is parked in Redis for a retry (or dead-lettered when refused for
    good), logged, and the pipeline goes on. A batch the ingest API stored already is skipped."""
    if not batch.stored:
        snapshot_rows_deliver(list(batch.rows))


def ring_append(batch: SampleBatch) -> None:
    """The batch into the symbols' ring buffers (and their coarse rings), in one Redis round trip. Only the poller's
    samples stamp each symbol's last sample time (the poller's freshness). A failure (Redis down)
    is raised: the rest of the pipeline would read the ring."""
    samples: dict[str, list[ring.RingSample]] = defaultdict(list)
    for row in batch.rows:
        samples[row.symbol].append(
            ring.RingSample(ms_from_datetime(row.ts), row.open_interest, mark_price=row.mark_price)
        )
    ring.ring_append(
        get_redis(),
        samples,
        window_ms=settings.OI_RING_WINDOW_SEC * 1000,
        now_ms=batch.at_ms,
        record_last_sample=batch.origin is BatchOrigin.POLLER,
        coarse_window_ms=settings.OI_COARSE_RING_WINDOW_SEC * 1000,
    )
