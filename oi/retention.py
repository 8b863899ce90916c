"""Retention of open-interest snapshots: rows older than OI_SNAPSHOT_RETENTION_DAYS are deleted.

Deletes go in batches of `batch_size` rows (found through the BRIN index on ts), each its own
short transaction, so the table is never locked for long and the job stops within its time
budget; the next run goes on where it stopped. Deleted rows leave space that autovacuum makes
reusable for new rows (the files do not shrink).
"""

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone

from common.locks import redis_lease
from common.redis import get_redis
from common.retention import rows_delete_in_batches

logger = logging.getLogger(__name__)

PRUNE_LEASE_KEY = "lock:oi:snapshots_prune"

_DELETE_BATCH_SQL = """
DELETE FROM open_interest_snapshots
WHERE id IN (SELECT id FROM open_interest_snapshots WHERE ts < %s LIMIT %s)
"""


@dataclass(frozen=True)
class PruneResult:
    cutoff: datetime
    deleted: int
    finished: bool
    """False when the time budget ran out with old rows left (the next run continues)."""


def snapshots_prune(
    *, now: datetime | None = None, batch_size: int = 10_000, time_budget_sec: float = 240.0
) -> PruneResult | None:
    """Delete snapshots older than the retention; None when another run holds the lease."""
    cutoff = (now or timezone.now()) - timedelta(days=settings.OI_SNAPSHOT_RETENTION_DAYS)
    with redis_lease(get_redis(), PRUNE_LEASE_KEY, ttl_sec=time_budget_sec + 60) as held:
        if not held:
            return None
        deleted, finished = rows_delete_in_batches(
            _DELETE_BATCH_SQL, cutoff, batch_size=batch_size, time_budget_sec=time_budget_sec
        )
        result = PruneResult(cutoff, deleted, finished=finished)
    logger.info(
        "snapshot retention",
        extra={"deleted": deleted, "cutoff": cutoff.isoformat(), "finished": result.finished},
    )
    return result
