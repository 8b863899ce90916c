"""What happened after an alert: the mark price and the open interest 5 min, 15 min and 1 h later,
as signed changes from the alert's own values. Measurements, not advice: a forward move is
reported with its sign (OI direction is not price direction), never as a hit or a miss.

The sample of a horizon is the stored sample nearest to alert time + horizon, within
``sample_tolerance_sec`` either side (the longest poll interval, at least 30 s). No sample there
(a gap, a symbol that left the universe, a pruned period) is "no data", never a guess from a
farther sample. A horizon is measured once its whole tolerance window has passed plus
``SETTLE_SEC`` for late-stored samples; before that it is pending (no row).

A forward move inside the regimes' dead band for the horizon's length (``oi.regimes``: 0.1% of
price over 5 min, 0.17% over 15 min, 0.35% over 1 h) counts as flat, as a window's move does.

Pure: no Django, Redis or HTTP.
"""

import math
from dataclasses import dataclass
from decimal import Decimal
from enum import IntEnum, StrEnum

from oi.regimes import DEFAULT_DEAD_BANDS, DeadBands

MIN_SAMPLE_TOLERANCE_SEC = 30.0
SETTLE_SEC = 60
"""Extra wait after a horizon's tolerance window: samples parked while Postgres was busy are
flushed every 30 s (oi.snapshots_flush_pending), so a horizon is not judged before they land."""


class Horizon(IntEnum):
    """How long after the alert, in seconds."""

    MIN_5 = 300
    MIN_15 = 900
    HOUR_1 = 3600

    @property
    def label(self) -> str:
        return HORIZON_LABELS[self]


HORIZON_LABELS: dict[Horizon, str] = {
    Horizon.MIN_5: "5m",
    Horizon.MIN_15: "15m",
    Horizon.HOUR_1: "1h",
}


class OutcomeStatus(StrEnum):
    MEASURED = "measured"
    """A sample within the tolerance, with a mark price: both changes known."""
    NO_PRICE = "no_price"
    """A sample within the tolerance, but no mark price (at the alert or then): OI change only."""
    NO_DATA = "no_data"
    """No stored sample within the tolerance: nothing measured, nothing guessed."""


class MoveSide(StrEnum):
    UP = "up"
    DOWN = "down"
    FLAT = "flat"


def sample_tolerance_sec(max_poll_interval_sec: float) -> float:
    """How far from alert time + horizon a sample may be: one poll interval, at least 30 s."""
    return max(MIN_SAMPLE_TOLERANCE_SEC, float(max_poll_interval_sec))


def due_after_sec(horizon: Horizon, tolerance_sec: float) -> float:
    """Seconds after the alert when a horizon is measured (its samples have all been stored)."""
    return horizon + tolerance_sec + SETTLE_SEC


def flat_bands(horizon: Horizon, bands: DeadBands = DEFAULT_DEAD_BANDS) -> tuple[float, float]:
    """(price, OI) half-widths of "flat" for a forward move over the horizon: the regimes' bands."""
    return bands.scaled(horizon)


def move_side(change: float, band: float) -> MoveSide:
    """Up, down or flat, with the regimes' rule: flat strictly inside the band."""
    if abs(change) < band:
        return MoveSide.FLAT
    return MoveSide.UP if change > 0 else MoveSide.DOWN


@dataclass(frozen=True, slots=True)
class Measurement:
    status: OutcomeStatus
    price_change: float | None
    oi_change: float | None


def _change(before: Decimal | None, after: Decimal | None) -> float | None:
    if before is None or after is None or before == 0:
        return None
    change = float((after - before) / before)
    return change if math.isfinite(change) else None


def measure(
    *,
    oi_at_alert: Decimal | None,
    price_at_alert: Decimal | None,
    sample_oi: Decimal | None,
    sample_price: Decimal | None,
    sample_found: bool,
) -> Measurement:
    """The outcome of one horizon from the alert's values and the horizon's sample (if any);
    changes are fractions (0.01 = +1%)."""
    if not sample_found:
        return Measurement(OutcomeStatus.NO_DATA, None, None)
    oi_change = _change(oi_at_alert, sample_oi)
    price_change = _change(price_at_alert, sample_price)
    if oi_change is None:
        return Measurement(OutcomeStatus.NO_DATA, None, None)
    if price_change is None:
        return Measurement(OutcomeStatus.NO_PRICE, None, oi_change)
    return Measurement(OutcomeStatus.MEASURED, price_change, oi_change)
