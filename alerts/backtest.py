"""Replaying a rule over stored samples: the alerts it would have raised and what held the others
back. Pure: numpy and alerts.rules, no I/O (alerts.backtest_services reads Postgres around it).

There is one implementation of a rule's semantics, alerts.rules (``SymbolTracker.observe`` for
the window, coverage, minimums and regimes; ``gate`` for re-arm, cooldown and the step). Two
drivers run it:

* ``replay_per_sample``: every sample through a SymbolTracker and every observation through the
  gate, as the live engine does with one sample per symbol per poll (the reference: ~30,000
  samples/s on this machine, bench/backtest_throughput.py).
* ``replay``: a vectorised scan first finds, per symbol, rule and direction, the samples where the
  gate could change anything: a crossing (move at or past the threshold) or a possible re-arm
  (move at or under ``rearm_ratio`` × threshold). Only those are evaluated exactly, by a
  SymbolTracker fed the samples of that one window (``_Local``), and gated in time order. Its
  answer is the per-sample driver's, alert for alert and count for count (tests/alerts/
  test_backtest_engine.py checks it on random series with hypothesis).

Why the scan never misses a sample the gate acts on: the gate changes state or fires only on an
observation that crossed (``move >= threshold``) or, while disarmed, on one at or under the
re-arm level; every other observation is ``GateAction.NONE``. For ``window_change`` the scan
computes the same move from the exact window extremes (a sparse table over the samples of
``[t - W, t]``, both ends inclusive as in ``WindowExtremes``); for ``median_baseline`` it bounds
the median by the baseline window's lowest and highest sample, which can only add candidates.
Both tests carry a relative slack of 1e-9, so a rounding difference can add a candidate, never
drop one. A ``relative`` rule's move (the change from the window's oldest sample, as a robust z
against the symbol's statistics) is computed exactly, with the engine's own arithmetic. A long
window (over 3 h) reads the coarse samples (the first of each 5-minute bucket, ``coarse_indices``,
what the live tracker feeds it) in ``[t - W, t]`` while the current value stays every sample's. Crossings are all evaluated (so the held-back counts are exact); of the possible
re-arms only the first valid one after each fire is (later ones find the gate already armed).
"""

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal

import numpy as np

from alerts.enums import Direction
from alerts.outcome_measures import Measurement, measure
from alerts.relative import ChangeStats
from alerts.rules import FireState, GateAction, Observation, Rule, RuleKind, SymbolTracker, gate
from oi.coarse import COARSE_BUCKET_MS

SLACK = 1e-9


def coarse_indices(times_ms: np.ndarray) -> np.ndarray:
    """Indices of the first sample of each coarse bucket (``oi.coarse.first_per_bucket``,
    vectorised) for times in increasing order."""
    if not len(times_ms):
        return np.zeros(0, dtype=np.int64)
    buckets = times_ms - times_ms % COARSE_BUCKET_MS
    return np.flatnonzero(np.diff(buckets, prepend=buckets[0] - 1))


@dataclass(frozen=True, slots=True)
class Series:
    """One symbol's samples in time order, each time once: epoch ms, open interest, mark price
    (NaN where none)."""

    symbol: str
    t_ms: np.ndarray
    oi: np.ndarray
    price: np.ndarray

    def __post_init__(self) -> None:
        if not (len(self.t_ms) == len(self.oi) == len(self.price)):
            raise ValueError("t_ms, oi and price must have the same length")
        if len(self.t_ms) > 1 and not np.all(np.diff(self.t_ms) > 0):
            raise ValueError(f"{self.symbol}: sample times must be strictly increasing")

    def __len__(self) -> int:
        return len(self.t_ms)

    def until(self, end_ms: int) -> "Series":
        """The samples at or before ``end_ms`` (the replayed part of a read that goes on past
        the period for the outcomes)."""
        stop = int(np.searchsorted(self.t_ms, end_ms, side="right"))
        if stop == len(self.t_ms):
            return self
        return Series(self.symbol, self.t_ms[:stop], self.oi[:stop], self.price[:stop])


