"""Sizes of the numeric columns that several apps share (oi, liquidity, alerts), so that a value
that one app validates fits the columns of every other. Pure: no Django, no I/O."""

from decimal import Decimal

# numeric(30, 12): open interest in contracts and USD, mark prices down to 1e-12 (meme coins),
# 24 h quote volumes, alert baselines and changes.
DECIMAL_DIGITS = 30
DECIMAL_PLACES = 12
# numeric(30, 12) leaves 18 digits before the point: a value must stay below this.
MAX_DECIMAL = Decimal(10) ** (DECIMAL_DIGITS - DECIMAL_PLACES)
