"""Open-interest spike/dump detection (design §5). Pure: stdlib and sortedcontainers only, no I/O.

Samples are ``(t_ms, oi)``: ``t_ms`` is an integer in milliseconds since the epoch (Binance's
``time``), ``oi`` is open interest in contracts, held as ``float``. Decimal inputs are converted
with ``float()``; detection only compares ratios, and the stored alert values are formatted from
these floats. Threshold edges are exact for exact inputs: IEEE division is correctly rounded, so
``(105000 - 100000) / 100000 == 0.05`` holds.

The rule, evaluated at the latest sample ``(t_now, oi_now)``:

* baseline = median of the samples whose age ``t_now - t`` lies in ``[W_low, W_high]``, both
  ends inclusive. With fewer than ``min_baseline_samples`` samples there, or a baseline of 0,
  there is no verdict (``INSUFFICIENT_BASELINE``, ``ZERO_BASELINE``).
* ``pct_change = (oi_now - baseline) / baseline`` and ``abs_change = oi_now - baseline``.
* UP when ``pct_change >= spike_threshold_pct``; DOWN when ``pct_change <= -dump_threshold_pct``.
  Every minimum that is set must also hold (AND): ``|abs_change| >= min_delta_contracts`` and,
  when ``min_delta_usd`` is set, ``|abs_change| * mark_price >= min_delta_usd``.
* A move that crosses the percentage threshold but fails a minimum is not dropped: its verdict
  keeps the direction and names the minimum that blocked it (``BLOCKED_MIN_DELTA_CONTRACTS``,
  then ``BLOCKED_MIN_DELTA_USD``, checked in that order; ``MISSING_MARK_PRICE`` when a USD
  minimum is set and no usable mark price was given), so callers can log it. Such a verdict is
  not an alert and must not touch cooldown state.

Samples are accepted in arrival order only if strictly newer than the latest one accepted: a
sample with a timestamp older than or equal to the latest is ignored (a re-poll returning the
same Binance ``time`` is a duplicate; an older one is stale). ``evaluate_samples`` and
``BaselineTracker`` apply the same rule and give identical verdicts.

Cooldown is per ``(symbol, direction)``: after an alert, the same key may alert again only once
``cooldown_sec`` has passed; the other direction has its own key and alerts at once. Record the
alert time only for alerts actually emitted.

Per-symbol overrides win over the global defaults field by field (``resolve_params``).
"""

import math
import operator
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, fields, replace
from decimal import Decimal
from enum import StrEnum

from sortedcontainers import SortedList

Number = int | float | Decimal
Sample = tuple[int, Number]


class Direction(StrEnum):
    UP = "UP"
    DOWN = "DOWN"


class VerdictReason(StrEnum):
    ALERT = "alert"
    BELOW_THRESHOLD = "below_threshold"
    BLOCKED_MIN_DELTA_CONTRACTS = "blocked_min_delta_contracts"
    BLOCKED_MIN_DELTA_USD = "blocked_min_delta_usd"
    MISSING_MARK_PRICE = "missing_mark_price"
    INSUFFICIENT_BASELINE = "insufficient_baseline"
    ZERO_BASELINE = "zero_baseline"
    NO_SAMPLES = "no_samples"


BLOCKED_REASONS = frozenset(
    {
        VerdictReason.BLOCKED_MIN_DELTA_CONTRACTS,
        VerdictReason.BLOCKED_MIN_DELTA_USD,
        VerdictReason.MISSING_MARK_PRICE,
    }
)


