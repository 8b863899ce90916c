from oi.batches import KNOWN_SOURCES
from oi.management.export_command import ExportCommand
from oi.selectors import snapshot_export


class Command(ExportCommand):
    help = (
        "Stored open-interest samples with from <= ts < to as CSV (the columns and order of "
        "GET /api/market/open-interest/export)."
    )
    sources = KNOWN_SOURCES
    build = staticmethod(snapshot_export)