def forward_outcome(
    series: Series,
    *,
    t_ms: int,
    oi_at_alert: float,
    price_at_alert: float | None,
    horizon_sec: int,
    tolerance_ms: int,
) -> Measurement:
    """What followed an alert at ``t_ms``, as the live outcomes job measures it
    (alerts.outcome_measures): the sample nearest to t + horizon within the tolerance, else no
    data; a missing price at the alert is taken from its own sample."""
    times = series.t_ms
    target = t_ms + horizon_sec * 1000
    right = int(np.searchsorted(times, target))
    near = [
        (abs(int(times[index]) - target), index)
        for index in (right - 1, right)
        if 0 <= index < len(times) and abs(int(times[index]) - target) <= tolerance_ms
    ]
    best = min(near)[1] if near else None
    if price_at_alert is None:
        at = int(np.searchsorted(times, t_ms))
        if at < len(times) and int(times[at]) == t_ms:
            price_at_alert = _price_or_none(float(series.price[at]))
    sample_price = _price_or_none(float(series.price[best])) if best is not None else None
    return measure(
        oi_at_alert=_decimal(oi_at_alert),
        price_at_alert=_decimal(price_at_alert),
        sample_oi=_decimal(float(series.oi[best])) if best is not None else None,
        sample_price=_decimal(sample_price),
        sample_found=best is not None,
    )


def _decimal(value: float | None) -> Decimal | None:
    return Decimal(repr(value)) if value is not None else None


@dataclass(frozen=True, slots=True)
class BacktestAlert:
    """An alert the rule would have raised."""

    symbol: str
    rule_id: int
    direction: Direction
    t_ms: int
    current: float
    reference: float
    reference_kind: str
    pct_change: float
    price_change_pct: float | None
    mark_price: float | None
    regime: str

    @classmethod
    def of(cls, symbol: str, observation: Observation) -> "BacktestAlert":
        return cls(
            symbol=symbol,
            rule_id=observation.rule.rule_id,
            direction=observation.direction,
            t_ms=observation.t_ms,
            current=observation.current,
            reference=observation.reference,
            reference_kind=observation.reference_kind.value,
            pct_change=observation.pct_change,
            price_change_pct=observation.price_change_pct,
            mark_price=observation.price_now,
            regime=observation.regime.value,
        )


@dataclass(slots=True)
class BacktestResult:
    """The alerts in time order, and per gate action and per blocking reason how many
    observations in the period got it (``GateAction.NONE`` is not counted)."""

    alerts: list[BacktestAlert] = field(default_factory=list)
    actions: Counter = field(default_factory=Counter)
    blocked_reasons: Counter = field(default_factory=Counter)
    samples: int = 0
    """Samples replayed inside the period (warm-up samples before it not counted)."""

    def merge(self, other: "BacktestResult") -> None:
        self.alerts.extend(other.alerts)
        self.actions.update(other.actions)
        self.blocked_reasons.update(other.blocked_reasons)
        self.samples += other.samples

    def sort(self) -> None:
        self.alerts.sort(key=lambda a: (a.t_ms, a.symbol, a.rule_id, a.direction.value))


def _price_or_none(value: float) -> float | None:
    return None if value != value else value  # NaN -> None


def _count(result: BacktestResult, action: GateAction, observation: Observation) -> None:
    if action is GateAction.NONE:
        return
    result.actions[action.value] += 1
    if action is GateAction.BLOCKED:
        result.blocked_reasons[observation.reason.value] += 1


def replay_per_sample(
    rules: Mapping[str, Rule],
    series: Series,
    *,
    start_ms: int,
    stats: Mapping[int, ChangeStats] | None = None,
) -> BacktestResult:
    """Every sample through the tracker; observations and the gate from ``start_ms`` on (the
    samples before it only fill the windows). ``rules``: the symbol's rules by name; ``stats``:
    the symbol's change statistics by window (relative rules; none: no verdict)."""
    stats = stats or {}
    result = BacktestResult()
    tracker = SymbolTracker(rules.values())
    states: dict[tuple[int, Direction], FireState] = {}
    times, values, prices = series.t_ms.tolist(), series.oi.tolist(), series.price.tolist()
    for t_ms, value, price in zip(times, values, prices, strict=True):
        price = _price_or_none(price)
        tracker.add(t_ms, value, price)
        if t_ms < start_ms:
            continue
        result.samples += 1
        for rule in rules.values():
            rule_stats = stats.get(rule.window_sec) if rule.kind is RuleKind.RELATIVE else None
            for observation in tracker.observe(rule, price, rule_stats):
                key = (rule.rule_id, observation.direction)
                action, state = gate(states.get(key), observation)
                if state is not None:
                    states[key] = state
                _count(result, action, observation)
                if action is GateAction.FIRE:
                    result.alerts.append(BacktestAlert.of(series.symbol, observation))
    result.sort()
    return result


