"""Storing volume alerts from the hourly script: once per identity, published after commit."""

import logging
from dataclasses import asdict, dataclass

from django.db import connection, transaction

from common.formatting import iso_z
from common.realtime import VOLUME_ALERTS_GROUP, GroupMessageType, broadcast_on_commit
from volume_alerts.models import VolumeAlert
from volume_alerts.payloads import VolumeAlertCandidate

logger = logging.getLogger(__name__)

# One statement: a retry racing the first send stores one row, and the loser learns it lost.
_INSERT_VOLUME_ALERT_SQL = """
INSERT INTO volume_alerts
    (symbol, asset, current_volume, previous_volume, volume_ratio, price, funding_rate,
     price_change, oi_change, candle_direction, alert_type, is_update, message, ts,
     detection_time, hour_timestamp, created_at)
VALUES (%(symbol)s, %(asset)s, %(current_volume)s, %(previous_volume)s, %(volume_ratio)s,
        %(price)s, %(funding_rate)s, %(price_change)s, %(oi_change)s, %(candle_direction)s,
        %(alert_type)s, %(is_update)s, %(message)s, %(ts)s, %(detection_time)s,
        %(hour_timestamp)s, now())
ON CONFLICT (symbol, hour_timestamp, alert_type) DO NOTHING
RETURNING id
"""


@dataclass(frozen=True)
class VolumeAlertIngestResult:
    alert: VolumeAlert
    created: bool
    # Fields of a duplicate whose values differ from the stored alert's (the first one is kept).
    differing_fields: list[str]


@transaction.atomic
def volume_alert_ingest(candidate: VolumeAlertCandidate) -> VolumeAlertIngestResult:
    """Store the alert unless one with its identity (symbol, hour, type) exists; a new one is
    published to the live feed after commit."""
    with connection.cursor() as cursor:
        cursor.execute(_INSERT_VOLUME_ALERT_SQL, asdict(candidate))
        row = cursor.fetchone()
    if row is None:
        existing = VolumeAlert.objects.get(
            symbol=candidate.symbol,
            hour_timestamp=candidate.hour_timestamp,
            alert_type=candidate.alert_type,
        )
        differing = _differing_fields(existing, candidate)
        logger.info(
            "volume alert already stored",
            extra={
                "symbol": candidate.symbol,
                "alert_type": candidate.alert_type,
                "alert_id": existing.id,
                "differing": ",".join(differing) or "-",
            },
        )
        return VolumeAlertIngestResult(existing, created=False, differing_fields=differing)
    alert = VolumeAlert.objects.get(pk=row[0])
    broadcast_on_commit(
        VOLUME_ALERTS_GROUP,
        {"type": GroupMessageType.VOLUME_ALERT, "alert": volume_alert_payload(alert)},
    )
    logger.info(
        "volume alert",
        extra={
            "symbol": alert.symbol,
            "alert_type": alert.alert_type,
            "volume_ratio": f"{alert.volume_ratio:.3f}",
            "alert_id": alert.id,
        },
    )
    return VolumeAlertIngestResult(alert, created=True, differing_fields=[])


def volume_alert_payload(alert: VolumeAlert) -> dict:
    """Upstream's `VolumeAlert` row as its API and `volume-alert` event carry it: every column,
    nulls included, dates as ISO strings. `id` is this project's integer id (the catch-up
    cursor of the live feed)."""
    return {
        "id": alert.id,
        "symbol": alert.symbol,
        "asset": alert.asset,
        "currentVolume": alert.current_volume,
        "previousVolume": alert.previous_volume,
        "volumeRatio": alert.volume_ratio,
        "price": alert.price,
        "fundingRate": alert.funding_rate,
        "alertType": alert.alert_type,
        "message": alert.message,
        "timestamp": iso_z(alert.ts),
        "hourTimestamp": iso_z(alert.hour_timestamp),
        "isUpdate": alert.is_update,
        "candleDirection": alert.candle_direction or None,
        "detectionTime": iso_z(alert.detection_time),
        "oiChange": alert.oi_change,
        "priceChange": alert.price_change,
    }


_COMPARED = {
    "asset": "asset", "currentVolume": "current_volume", "previousVolume": "previous_volume",
    "volumeRatio": "volume_ratio", "price": "price", "fundingRate": "funding_rate",
    "priceChange": "price_change", "oiChange": "oi_change", "candleDirection": "candle_direction",
    "isUpdate": "is_update", "message": "message", "timestamp": "ts",
    "detectionTime": "detection_time",
}  # fmt: skip


def _differing_fields(stored: VolumeAlert, candidate: VolumeAlertCandidate) -> list[str]:
    return [
        name
        for name, attribute in _COMPARED.items()
        if getattr(stored, attribute) != getattr(candidate, attribute)
    ]