@dataclass(frozen=True, slots=True)
class DetectionParams:
    """Detection settings. Windows and cooldown in seconds; thresholds as fractions (0.05 = 5%)."""

    w_low_sec: int = 1800
    w_high_sec: int = 3600
    min_baseline_samples: int = 3
    spike_threshold_pct: float = 0.05
    dump_threshold_pct: float = 0.05
    min_delta_contracts: float = 5000.0
    min_delta_usd: float | None = None
    cooldown_sec: int = 900

    def __post_init__(self) -> None:
        for name in ("w_low_sec", "w_high_sec", "min_baseline_samples", "cooldown_sec"):
            object.__setattr__(self, name, _as_int(name, getattr(self, name)))
        for name in ("spike_threshold_pct", "dump_threshold_pct", "min_delta_contracts"):
            object.__setattr__(self, name, _as_finite_float(name, getattr(self, name)))
        if self.min_delta_usd is not None:
            object.__setattr__(
                self, "min_delta_usd", _as_finite_float("min_delta_usd", self.min_delta_usd)
            )

        if self.w_low_sec <= 0:
            raise ValueError(f"w_low_sec must be > 0, got {self.w_low_sec}")
        if self.w_low_sec >= self.w_high_sec:
            raise ValueError(
                f"w_low_sec must be < w_high_sec, got {self.w_low_sec} >= {self.w_high_sec}"
            )
        if self.min_baseline_samples < 1:
            raise ValueError(f"min_baseline_samples must be >= 1, got {self.min_baseline_samples}")
        if self.spike_threshold_pct <= 0:
            raise ValueError(f"spike_threshold_pct must be > 0, got {self.spike_threshold_pct}")
        if not 0 < self.dump_threshold_pct <= 1:
            raise ValueError(
                f"dump_threshold_pct must be in (0, 1] (OI cannot fall more than 100%), "
                f"got {self.dump_threshold_pct}"
            )
        if self.min_delta_contracts < 0:
            raise ValueError(f"min_delta_contracts must be >= 0, got {self.min_delta_contracts}")
        if self.min_delta_usd is not None and self.min_delta_usd < 0:
            raise ValueError(f"min_delta_usd must be >= 0 or None, got {self.min_delta_usd}")
        if self.cooldown_sec < 0:
            raise ValueError(f"cooldown_sec must be >= 0, got {self.cooldown_sec}")

    @property
    def w_low_ms(self) -> int:
        return self.w_low_sec * 1000

    @property
    def w_high_ms(self) -> int:
        return self.w_high_sec * 1000


def _as_int(name: str, value: object) -> int:
    if isinstance(value, bool):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    if isinstance(value, int):
        return value
    if isinstance(value, float | Decimal) and math.isfinite(value) and value == int(value):
        return int(value)
    raise ValueError(f"{name} must be an integer, got {value!r}")


def _as_finite_float(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        raise ValueError(f"{name} must be a number, got {value!r}")
    as_float = float(value)
    if not math.isfinite(as_float):
        raise ValueError(f"{name} must be finite, got {value!r}")
    return as_float


PARAM_FIELDS = frozenset(field.name for field in fields(DetectionParams))


def resolve_params(
    defaults: DetectionParams, override: Mapping[str, object] | None
) -> DetectionParams:
    """The per-symbol settings: each override field that is not None replaces the default.

    None therefore cannot switch a global ``min_delta_usd`` off for one symbol; use 0 for that.
    Unknown field names raise ValueError, as does a combination that fails validation.
    """
    if not override:
        return defaults
    unknown = sorted(set(override) - PARAM_FIELDS)
    if unknown:
        raise ValueError(f"unknown detection parameter(s): {', '.join(unknown)}")
    changes = {name: value for name, value in override.items() if value is not None}
    return replace(defaults, **changes) if changes else defaults


@dataclass(frozen=True, slots=True)
class Verdict:
    """The outcome of one evaluation. Fields that could not be computed are None."""

    reason: VerdictReason
    direction: Direction | None = None
    t_ms: int | None = None
    current: float | None = None
    baseline: float | None = None
    baseline_samples: int = 0
    pct_change: float | None = None
    abs_change: float | None = None
    abs_change_usd: float | None = None

    @property
    def is_alert(self) -> bool:
        return self.reason is VerdictReason.ALERT

    @property
    def is_blocked(self) -> bool:
        """The percentage threshold was crossed but a minimum-delta filter held the alert back."""
        return self.reason in BLOCKED_REASONS


def _judge(
    t_ms: int,
    current: float,
    baseline: float | None,
    baseline_samples: int,
    params: DetectionParams,
    mark_price: Number | None,
) -> Verdict:
    """The verdict for a baseline computed by either path; the single place the rule lives."""
    if baseline is None or baseline_samples < params.min_baseline_samples:
        return Verdict(
            VerdictReason.INSUFFICIENT_BASELINE,
            t_ms=t_ms,
            current=current,
            baseline_samples=baseline_samples,
        )
    if baseline == 0:
        return Verdict(
            VerdictReason.ZERO_BASELINE,
            t_ms=t_ms,
            current=current,
            baseline=baseline,
            baseline_samples=baseline_samples,
        )
    abs_change = current - baseline
    pct_change = abs_change / baseline
    if pct_change >= params.spike_threshold_pct:
        direction: Direction | None = Direction.UP
    elif pct_change <= -params.dump_threshold_pct:
        direction = Direction.DOWN
    else:
        direction = None

    price = usable_price(mark_price)
    abs_change_usd = abs(abs_change) * price if price is not None else None

    if direction is None:
        reason = VerdictReason.BELOW_THRESHOLD
    else:
        reason = minimums_verdict(
            abs_change, abs_change_usd, params.min_delta_contracts, params.min_delta_usd
        )
    return Verdict(
        reason,
        direction=direction,
        t_ms=t_ms,
        current=current,
        baseline=baseline,
        baseline_samples=baseline_samples,
        pct_change=pct_change,
        abs_change=abs_change,
        abs_change_usd=abs_change_usd,
    )


def minimums_verdict(
    abs_change: float,
    abs_change_usd: float | None,
    min_delta_contracts: float | None,
    min_delta_usd: float | None,
) -> VerdictReason:
    """ALERT for a move past its threshold when every minimum that is set holds, else the first
    that blocks it (contracts, then a missing price, then USD)."""
    if min_delta_contracts is not None and abs(abs_change) < min_delta_contracts:
        return VerdictReason.BLOCKED_MIN_DELTA_CONTRACTS
    if min_delta_usd is not None and abs_change_usd is None:
        return VerdictReason.MISSING_MARK_PRICE
    if min_delta_usd is not None and abs_change_usd < min_delta_usd:
        return VerdictReason.BLOCKED_MIN_DELTA_USD
    return VerdictReason.ALERT


def usable_price(mark_price: Number | None) -> float | None:
    """A finite price above 0, as float; None otherwise."""
    if mark_price is None or isinstance(mark_price, bool):
        return None
    price = float(mark_price)
    return price if math.isfinite(price) and price > 0 else None


def _median_of_sorted(values: Sequence[float]) -> float:
    count = len(values)
    middle = count // 2
    if count % 2:
        return values[middle]
    return (values[middle - 1] + values[middle]) / 2


def _checked_sample(t_ms: int, oi: Number) -> tuple[int, float]:
    t_ms = operator.index(t_ms)
    value = float(oi) + 0.0  # folds -0.0 into 0.0 so both median paths agree
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"open interest must be finite and >= 0, got {oi!r} at t_ms={t_ms}")
    return t_ms, value


