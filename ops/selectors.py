from django.db.models import QuerySet

from ops.models import OpsEvent


def ops_event_list(*, active: bool | None = None, limit: int = 100) -> QuerySet[OpsEvent]:
    """Incidents, newest first; `active` True: only open ones, False: only recovered ones."""
    events = OpsEvent.objects.all()
    if active is not None:
        events = events.filter(recovered_at__isnull=active)
    return events.order_by("-opened_at")[:limit]


def ops_events_open() -> list[OpsEvent]:
    return list(OpsEvent.objects.filter(recovered_at__isnull=True))
