"""The design's §5 rule written out plainly, recomputed from all samples at every step: the
oracle the rules engine's ``median_baseline`` path (``alerts.rules``) is checked against. Test
code only; production runs ``alerts.rules``.

Samples are ``(t_ms, oi)``. At the latest sample ``(t_now, oi_now)``:

* baseline = median of the samples whose age ``t_now - t`` lies in ``[W_low, W_high]``, both ends
  inclusive; fewer than ``min_baseline_samples`` there, or a baseline of 0: no verdict.
* ``pct_change = (oi_now - baseline) / baseline``; UP when ``pct_change >= spike``, DOWN when
  ``pct_change <= -dump``; every minimum that is set must also hold, else the verdict names the
  minimum that blocked it.

A sample is taken only if strictly newer than the latest one taken (a re-poll of the same time is
a duplicate, an older one stale).
"""

import math
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from alerts.enums import Direction, VerdictReason


class NoVerdict(StrEnum):
    INSUFFICIENT_BASELINE = "insufficient_baseline"
    ZERO_BASELINE = "zero_baseline"
    NO_SAMPLES = "no_samples"


BLOCKED = frozenset(
    {
        VerdictReason.BLOCKED_MIN_DELTA_CONTRACTS,
        VerdictReason.BLOCKED_MIN_DELTA_USD,
        VerdictReason.MISSING_MARK_PRICE,
    }
)


@dataclass(frozen=True)
class DesignParams:
    """Windows in seconds, thresholds as fractions (0.05 = 5%)."""

    w_low_sec: int = 1800
    w_high_sec: int = 3600
    min_baseline_samples: int = 3
    spike_threshold_pct: float = 0.05
    dump_threshold_pct: float = 0.05
    min_delta_contracts: float | None = 5000.0
    min_delta_usd: float | None = None


@dataclass(frozen=True)
class Verdict:
    reason: VerdictReason | NoVerdict
    direction: Direction | None = None
    t_ms: int | None = None
    current: float | None = None
    baseline: float | None = None
    baseline_samples: int = 0
    pct_change: float | None = None
    abs_change: float | None = None

    @property
    def is_alert(self) -> bool:
        return self.reason is VerdictReason.ALERT

    @property
    def is_blocked(self) -> bool:
        return self.reason in BLOCKED


def accepted_samples(samples: Iterable[tuple[int, float]]) -> list[tuple[int, float]]:
    kept: list[tuple[int, float]] = []
    for t_ms, oi in samples:
        value = float(oi) + 0.0
        if not math.isfinite(value) or value < 0:
            raise ValueError(f"open interest must be finite and >= 0, got {oi!r}")
        if not kept or t_ms > kept[-1][0]:
            kept.append((t_ms, value))
    return kept


def evaluate_samples(
    samples: Iterable[tuple[int, float]], params: DesignParams, mark_price: float | None = None
) -> Verdict:
    kept = accepted_samples(samples)
    if not kept:
        return Verdict(NoVerdict.NO_SAMPLES)
    t_now, current = kept[-1]
    low_ms, high_ms = params.w_low_sec * 1000, params.w_high_sec * 1000
    in_window = sorted(oi for t_ms, oi in kept if low_ms <= t_now - t_ms <= high_ms)
    count = len(in_window)
    if not in_window or count < params.min_baseline_samples:
        return Verdict(NoVerdict.INSUFFICIENT_BASELINE, t_ms=t_now, current=current,
                       baseline_samples=count)  # fmt: skip
    middle = count // 2
    baseline = in_window[middle] if count % 2 else (in_window[middle - 1] + in_window[middle]) / 2
    if baseline == 0:
        return Verdict(NoVerdict.ZERO_BASELINE, t_ms=t_now, current=current, baseline=0.0,
                       baseline_samples=count)  # fmt: skip
    abs_change = current - baseline
    pct_change = abs_change / baseline
    direction = None
    reason: VerdictReason = VerdictReason.BELOW_THRESHOLD
    if pct_change >= params.spike_threshold_pct:
        direction = Direction.UP
    elif pct_change <= -params.dump_threshold_pct:
        direction = Direction.DOWN
    if direction is not None:
        price = float(mark_price) if mark_price is not None else math.nan
        usable = math.isfinite(price) and price > 0
        if params.min_delta_contracts is not None and abs(abs_change) < params.min_delta_contracts:
            reason = VerdictReason.BLOCKED_MIN_DELTA_CONTRACTS
        elif params.min_delta_usd is not None and not usable:
            reason = VerdictReason.MISSING_MARK_PRICE
        elif params.min_delta_usd is not None and abs(abs_change) * price < params.min_delta_usd:
            reason = VerdictReason.BLOCKED_MIN_DELTA_USD
        else:
            reason = VerdictReason.ALERT
    return Verdict(reason, direction, t_now, current, baseline, count, pct_change, abs_change)
