from datetime import datetime, timedelta

from django.db.models import QuerySet

from volume_alerts.models import VolumeAlert

# Upstream's `GET /api/volume-alerts?tier=` (VolSpike volume-alerts.ts:96-172): how many alerts
# each tier gets, and the boundary (minutes) free and pro see alerts up to.
TIER_LIMITS = {"free": 10, "pro": 50, "elite": 100, "admin": 100}
TIER_DELAY_MINUTES = {"free": 15, "pro": 5}


def volume_alert_list(
    *,
    symbols: list[str] | None = None,
    alert_type: str | None = None,
    since: datetime | None = None,
    after_id: int | None = None,
    detected_until: datetime | None = None,
) -> QuerySet[VolumeAlert]:
    """Volume alerts newest first, filtered; `after_id` is for clients catching up."""
    alerts = VolumeAlert.objects.all()
    if symbols:
        alerts = alerts.filter(symbol__in=symbols)
    if alert_type:
        alerts = alerts.filter(alert_type=alert_type)
    if since is not None:
        alerts = alerts.filter(ts__gte=since)
    if after_id is not None:
        alerts = alerts.filter(id__gt=after_id)
    if detected_until is not None:
        alerts = alerts.filter(detection_time__lte=detected_until)
    return alerts.order_by("-ts", "-id")


def tier_last_broadcast(tier: str, *, now: datetime) -> datetime:
    """The latest moment a tier's delayed feed has reached: the last :05 (pro) or :15 (free)
    boundary; now for elite and admin."""
    step = TIER_DELAY_MINUTES.get(tier)
    if step is None:
        return now
    floored = now.replace(second=0, microsecond=0)
    return floored - timedelta(minutes=floored.minute % step)
