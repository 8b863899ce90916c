"""Thresholds relative to the symbol itself: each symbol's own distribution of a window's OI
change, and how extreme a change is against it. Pure: stdlib only.

The change over a window W at a sample is ``current / start - 1``, where ``start`` is the first
sample aged at most W (the window's oldest, ``WindowExtremes.oldest``). The distribution is of
that change at every coarse (5-minute, oi.coarse) sample of the last N days whose window is
covered (a sample at least W old, no hole wider than the window's max gap).

Robust z, not a plain z-score or a percentile: ``z = (change - median) / (1.4826 × MAD)``.
OI changes are fat-tailed (bench/relative_stats.py on ../shared/data: excess kurtosis of 1 h
changes 8.4 for BTC and 16.9 for ETH, against 0 for a normal distribution; the standard deviation
1.5× the MAD-based scale at the median, up to 2.2×): one liquidation cascade inflates a standard
deviation for N days and hides the next move, while the median and the MAD barely move. A percentile is as robust, but is bounded by the history it has
(the 99.9th percentile of 2,016 samples rests on two of them, and nothing can be "beyond the
largest seen"); a robust z needs two numbers per symbol and window and extrapolates. The scale is
floored at SCALE_FLOOR, so a symbol whose OI barely ever moves does not fire on a 0.01% change.

No statistics, no verdict: a symbol with fewer than MIN_CHANGES changes, or whose history spans
less than ``min_span_ms(W)`` (a day, and at least twice the window), gets ``None`` and a relative
rule gives no verdict for it, never a guess.
"""

import math
from collections.abc import Sequence
from dataclasses import dataclass

MAD_TO_SIGMA = 1.4826
SCALE_FLOOR = 1e-4
MIN_CHANGES = 100
DAY_MS = 86_400_000


@dataclass(frozen=True, slots=True)
class ChangeStats:
    """One symbol's distribution of one window's change: its median and robust scale
    (1.4826 × MAD, floored), from ``count`` changes over ``first_ms``..``last_ms``."""

    window_sec: int
    median: float
    scale: float
    count: int
    first_ms: int
    last_ms: int

    def z(self, change: float) -> float:
        return (change - self.median) / self.scale


def window_max_gap_ms(window_sec: int) -> int:
    """The widest hole a covered window may have (as ``alerts.rules.WindowExtremes``)."""
    return max(window_sec * 1000 // 4, 330_000)


def min_span_ms(window_sec: int) -> int:
    return max(DAY_MS, 2 * window_sec * 1000)


def window_changes(
    times_ms: Sequence[int], values: Sequence[float], window_sec: int
) -> list[tuple[int, float]]:
    """(time, change over the window) at every sample whose window is covered, for samples in
    time order (coarse ones: the statistics' input)."""
    window_ms = window_sec * 1000
    max_gap = window_max_gap_ms(window_sec)
    changes = []
    start = 0  # first sample aged <= W
    # the widest gap between neighbours from the window's anchor (start - 1) to now, kept as a
    # monotonic deque of (index of the later sample, gap)
    gaps: list[tuple[int, int]] = []
    head = 0
    for index, t_ms in enumerate(times_ms):
        if index:
            gap = t_ms - times_ms[index - 1]
            while len(gaps) > head and gaps[-1][1] <= gap:
                gaps.pop()
            gaps.append((index, gap))
        while times_ms[start] < t_ms - window_ms:
            start += 1
        anchor = start - 1
        while head < len(gaps) and gaps[head][0] <= anchor:
            head += 1
        if anchor < 0:
            continue  # nothing at least W old
        if head < len(gaps) and gaps[head][1] > max_gap:
            continue
        base = values[start]
        if base > 0 and math.isfinite(values[index]):
            changes.append((t_ms, values[index] / base - 1))
    return changes


def change_stats(
    times_ms: Sequence[int], values: Sequence[float], window_sec: int
) -> ChangeStats | None:
    """The statistics of the window's change over the given coarse samples; None when there are
    too few (MIN_CHANGES) or they span too little (``min_span_ms``)."""
    changes = window_changes(times_ms, values, window_sec)
    if len(changes) < MIN_CHANGES or changes[-1][0] - times_ms[0] < min_span_ms(window_sec):
        return None
    ordered = sorted(change for _t, change in changes)
    median = _median_sorted(ordered)
    mad = _median_sorted(sorted(abs(change - median) for change in ordered))
    return ChangeStats(
        window_sec=window_sec,
        median=median,
        scale=max(MAD_TO_SIGMA * mad, SCALE_FLOOR),
        count=len(ordered),
        first_ms=int(times_ms[0]),
        last_ms=int(changes[-1][0]),
    )


def _median_sorted(values: Sequence[float]) -> float:
    middle = len(values) // 2
    if len(values) % 2:
        return values[middle]
    return (values[middle - 1] + values[middle]) / 2


# Liquidity tiers: threshold multipliers by 24 h quote-volume band.


def tiers_parse(raw: str) -> tuple[tuple[float, float], ...]:
    """``"1000000000:0.5,100000000:1,0:1.5"`` (lowest volume of the band: multiplier) as bands
    from the highest floor down; ValueError naming the bad part."""
    tiers = []
    for part in filter(None, (piece.strip() for piece in raw.split(","))):
        floor, _, multiplier = part.partition(":")
        try:
            tier = (float(floor), float(multiplier))
        except ValueError:
            raise ValueError(f"tier {part!r} is not <min quote volume>:<multiplier>") from None
        if not (math.isfinite(tier[0]) and tier[0] >= 0 and math.isfinite(tier[1]) and tier[1] > 0):
            raise ValueError(f"tier {part!r}: the volume must be >= 0 and the multiplier > 0")
        tiers.append(tier)
    return tuple(sorted(tiers, reverse=True))


def tier_multiplier(quote_volume_24h: float | None, tiers: Sequence[tuple[float, float]]) -> float:
    """The multiplier of the first band whose floor the volume reaches; 1 when the volume is
    unknown or below every floor."""
    if quote_volume_24h is None:
        return 1.0
    for floor, multiplier in tiers:
        if quote_volume_24h >= floor:
            return multiplier
    return 1.0
