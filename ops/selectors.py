from django.db.models import QuerySet

from ops.models import OpsIncident


def ops_event_list(*, active: bool | None = None, limit: int = 100) -> QuerySet[OpsIncident]:
    """Incidents, newest first; `active` True: only open ones, False: only recovered ones."""
    events = OpsIncident.objects.all()
    if active is not None:
        events = events.filter(recovered_at__isnull=active)
    return events.order_by("-opened_at")[:limit]


def ops_events_open() -> list[OpsIncident]:
    return list(OpsIncident.objects.filter(recovered_at__isnull=True))
