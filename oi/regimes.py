"""What kind of move is this? The OI/price regime of a window, from the signs of the open-interest
change and the mark-price change over that same window.

    OI up,   price up    long build    new longs opening
    OI up,   price down  short build   new shorts opening
    OI down, price up    short cover   shorts closing (a squeeze, or covering)
    OI down, price down  long flush    longs closing (liquidated or giving up)

A change inside the dead band is flat, not a coin toss: a price that moved 0.02% in five minutes
did not go "up". Both bands widen with the window as a random walk does, with the square root of
its length: a price change is flat below 0.1% over 5 min, 0.2% over 20 min, 0.35% over 1 h, 0.7%
over 4 h and 1.7% over 24 h; an OI change below 0.2% over 5 min (0.4% over 20 min ...). Rules only
alert on OI changes far outside that band, so an alert's OI side is never flat; a screener window
can be.

Pure: no Django, Redis or HTTP; the live alerts, the screener and any replay share it.
"""

import math
from dataclasses import dataclass
from enum import StrEnum


class Regime(StrEnum):
    LONG_BUILD = "long_build"
    SHORT_BUILD = "short_build"
    SHORT_COVER = "short_cover"
    LONG_FLUSH = "long_flush"
    BUILD_PRICE_FLAT = "build_price_flat"
    """OI up with the price inside its dead band."""
    UNWIND_PRICE_FLAT = "unwind_price_flat"
    """OI down with the price inside its dead band."""
    OI_FLAT = "oi_flat"
    """OI inside its dead band: nothing is building or unwinding, whatever the price does."""
    UNKNOWN = "unknown"
    """No price (or no OI change) for the window, so no label."""

    @property
    def label(self) -> str:
        return REGIME_LABELS[self]


REGIME_VALUES: tuple[str, ...] = tuple(regime.value for regime in Regime)

REGIME_LABELS: dict[Regime, str] = {
    Regime.LONG_BUILD: "long build",
    Regime.SHORT_BUILD: "short build",
    Regime.SHORT_COVER: "short cover",
    Regime.LONG_FLUSH: "long flush",
    Regime.BUILD_PRICE_FLAT: "OI up, price flat",
    Regime.UNWIND_PRICE_FLAT: "OI down, price flat",
    Regime.OI_FLAT: "OI flat",
    Regime.UNKNOWN: "unknown",
}

REGIME_MEANINGS: dict[Regime, str] = {
    Regime.LONG_BUILD: "OI up, price up: new longs",
    Regime.SHORT_BUILD: "OI up, price down: new shorts",
    Regime.SHORT_COVER: "OI down, price up: shorts covering or squeezed",
    Regime.LONG_FLUSH: "OI down, price down: longs closing or liquidated",
    Regime.BUILD_PRICE_FLAT: "OI up while the price held",
    Regime.UNWIND_PRICE_FLAT: "OI down while the price held",
    Regime.OI_FLAT: "OI barely moved",
    Regime.UNKNOWN: "no price for the window",
}

# The windows the bands are quoted for, and their width there (fractions: 0.001 = 0.1%).
DEAD_BAND_REFERENCE_SEC = 300
PRICE_DEAD_BAND_AT_REFERENCE = 0.001
OI_DEAD_BAND_AT_REFERENCE = 0.002


@dataclass(frozen=True, slots=True)
class DeadBands:
    """Half-widths of the flat zone at DEAD_BAND_REFERENCE_SEC, scaled by sqrt(window/reference)."""

    price: float = PRICE_DEAD_BAND_AT_REFERENCE
    open_interest: float = OI_DEAD_BAND_AT_REFERENCE

    def scaled(self, window_sec: float) -> tuple[float, float]:
        factor = math.sqrt(max(window_sec, 1) / DEAD_BAND_REFERENCE_SEC)
        return self.price * factor, self.open_interest * factor


DEFAULT_DEAD_BANDS = DeadBands()


def regime_of(
    *,
    oi_change: float | None,
    price_change: float | None,
    window_sec: float,
    bands: DeadBands = DEFAULT_DEAD_BANDS,
) -> Regime:
    """The regime of one window from its fractional OI and price changes (0.01 = +1%)."""
    if oi_change is None or not math.isfinite(oi_change):
        return Regime.UNKNOWN
    price_band, oi_band = bands.scaled(window_sec)
    if abs(oi_change) < oi_band:
        return Regime.OI_FLAT
    if price_change is None or not math.isfinite(price_change):
        return Regime.UNKNOWN
    oi_up = oi_change > 0
    if abs(price_change) < price_band:
        return Regime.BUILD_PRICE_FLAT if oi_up else Regime.UNWIND_PRICE_FLAT
    price_up = price_change > 0
    if oi_up:
        return Regime.LONG_BUILD if price_up else Regime.SHORT_BUILD
    return Regime.SHORT_COVER if price_up else Regime.LONG_FLUSH


def fractional_change(before: float | None, after: float | None) -> float | None:
    """(after - before) / before, or None when either is missing or before is 0."""
    if before is None or after is None or before == 0:
        return None
    return (after - before) / before