# The vectorised scan


class _RangeExtremes:
    """Lowest and highest value over any index range [lo, hi] in O(1) (a sparse table)."""

    __slots__ = ("_maxs", "_mins")

    def __init__(self, values: np.ndarray) -> None:
        self._mins = [values]
        self._maxs = [values]
        span = 1
        while span * 2 <= len(values):
            mins, maxs = self._mins[-1], self._maxs[-1]
            self._mins.append(np.minimum(mins[:-span], mins[span:]))
            self._maxs.append(np.maximum(maxs[:-span], maxs[span:]))
            span *= 2

    def query(self, lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Elementwise min and max of values[lo..hi] (inclusive); lo <= hi everywhere."""
        lengths = hi - lo + 1
        levels = np.zeros(len(lo), dtype=np.int64)
        nonzero = lengths > 0
        levels[nonzero] = np.floor(np.log2(lengths[nonzero])).astype(np.int64)
        mins = np.empty(len(lo))
        maxs = np.empty(len(lo))
        for level in np.unique(levels):
            where = levels == level
            start, end = lo[where], hi[where] - (1 << int(level)) + 1
            table_min, table_max = self._mins[level], self._maxs[level]
            mins[where] = np.minimum(table_min[start], table_min[end])
            maxs[where] = np.maximum(table_max[start], table_max[end])
        return mins, maxs


class _Reference:
    """The samples a rule's window holds: every sample, or for a long window the coarse ones
    (their times, values, range extremes and positions in the series)."""

    __slots__ = ("extremes", "positions", "times", "values")

    def __init__(self, series: Series, positions: np.ndarray | None) -> None:
        self.positions = positions
        if positions is None:
            self.times, self.values = series.t_ms, series.oi
        else:
            self.times, self.values = series.t_ms[positions], series.oi[positions]
        self.extremes = _RangeExtremes(self.values)


def _scan_moves(
    rule: Rule, series: Series, reference: _Reference, stats: ChangeStats | None
) -> dict[Direction, tuple[np.ndarray, np.ndarray]]:
    """Per direction: (the samples' move at or past which they may cross, the move at or under
    which they may re-arm), each a bound that errs on the side of a candidate."""
    times, values = series.t_ms, series.oi
    ref_times, extremes = reference.times, reference.extremes
    if rule.kind is RuleKind.RELATIVE:
        return _relative_moves(rule, series, reference, stats)
    if rule.kind is RuleKind.WINDOW_CHANGE:
        lo = np.searchsorted(ref_times, times - rule.window_sec * 1000, side="left")
        hi = np.searchsorted(ref_times, times, side="right") - 1
        has_reference = hi >= lo
        safe_lo, safe_hi = np.where(has_reference, lo, 0), np.where(has_reference, hi, 0)
        low, high = extremes.query(safe_lo, np.maximum(safe_hi, safe_lo))
        cross_low = rearm_low = low
        cross_high = rearm_high = high
    else:
        lo = np.searchsorted(ref_times, times - rule.window_sec * 1000, side="left")
        hi = np.searchsorted(ref_times, times - rule.baseline_from_sec * 1000, side="right") - 1
        has_reference = hi >= lo
        safe_lo, safe_hi = np.where(has_reference, lo, 0), np.where(has_reference, hi, 0)
        low, high = extremes.query(safe_lo, np.maximum(safe_hi, safe_lo))
        # the median lies between the baseline's extremes
        cross_low, rearm_low = low, high  # UP: cross against the low, re-arm against the high
        cross_high, rearm_high = high, low  # DOWN: cross against the high, re-arm against the low
    moves = {}
    with np.errstate(divide="ignore", invalid="ignore"):
        if Direction.UP in rule.directions:
            cross = (values - cross_low) / cross_low
            rearm = (values - rearm_low) / rearm_low
            moves[Direction.UP] = _guarded(cross, rearm, cross_low, rearm_low, has_reference)
        if Direction.DOWN in rule.directions:
            cross = (cross_high - values) / cross_high
            rearm = (rearm_high - values) / rearm_high
            moves[Direction.DOWN] = _guarded(cross, rearm, cross_high, rearm_high, has_reference)
    return moves


def _relative_moves(
    rule: Rule, series: Series, reference: _Reference, stats: ChangeStats | None
) -> dict[Direction, tuple[np.ndarray, np.ndarray]]:
    """The exact z of every sample against the window's oldest sample (the engine's arithmetic:
    ``((current - start) / start - median) / scale``); no candidate without statistics."""
    times, values = series.t_ms, series.oi
    lo = np.searchsorted(reference.times, times - rule.window_sec * 1000, side="left")
    hi = np.searchsorted(reference.times, times, side="right") - 1
    has_reference = (hi >= lo) & (stats is not None)
    start = reference.values[np.minimum(lo, len(reference.values) - 1)]
    moves = {}
    with np.errstate(divide="ignore", invalid="ignore"):
        if stats is not None:
            z = ((values - start) / start - stats.median) / stats.scale
        else:
            z = np.zeros(len(times))
        for direction in rule.directions:
            move = z if direction is Direction.UP else -z
            moves[direction] = _guarded(move, move, start, start, has_reference)
    return moves


def _guarded(cross, rearm, cross_ref, rearm_ref, has_reference):
    """A zero reference (no observation live) or a NaN becomes a candidate both ways; a sample
    with no baseline at all is neither."""
    cross = np.where((cross_ref == 0) | np.isnan(cross), np.inf, cross)
    rearm = np.where((rearm_ref == 0) | np.isnan(rearm), -np.inf, rearm)
    cross = np.where(has_reference, cross, -np.inf)
    rearm = np.where(has_reference, rearm, np.inf)
    return cross, rearm


class _Columns:
    """A series' samples as Python lists (prices None where missing), made once and only when an
    observation is needed: the engine takes Python numbers."""

    __slots__ = ("_lists", "_series")

    def __init__(self, series: Series) -> None:
        self._series = series
        self._lists: tuple[list, list, list] | None = None

    def get(self) -> tuple[list, list, list]:
        if self._lists is None:
            series = self._series
            prices = [_price_or_none(price) for price in series.price.tolist()]
            self._lists = (series.t_ms.tolist(), series.oi.tolist(), prices)
        return self._lists


class _Local:
    """A SymbolTracker of one rule, fed only the samples the observation at a given index
    needs: from the last sample older than the rule's window (the window's anchor, which its
    coverage check reads) to that index. Successive indices close together are fed
    incrementally."""

    __slots__ = ("_columns", "_fed_to", "_observed", "_rule", "_starts", "_stats", "_tracker")

    def __init__(
        self, rule: Rule, series: Series, columns: _Columns, reference: _Reference,
        stats: ChangeStats | None,
    ) -> None:  # fmt: skip
        self._rule = rule
        self._stats = stats
        times = series.t_ms
        anchors = np.maximum(
            np.searchsorted(reference.times, times - rule.window_sec * 1000, side="left") - 1, 0
        )
        # a long window's anchor is a coarse sample: the first of its bucket, so a tracker fed
        # from it downsamples the rest as the whole series' tracker does
        self._starts = anchors if reference.positions is None else reference.positions[anchors]
        self._columns = columns
        self._tracker: SymbolTracker | None = None
        self._fed_to = -1
        self._observed: dict[int, dict[Direction, Observation]] = {}

    def observe(self, index: int) -> dict[Direction, Observation]:
        """The rule's observations at ``index`` by direction (remembered: both directions' walks
        ask for some of the same indices)."""
        if index not in self._observed:
            self._observed[index] = {o.direction: o for o in self._observe(index)}
        return self._observed[index]

    def _observe(self, index: int) -> list[Observation]:
        start = int(self._starts[index])
        if self._tracker is None or self._fed_to >= index or self._fed_to < start - 1:
            self._tracker = SymbolTracker((self._rule,))
            self._fed_to = start - 1
        tracker = self._tracker
        times, values, prices = self._columns.get()
        add = tracker.add
        for position in range(self._fed_to + 1, index + 1):
            add(times[position], values[position], prices[position])
        self._fed_to = index
        return tracker.observe(self._rule, prices[index], self._stats)


def replay(
    rules: Mapping[str, Rule],
    series: Series,
    *,
    start_ms: int,
    exact_counts: bool = True,
    stats: Mapping[int, ChangeStats] | None = None,
) -> BacktestResult:
    """The per-sample replay's answer (``replay_per_sample``), computed from a vectorised scan
    and the exact engine run only where the gate can act.

    ``exact_counts=False`` also skips the crossings the gate cannot act on: while it is disarmed,
    those inside the cooldown (integer times), and those whose move (the scan's, an upper bound)
    stays under the last fired move plus the step (or all of them when the rule has no step).
    Each would be held back or blocked; they are counted together as ``held_not_evaluated``
    instead of by reason. The alerts are the same."""
    result = BacktestResult()
    count = len(series)
    first = int(np.searchsorted(series.t_ms, start_ms, side="left"))
    result.samples = count - first
    if count == 0 or first >= count:
        return result
    stats = stats or {}
    references: dict[bool, _Reference] = {}
    columns = _Columns(series)
    for rule in rules.values():
        if rule.long_window not in references:
            positions = coarse_indices(series.t_ms) if rule.long_window else None
            references[rule.long_window] = _Reference(series, positions)
        reference = references[rule.long_window]
        rule_stats = stats.get(rule.window_sec) if rule.kind is RuleKind.RELATIVE else None
        moves = _scan_moves(rule, series, reference, rule_stats)
        observe_at = _Local(rule, series, columns, reference, rule_stats).observe
        for direction, (cross, rearm) in moves.items():
            threshold = rule.threshold(direction)
            crossings = np.flatnonzero(cross[first:] >= threshold * (1 - SLACK)) + first
            rearms = np.flatnonzero(rearm[first:] <= threshold * rule.rearm_ratio * (1 + SLACK))
            rearms += first
            skippable = None
            if not exact_counts:
                skippable = (cross, series.t_ms, _is_candidate(rearms, count))
            _gate_direction(
                result, series.symbol, direction, crossings, rearms, observe_at, rule, skippable
            )
    result.sort()
    return result


HELD_NOT_EVALUATED = "held_not_evaluated"


def _is_candidate(indices: np.ndarray, count: int) -> np.ndarray:
    mask = np.zeros(count, dtype=bool)
    mask[indices] = True
    return mask


def _gate_direction(
    result, symbol, direction, crossings, rearms, observe_at, rule, skippable
) -> None:
    """Walk the crossings in time order through the gate; while disarmed, look for the first
    re-arm before the next crossing."""
    state: FireState | None = None
    bound = len(crossings)
    # the re-arm candidates before each crossing and after it, as positions in ``rearms``
    rearms_before = [*np.searchsorted(rearms, crossings, side="left").tolist(), len(rearms)]
    rearms_after = np.searchsorted(rearms, crossings, side="right").tolist()
    crossing_list = crossings.tolist()
    position = 0
    while True:
        next_crossing = crossing_list[position] if position < bound else None
        if state is not None and not state.armed:
            # the first valid re-arm after the previous crossing, before the next one
            lo = rearms_after[position - 1] if position else 0
            hi = rearms_before[position]
            for index in rearms[lo:hi].tolist():
                observation = observe_at(index).get(direction)
                if observation is None:
                    continue
                action, new_state = gate(state, observation)
                if action is GateAction.REARM:
                    state = new_state
                    _count(result, action, observation)
                    break
        if next_crossing is None:
            return
        if skippable is not None and _cannot_fire(state, next_crossing, rule, skippable):
            result.actions[HELD_NOT_EVALUATED] += 1
            position += 1
            continue
        observation = observe_at(next_crossing).get(direction)
        if observation is not None:
            action, new_state = gate(state, observation)
            if new_state is not None:
                state = new_state
            _count(result, action, observation)
            if action is GateAction.FIRE:
                result.alerts.append(BacktestAlert.of(symbol, observation))
        position += 1


def _cannot_fire(state: FireState | None, index: int, rule: Rule, skippable) -> bool:
    """Whether the gate, disarmed, is sure to hold back or block the crossing at ``index`` (and
    the sample is no possible re-arm, which a median rule's bound allows)."""
    if state is None or state.armed:
        return False
    moves, times, is_rearm = skippable
    if is_rearm[index]:
        return False
    if int(times[index]) - state.fired_ms < rule.cooldown_sec * 1000:
        return True
    if rule.step_pct is None:
        return True
    return bool(moves[index] < (state.move + rule.step_pct) * (1 - SLACK))