def accepted_samples(samples: Iterable[Sample]) -> list[tuple[int, float]]:
    """The samples kept, in arrival order: each strictly newer than every one accepted before."""
    kept: list[tuple[int, float]] = []
    for t_ms, oi in samples:
        sample = _checked_sample(t_ms, oi)
        if not kept or sample[0] > kept[-1][0]:
            kept.append(sample)
    return kept


def evaluate_samples(
    samples: Iterable[Sample], params: DetectionParams, mark_price: Number | None = None
) -> Verdict:
    """The verdict at the latest accepted sample, recomputed from all samples (reference path).

    ``mark_price`` is only needed when ``params.min_delta_usd`` is set.
    """
    kept = accepted_samples(samples)
    if not kept:
        return Verdict(VerdictReason.NO_SAMPLES)
    t_now, current = kept[-1]
    in_window = sorted(
        oi for t_ms, oi in kept if params.w_low_ms <= t_now - t_ms <= params.w_high_ms
    )
    baseline = _median_of_sorted(in_window) if in_window else None
    return _judge(t_now, current, baseline, len(in_window), params, mark_price)


class BaselineTracker:
    """Incremental baseline of one symbol: O(log n) per new sample, same verdicts as
    ``evaluate_samples`` over the same samples in the same order.

    Holds samples younger than W_low in ``_pending`` and those aged within [W_low, W_high] in
    ``_window`` (both in time order) with their values in a SortedList; older samples are dropped.
    """

    __slots__ = ("_latest", "_pending", "_sorted_values", "_w_high_ms", "_w_low_ms", "_window")

    def __init__(self, w_low_sec: int = 1800, w_high_sec: int = 3600) -> None:
        checked = DetectionParams(w_low_sec=w_low_sec, w_high_sec=w_high_sec)
        self._w_low_ms = checked.w_low_ms
        self._w_high_ms = checked.w_high_ms
        self._pending: deque[tuple[int, float]] = deque()
        self._window: deque[tuple[int, float]] = deque()
        self._sorted_values: SortedList = SortedList()
        self._latest: tuple[int, float] | None = None

    @classmethod
    def for_params(cls, params: DetectionParams) -> "BaselineTracker":
        return cls(params.w_low_sec, params.w_high_sec)

    @classmethod
    def from_samples(
        cls, samples: Iterable[Sample], w_low_sec: int = 1800, w_high_sec: int = 3600
    ) -> "BaselineTracker":
        """Rebuild from stored samples (e.g. the Redis ring buffer plus backfilled history).

        Samples are sorted by time first, so a merged backfill may arrive in any order; of
        several samples with the same timestamp the first in the input is kept.
        """
        tracker = cls(w_low_sec, w_high_sec)
        for t_ms, oi in sorted(samples, key=operator.itemgetter(0)):
            tracker.add(t_ms, oi)
        return tracker

    @property
    def latest(self) -> tuple[int, float] | None:
        return self._latest

    @property
    def baseline_samples(self) -> int:
        return len(self._sorted_values)

    def __len__(self) -> int:
        return len(self._pending) + len(self._window)

    def add(self, t_ms: int, oi: Number) -> bool:
        """Take a new sample; False (and no change) if it is not newer than the latest one."""
        t_now, value = _checked_sample(t_ms, oi)
        if self._latest is not None and t_now <= self._latest[0]:
            return False
        self._latest = (t_now, value)
        self._pending.append(self._latest)
        while self._pending and t_now - self._pending[0][0] >= self._w_low_ms:
            aged = self._pending.popleft()
            self._window.append(aged)
            self._sorted_values.add(aged[1])
        while self._window and t_now - self._window[0][0] > self._w_high_ms:
            self._sorted_values.remove(self._window.popleft()[1])
        return True

    def baseline(self) -> float | None:
        """Median of the values in the [W_low, W_high] age window, None when it is empty."""
        if not self._sorted_values:
            return None
        return _median_of_sorted(self._sorted_values)

    def evaluate(self, params: DetectionParams, mark_price: Number | None = None) -> Verdict:
        """The verdict at the latest sample. ``params`` must use this tracker's windows."""
        if params.w_low_ms != self._w_low_ms or params.w_high_ms != self._w_high_ms:
            raise ValueError(
                f"params windows [{params.w_low_sec}, {params.w_high_sec}] s differ from the "
                f"tracker's [{self._w_low_ms // 1000}, {self._w_high_ms // 1000}] s"
            )
        if self._latest is None:
            return Verdict(VerdictReason.NO_SAMPLES)
        t_now, current = self._latest
        return _judge(t_now, current, self.baseline(), len(self._sorted_values), params, mark_price)


