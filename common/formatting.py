"""How values are written in API answers and events. Pure."""

from datetime import datetime
from decimal import Decimal


def plain_decimal(value: Decimal) -> str:
    """A Decimal as Binance writes it: no exponent, no padding zeros (5000000, 0.00012)."""
    return format(value.normalize(), "f")


def iso_z(moment: datetime) -> str:
    """An aware datetime as ISO-8601 in UTC with a Z (2025-12-01T12:34:56Z)."""
    return moment.isoformat().replace("+00:00", "Z")
