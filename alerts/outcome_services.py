"""The outcomes job: for every alert whose horizons have come due, the stored sample nearest to
alert time + horizon (``alerts.outcome_measures`` says what counts), in batches.

The samples come from Postgres (``open_interest_snapshots``), not the Redis ring buffers: Postgres
is the durable store (it outlives a Redis restart and keeps OI_SNAPSHOT_RETENTION_DAYS, the rings
3 h), it holds every sample the rules saw (the pipeline stores before it evaluates), and it is
what a backtest reads, so live outcomes and replayed ones come from the same samples.
"""

import logging
import time
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.db import connection
from django.utils import timezone

from alerts.models import AlertForwardOutcome
from alerts.outcome_measures import (
    Horizon,
    OutcomeStatus,
    due_after_sec,
    measure,
    sample_tolerance_sec,
)

logger = logging.getLogger(__name__)

OUTCOMES_FILL_MAX_PER_RUN = 5000
"""(alert, horizon) pairs one run measures, oldest first; the next run goes on (catch-up)."""

# Every (alert, horizon) past its due time without a row, oldest first, bounded; for each, the
# stored sample nearest alert time + horizon within the tolerance (any source; the realtime one on
# a tie), and a price at the alert from the samples when the alert carries none. The lookups walk
# the (symbol, ts, source) unique index of the snapshots.
_DUE_SQL = """
WITH horizons (horizon_sec, due_after_sec) AS (
    SELECT * FROM unnest(%(horizons)s::int[], %(due_after)s::float8[])
), due AS (
    SELECT a.id, a.symbol, a.ts, a.current, a.mark_price, h.horizon_sec,
           a.ts + make_interval(secs => h.horizon_sec) AS target
    FROM open_interest_alerts a
    JOIN horizons h ON a.ts <= %(now)s - make_interval(secs => h.due_after_sec)
    WHERE NOT EXISTS (
        SELECT 1 FROM open_interest_alert_outcomes o
        WHERE o.alert_id = a.id AND o.horizon_sec = h.horizon_sec
    )
    ORDER BY a.ts, a.id, h.horizon_sec
    LIMIT %(limit)s
)
SELECT due.id, due.horizon_sec, due.current, coalesce(due.mark_price, ref.mark_price),
       sample.ts, sample.open_interest, sample.mark_price
FROM due
LEFT JOIN LATERAL (
    SELECT s.mark_price FROM open_interest_snapshots s
    WHERE s.symbol = due.symbol AND s.mark_price IS NOT NULL
      AND s.ts BETWEEN due.ts - make_interval(secs => %(tolerance)s)
                   AND due.ts + make_interval(secs => %(tolerance)s)
    ORDER BY abs(extract(epoch FROM s.ts - due.ts)), s.ts, s.source
    LIMIT 1
) ref ON due.mark_price IS NULL
LEFT JOIN LATERAL (
    SELECT s.ts, s.open_interest, s.mark_price FROM open_interest_snapshots s
    WHERE s.symbol = due.symbol
      AND s.ts BETWEEN due.target - make_interval(secs => %(tolerance)s)
                   AND due.target + make_interval(secs => %(tolerance)s)
    ORDER BY abs(extract(epoch FROM s.ts - due.target)), s.ts, s.source
    LIMIT 1
) sample ON true
ORDER BY due.ts, due.id, due.horizon_sec
"""


@dataclass(frozen=True)
class OutcomesFillResult:
    measured: int
    """(alert, horizon) pairs measured, no data included (a row a concurrent run wrote first is
    kept as it was)."""
    no_data: int
    seconds: float
    more_due: bool
    """The run stopped at its bound: more horizons are due (the next run goes on)."""


def alert_outcomes_fill(
    *, now: datetime | None = None, limit: int = OUTCOMES_FILL_MAX_PER_RUN
) -> OutcomesFillResult:
    """Measure every due (alert, horizon) not measured yet, at most `limit`, oldest first: one
    query for them all, one batched insert. Idempotent: a measured horizon is never written
    again (the (alert, horizon) unique index; concurrent runs write the same values)."""
    started = time.monotonic()
    now = now or timezone.now()
    tolerance = sample_tolerance_sec(settings.OI_MAX_INTERVAL_SEC)
    with connection.cursor() as cursor:
        cursor.execute(
            _DUE_SQL,
            {
                "horizons": [int(h) for h in Horizon],
                "due_after": [due_after_sec(h, tolerance) for h in Horizon],
                "now": now,
                "tolerance": tolerance,
                "limit": limit,
            },
        )
        rows = cursor.fetchall()
    outcomes = []
    for alert_id, horizon_sec, oi_then, price_then, sample_ts, sample_oi, sample_price in rows:
        result = measure(
            oi_at_alert=oi_then,
            price_at_alert=price_then,
            sample_oi=sample_oi,
            sample_price=sample_price,
            sample_found=sample_ts is not None,
        )
        outcomes.append(
            AlertForwardOutcome(
                alert_id=alert_id,
                horizon_sec=horizon_sec,
                status=result.status,
                sample_ts=sample_ts,
                open_interest=sample_oi,
                mark_price=sample_price,
                oi_change=result.oi_change,
                price_change=result.price_change,
            )
        )
    created = AlertForwardOutcome.objects.bulk_create(
        outcomes, ignore_conflicts=True, batch_size=1000
    )
    no_data = sum(1 for outcome in created if outcome.status == OutcomeStatus.NO_DATA)
    result = OutcomesFillResult(
        measured=len(created),
        no_data=no_data,
        seconds=time.monotonic() - started,
        more_due=len(rows) >= limit,
    )
    if rows:
        logger.info(
            "alert outcomes measured",
            extra={
                "measured": result.measured,
                "no_data": result.no_data,
                "more_due": result.more_due,
                "seconds": round(result.seconds, 3),
            },
        )
    return result