def cooldown_allows(last_alert_ms: int | None, now_ms: int, cooldown_sec: int) -> bool:
    """May a (symbol, direction) key alert at ``now_ms`` given its last alert time?

    Allowed when it never alerted or at least ``cooldown_sec`` has passed (the boundary itself
    is allowed). A last alert time later than ``now_ms`` blocks until the cooldown has run from it.
    """
    if last_alert_ms is None:
        return True
    return now_ms - last_alert_ms >= cooldown_sec * 1000


class CooldownBook:
    """In-memory last-alert times per (symbol, direction), for replays and tests.

    The service keeps these times in Redis; this class only mirrors ``cooldown_allows``.
    """

    __slots__ = ("_cooldown_sec", "_last_alert_ms")

    def __init__(self, cooldown_sec: int) -> None:
        self._cooldown_sec = cooldown_sec
        self._last_alert_ms: dict[tuple[str, Direction], int] = {}

    def allows(self, symbol: str, direction: Direction, now_ms: int) -> bool:
        return cooldown_allows(
            self._last_alert_ms.get((symbol, direction)), now_ms, self._cooldown_sec
        )

    def record(self, symbol: str, direction: Direction, now_ms: int) -> None:
        self._last_alert_ms[(symbol, direction)] = now_ms

    def admit(self, symbol: str, verdict: Verdict) -> bool:
        """True, and the time recorded, when the verdict is an alert that the cooldown lets out."""
        if not verdict.is_alert or verdict.direction is None or verdict.t_ms is None:
            return False
        if not self.allows(symbol, verdict.direction, verdict.t_ms):
            return False
        self.record(symbol, verdict.direction, verdict.t_ms)
        return True
