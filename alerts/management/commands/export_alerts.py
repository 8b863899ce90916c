from alerts.models import AlertSource
from alerts.selectors import alert_export
from oi.management.export_command import ExportCommand


class Command(ExportCommand):
    help = (
        "Open-interest alerts with from <= ts < to as CSV (the columns and order of "
        "GET /api/open-interest-alerts/export)."
    )
    sources = tuple(AlertSource.values)
    build = staticmethod(alert_export)
