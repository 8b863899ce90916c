"""Raising and storing open-interest alerts: one path for the poller and the ingest API."""

import logging
from dataclasses import dataclass
from enum import StrEnum

from django.db import DatabaseError, connection, transaction

from alerts.models import OpenInterestAlert
from alerts.payloads import AlertCandidate
from common.formatting import iso_z
from common.realtime import OI_ALERTS_GROUP, broadcast_on_commit
from common.redis import get_redis

logger = logging.getLogger(__name__)

COOLDOWN_KEY = "oi:alert:cooldown:{}:{}"

_INSERT_ALERT_SQL = """
INSERT INTO open_interest_alerts
    (symbol, direction, baseline, current, pct_change, abs_change, source, ts, created_at)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, now())
ON CONFLICT (symbol, direction, ts, source) DO NOTHING
RETURNING id
"""


class AlertOutcome(StrEnum):
    CREATED = "created"
    DUPLICATE = "duplicate"
    COOLDOWN = "cooldown"


@dataclass(frozen=True)
class RaisedAlert:
    outcome: AlertOutcome
    alert: OpenInterestAlert | None


def alert_raise(candidate: AlertCandidate, *, cooldown_sec: int) -> RaisedAlert:
    """Store `candidate` unless the same alert exists (idempotent) or its (symbol, direction) is
    cooling down. The cooldown lives in Redis, so it holds across workers and restarts; it is
    claimed before storing and given back if storing fails, so no alert is lost to it."""
    existing = OpenInterestAlert.objects.filter(
        symbol=candidate.symbol,
        direction=candidate.direction,
        ts=candidate.ts,
        source=candidate.source,
    ).first()
    if existing:
        return RaisedAlert(AlertOutcome.DUPLICATE, existing)
    redis = get_redis()
    key = COOLDOWN_KEY.format(candidate.symbol, candidate.direction)
    if cooldown_sec > 0 and not redis.set(
        key, int(candidate.ts.timestamp() * 1000), nx=True, ex=cooldown_sec
    ):
        logger.info(
            "alert held by cooldown",
            extra={"symbol": candidate.symbol, "direction": candidate.direction},
        )
        return RaisedAlert(AlertOutcome.COOLDOWN, None)
    try:
        alert = alert_store(candidate)
    except DatabaseError:
        redis.delete(key)
        raise
    if alert is None:
        return RaisedAlert(AlertOutcome.DUPLICATE, None)
    logger.info(
        "open interest alert",
        extra={
            "symbol": alert.symbol,
            "direction": alert.direction,
            "pct_change": f"{alert.pct_change:.4f}",
            "alert_id": alert.id,
        },
    )
    return RaisedAlert(AlertOutcome.CREATED, alert)


@transaction.atomic
def alert_store(candidate: AlertCandidate) -> OpenInterestAlert | None:
    """Insert the alert (None when it exists already); after commit, publish it and queue its
    delivery beyond the page."""
    with connection.cursor() as cursor:
        cursor.execute(
            _INSERT_ALERT_SQL,
            [
                candidate.symbol,
                candidate.direction,
                candidate.baseline,
                candidate.current,
                candidate.pct_change,
                candidate.abs_change,
                candidate.source,
                candidate.ts,
            ],
        )
        row = cursor.fetchone()
    if row is None:
        return None
    alert = OpenInterestAlert.objects.get(pk=row[0])
    broadcast_on_commit(OI_ALERTS_GROUP, {"type": "oi.alert", "alert": alert_payload(alert)})
    transaction.on_commit(lambda: _queue_delivery(alert.id))
    return alert


def _queue_delivery(alert_id: int) -> None:
    from alerts.delivery import delivery_channels
    from alerts.tasks import alert_deliver_task

    for channel in delivery_channels():
        alert_deliver_task.delay(alert_id, channel)


def alert_payload(alert: OpenInterestAlert) -> dict:
    """The design's §5.3 alert payload, plus the alert's id (for catching up after a reconnect)."""
    return {
        "id": alert.id,
        "symbol": alert.symbol,
        "direction": alert.direction,
        "baseline": float(alert.baseline),
        "current": float(alert.current),
        "pctChange": float(alert.pct_change),
        "absChange": float(alert.abs_change),
        "timestamp": iso_z(alert.ts),
        "source": alert.source,
    }
