from decimal import Decimal


def plain_decimal(value: Decimal) -> str:
    """A Decimal as Binance writes it: no exponent, no padding zeros (5000000, 0.00012)."""
    return format(value.normalize(), "f")
