from datetime import datetime

from django.db.models import QuerySet

from alerts.models import OpenInterestAlert


def alert_list(
    *,
    symbols: list[str] | None = None,
    direction: str | None = None,
    since: datetime | None = None,
    after_id: int | None = None,
) -> QuerySet[OpenInterestAlert]:
    """Alerts newest first, filtered; `after_id` is for clients catching up after a reconnect."""
    alerts = OpenInterestAlert.objects.all()
    if symbols:
        alerts = alerts.filter(symbol__in=symbols)
    if direction:
        alerts = alerts.filter(direction=direction)
    if since is not None:
        alerts = alerts.filter(ts__gte=since)
    if after_id is not None:
        alerts = alerts.filter(id__gt=after_id)
    return alerts.order_by("-ts", "-id")
