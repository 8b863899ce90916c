"""Alert rules as data, evaluated incrementally per symbol, and their re-arm logic. Pure: stdlib
and sortedcontainers only, no I/O.

Two kinds of rule:

* ``window_change`` ("X% within W"): the latest sample against the *extreme* of the samples of
  the last W (ages 0..W, both ends inclusive): the lowest for a spike, the highest for a dump.
  The extreme, not the window's first sample, because "OI rose 3% within 5 minutes" means that
  somewhere in those 5 minutes OI stood 3% lower than now: a rise that started after a dip, or
  mid-window, is caught as soon as it completes, and the rule never misses a move that a
  start-of-window reference would catch (the minimum is never above the first sample). Kept with
  monotonic deques, so each new sample costs O(1) amortised, never a re-read of the window.
* ``median_baseline``: the design's rule, against the median of the samples aged
  ``baseline_from_sec``..``window_sec`` (``BaselineTracker``).
* ``relative``: the change over the window (the latest sample against the window's oldest) as a
  robust z against the symbol's own distribution of that window's change (alerts.relative); its
  thresholds are in z. The statistics are data handed to ``observe``: without them, no verdict.

Long windows (over 3 h, up to 24 h; oi.coarse): a SymbolTracker feeds their window only the first
sample of each 5-minute bucket of what it is given (what the coarse ring holds), and moves their
window forward on every sample; the latest sample is still the one compared. So a 24 h window
costs 288 samples, not 8,640, and its verdicts are the same whether the tracker was fed every
sample or the coarse ring's samples followed by the full-resolution ring's (a rebuilt tracker).

No verdict until the rule's window is covered: a ``window_change`` tracker must hold a sample at
least W old (backfilled history counts); a ``median_baseline`` one needs ``min_samples`` in its
baseline window.

Re-arm (``gate``): after a rule fires for a (symbol, direction) it is disarmed. It re-arms once
the move falls back to ``rearm_ratio`` × threshold (0.5 by default: half of it, so a value
oscillating just around the threshold alerts once, not on every crossing). It fires again when it
is armed, or, without re-arming, when the move has grown by ``step_pct`` beyond the move it last
fired at; and in both cases only once ``cooldown_sec`` has passed since it last fired. A move
held back by a minimum-delta filter, or by the rule's regimes (a rule may ask for, say, short
builds only: OI up with the price down, see oi.regimes), is not an alert and leaves the state
untouched.
"""

import math
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from decimal import Decimal
from enum import StrEnum

from sortedcontainers import SortedList

from alerts.enums import Direction, VerdictReason
from alerts.relative import ChangeStats
from oi.coarse import COARSE_BUCKET_MS, is_long_window
from oi.regimes import Regime, regime_of

Number = int | float | Decimal
PriceSample = tuple[int, float, float | None]  # (t_ms, open interest, mark price or None)


class RuleKind(StrEnum):
    WINDOW_CHANGE = "window_change"
    MEDIAN_BASELINE = "median_baseline"
    RELATIVE = "relative"


class Reference(StrEnum):
    WINDOW_LOW = "window_low"
    WINDOW_HIGH = "window_high"
    MEDIAN = "median"
    WINDOW_START = "window_start"


class Scope(StrEnum):
    ALL = "all"
    ONLY = "only"
    EXCEPT = "except"


@dataclass(frozen=True, slots=True)
class Rule:
    """One rule with its thresholds as fractions (0.03 = 3%) and times in seconds.

    ``up_threshold`` and ``down_threshold`` are the rule's threshold, each possibly overridden
    per symbol (an override's spike/dump thresholds); for a ``relative`` rule they are robust
    z values (6 = six robust standard deviations), not fractions."""

    rule_id: int
    name: str
    kind: RuleKind
    window_sec: int
    up_threshold: float
    down_threshold: float
    directions: tuple[Direction, ...] = (Direction.UP, Direction.DOWN)
    baseline_from_sec: int | None = None
    min_delta_contracts: float | None = None
    min_delta_usd: float | None = None
    cooldown_sec: int = 900
    rearm_ratio: float = 0.5
    step_pct: float | None = None
    min_samples: int = 3
    scope: Scope = Scope.ALL
    symbols: frozenset[str] = frozenset()
    regimes: frozenset[Regime] = frozenset()
    """Fire only on moves of these OI/price regimes (oi.regimes); empty: any regime."""
    liquidity_tiers: bool = False
    """The thresholds are multiplied by the symbol's liquidity tier (``scaled``)."""

    def __post_init__(self) -> None:
        if self.window_sec <= 0:
            raise ValueError(f"window_sec must be > 0, got {self.window_sec}")
        for name in ("up_threshold", "down_threshold"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be > 0, got {value}")
        if self.down_threshold > 1 and self.kind is not RuleKind.RELATIVE:
            raise ValueError(f"down_threshold must be <= 1, got {self.down_threshold}")
        if not 0 <= self.rearm_ratio < 1:
            raise ValueError(f"rearm_ratio must be in [0, 1), got {self.rearm_ratio}")
        if self.step_pct is not None and not self.step_pct > 0:
            raise ValueError(f"step_pct must be > 0 or None, got {self.step_pct}")
        if self.cooldown_sec < 0:
            raise ValueError(f"cooldown_sec must be >= 0, got {self.cooldown_sec}")
        if self.kind is RuleKind.MEDIAN_BASELINE:
            if self.baseline_from_sec is None or not 0 < self.baseline_from_sec < self.window_sec:
                raise ValueError("a median_baseline rule needs 0 < baseline_from_sec < window_sec")
            if self.min_samples < 1:
                raise ValueError(f"min_samples must be >= 1, got {self.min_samples}")
        elif self.baseline_from_sec is not None:
            raise ValueError("baseline_from_sec belongs to median_baseline rules only")
        if self.kind is RuleKind.RELATIVE and self.window_sec * 1000 < COARSE_BUCKET_MS:
            raise ValueError("a relative rule's window must be at least 300 s (its statistics "
                             "are of 5-minute samples)")  # fmt: skip
        if not self.directions:
            raise ValueError("a rule needs at least one direction")
        if self.liquidity_tiers and self.kind is RuleKind.RELATIVE:
            raise ValueError("a relative rule is already relative to each symbol: no tiers")

    @property
    def window_key(self) -> tuple[RuleKind, int, int | None]:
        """Rules with the same key share one tracker per symbol (a relative rule reads the same
        window as a window_change one)."""
        if self.kind is RuleKind.RELATIVE:
            return (RuleKind.WINDOW_CHANGE, self.window_sec, None)
        return (self.kind, self.window_sec, self.baseline_from_sec)

    @property
    def long_window(self) -> bool:
        """Evaluated against coarse samples (oi.coarse)."""
        return is_long_window(self.window_sec)

    def applies_to(self, symbol: str) -> bool:
        if self.scope is Scope.ONLY:
            return symbol in self.symbols
        if self.scope is Scope.EXCEPT:
            return symbol not in self.symbols
        return True

    def threshold(self, direction: Direction) -> float:
        return self.up_threshold if direction is Direction.UP else self.down_threshold

    def scaled(self, multiplier: float) -> "Rule":
        """This rule with its thresholds × ``multiplier`` (a liquidity tier's), a dump's at most
        100%."""
        if multiplier == 1:
            return self
        return replace(
            self,
            up_threshold=self.up_threshold * multiplier,
            down_threshold=min(self.down_threshold * multiplier, 1.0),
        )

    def overridden(self, override: Mapping[str, object]) -> "Rule":
        """This rule with a symbol's override on top; fields that are None keep the rule's."""
        mapping = {
            "spike_threshold_pct": "up_threshold",
            "dump_threshold_pct": "down_threshold",
            "min_delta_contracts": "min_delta_contracts",
            "min_delta_usd": "min_delta_usd",
            "cooldown_sec": "cooldown_sec",
        }
        changes = {}
        for source, target in mapping.items():
            value = override.get(source)
            if value is not None:
                changes[target] = int(value) if target == "cooldown_sec" else float(value)
        return replace(self, **changes) if changes else self


@dataclass(frozen=True, slots=True)
class Observation:
    """One rule, one direction, at a symbol's latest sample.

    ``move`` is the change in the rule's direction as a positive-is-further fraction: for UP
    ``(current - reference) / reference``, for DOWN ``(reference - current) / reference``.
    ``reason`` is ALERT, BELOW_THRESHOLD or one of the blocked reasons."""

    rule: Rule
    direction: Direction
    reason: VerdictReason
    t_ms: int
    current: float
    reference: float
    reference_kind: Reference
    move: float
    abs_change: float
    abs_change_usd: float | None
    price_now: float | None
    price_reference: float | None
    price_window_start: float | None

    @property
    def crossed(self) -> bool:
        return self.reason is not VerdictReason.BELOW_THRESHOLD

    @property
    def pct_change(self) -> float:
        """Signed change against the reference (negative for a dump)."""
        return (self.current - self.reference) / self.reference

    @property
    def price_change_pct(self) -> float | None:
        if self.price_now is None or not self.price_window_start:
            return None
        return (self.price_now - self.price_window_start) / self.price_window_start

    @property
    def regime(self) -> Regime:
        """The OI/price regime of the move: the signed OI change against the reference, the
        price change over the rule's window."""
        return regime_of(
            oi_change=self.pct_change,
            price_change=self.price_change_pct,
            window_sec=self.rule.window_sec,
        )

    @property
    def oi_usd_before(self) -> float | None:
        price = self.price_reference if self.price_reference is not None else self.price_now
        return self.reference * price if price is not None else None

    @property
    def oi_usd_after(self) -> float | None:
        return self.current * self.price_now if self.price_now is not None else None


class WindowExtremes:
    """The lowest and highest samples of the last ``window_sec`` and its oldest sample, kept in
    monotonic deques (O(1) amortised per sample), and whether samples cover the window.

    Covered: a sample at or before the window's start exists (the last one to leave the window)
    and no two neighbouring samples from it to now lie further apart than ``max_gap_ms``
    (a quarter of the window, at least 5.5 min so 5-minute backfilled history counts). After a
    hole in the data there is no verdict until the window has moved past it."""

    __slots__ = (
        "_anchor_t", "_gaps", "_highs", "_in_window", "_last_t", "_lows", "_max_gap_ms",
        "_window_ms",
    )  # fmt: skip

    def __init__(self, window_sec: int) -> None:
        self._window_ms = window_sec * 1000
        self._max_gap_ms = max(self._window_ms // 4, 330_000)
        self._lows: deque[PriceSample] = deque()  # values increasing
        self._highs: deque[PriceSample] = deque()  # values decreasing
        self._in_window: deque[PriceSample] = deque()
        self._gaps: deque[tuple[int, int]] = deque()  # (t, gap to the previous sample), decreasing
        self._anchor_t: int | None = None
        self._last_t: int | None = None  # the previous sample (the window may have moved past it)

    def add(self, sample: PriceSample) -> None:
        t_now, value, _ = sample
        if self._last_t is not None:
            gap = t_now - self._last_t
            while self._gaps and self._gaps[-1][1] <= gap:
                self._gaps.pop()
            self._gaps.append((t_now, gap))
        self._last_t = t_now
        while self._lows and self._lows[-1][1] >= value:
            self._lows.pop()
        self._lows.append(sample)
        while self._highs and self._highs[-1][1] <= value:
            self._highs.pop()
        self._highs.append(sample)
        self._in_window.append(sample)
        self._evict(t_now - self._window_ms)

    def advance(self, t_now: int) -> None:
        """Move the window to end at ``t_now`` without a sample (a long window between its
        coarse samples)."""
        if self._in_window:
            self._evict(t_now - self._window_ms)

    def _evict(self, cutoff: int) -> None:
        while self._in_window and self._in_window[0][0] < cutoff:
            self._anchor_t = self._in_window.popleft()[0]
        for queue in (self._lows, self._highs):
            while queue and queue[0][0] < cutoff:
                queue.popleft()
        # a gap counts while its earlier end is the anchor or inside the window
        while self._gaps and self._anchor_t is not None and self._gaps[0][0] <= self._anchor_t:
            self._gaps.popleft()

    def covered(self, t_now: int) -> bool:
        if not self._in_window:
            return False
        if self._anchor_t is None and self._in_window[0][0] > t_now - self._window_ms:
            return False
        return not self._gaps or self._gaps[0][1] <= self._max_gap_ms

    @property
    def low(self) -> PriceSample:
        return self._lows[0]

    @property
    def high(self) -> PriceSample:
        return self._highs[0]

    @property
    def oldest(self) -> PriceSample:
        return self._in_window[0]

    def __len__(self) -> int:
        return len(self._in_window)


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


def median_of_sorted(values) -> float:
    count = len(values)
    middle = count // 2
    if count % 2:
        return values[middle]
    return (values[middle - 1] + values[middle]) / 2


class BaselineTracker:
    """The median of the samples aged ``w_low_sec``..``w_high_sec`` (both ends inclusive) at the
    latest sample: O(log n) per new sample.

    Holds samples younger than W_low in ``_pending`` and those aged within [W_low, W_high] in
    ``_window`` (both in time order) with their values in a SortedList; older samples are dropped.
    Callers feed it samples strictly newer than the last (``SymbolTracker.add`` checks).
    """

    __slots__ = ("_pending", "_sorted_values", "_w_high_ms", "_w_low_ms", "_window")

    def __init__(self, w_low_sec: int, w_high_sec: int) -> None:
        if not 0 < w_low_sec < w_high_sec:
            raise ValueError(f"needs 0 < w_low_sec < w_high_sec, got {w_low_sec}, {w_high_sec}")
        self._w_low_ms = w_low_sec * 1000
        self._w_high_ms = w_high_sec * 1000
        self._pending: deque[tuple[int, float]] = deque()
        self._window: deque[tuple[int, float]] = deque()
        self._sorted_values: SortedList = SortedList()

    @property
    def baseline_samples(self) -> int:
        return len(self._sorted_values)

    def add(self, t_now: int, value: float) -> None:
        self._pending.append((t_now, value))
        self.advance(t_now)

    def advance(self, t_now: int) -> None:
        """Age the samples to ``t_now`` (a long window between its coarse samples)."""
        while self._pending and t_now - self._pending[0][0] >= self._w_low_ms:
            aged = self._pending.popleft()
            self._window.append(aged)
            self._sorted_values.add(aged[1])
        while self._window and t_now - self._window[0][0] > self._w_high_ms:
            self._sorted_values.remove(self._window.popleft()[1])

    def baseline(self) -> float | None:
        """Median of the values in the [W_low, W_high] age window, None when it is empty."""
        if not self._sorted_values:
            return None
        return median_of_sorted(self._sorted_values)


class _MedianWindow:
    """A BaselineTracker plus the prices it needs for context (the oldest in-window price)."""

    __slots__ = ("_prices", "_window_ms", "tracker")

    def __init__(self, baseline_from_sec: int, window_sec: int) -> None:
        self.tracker = BaselineTracker(baseline_from_sec, window_sec)
        self._window_ms = window_sec * 1000
        self._prices: deque[tuple[int, float | None]] = deque()

    def add(self, sample: PriceSample) -> None:
        t_now, value, price = sample
        self.tracker.add(t_now, value)
        self._prices.append((t_now, price))
        self._evict(t_now)

    def advance(self, t_now: int) -> None:
        self.tracker.advance(t_now)
        self._evict(t_now)

    def _evict(self, t_now: int) -> None:
        cutoff = t_now - self._window_ms
        while self._prices and self._prices[0][0] < cutoff:
            self._prices.popleft()

    @property
    def oldest_price(self) -> float | None:
        return self._prices[0][1] if self._prices else None


class SymbolTracker:
    """Everything one symbol needs to evaluate a set of rules at its latest sample. Long
    windows get the first sample of each coarse bucket (oi.coarse) and move forward on every
    other sample."""

    __slots__ = ("_bucket", "_fine", "_latest", "_long", "_windows")

    def __init__(self, rules: Iterable[Rule]) -> None:
        self._windows: dict[tuple[RuleKind, int, int | None], WindowExtremes | _MedianWindow] = {}
        for rule in rules:
            if rule.window_key in self._windows:
                continue
            if rule.window_key[0] is RuleKind.WINDOW_CHANGE:
                self._windows[rule.window_key] = WindowExtremes(rule.window_sec)
            else:
                self._windows[rule.window_key] = _MedianWindow(
                    rule.baseline_from_sec, rule.window_sec
                )
        self._fine = [w for key, w in self._windows.items() if not is_long_window(key[1])]
        self._long = [w for key, w in self._windows.items() if is_long_window(key[1])]
        self._bucket: int | None = None
        self._latest: PriceSample | None = None

    @property
    def latest(self) -> PriceSample | None:
        return self._latest

    def add(self, t_ms: int, oi: Number, price: Number | None = None) -> bool:
        """Take a sample; False (and no change) unless it is newer than the latest one."""
        value = float(oi) + 0.0
        if not math.isfinite(value) or value < 0:
            raise ValueError(f"open interest must be finite and >= 0, got {oi!r} at t_ms={t_ms}")
        if self._latest is not None and t_ms <= self._latest[0]:
            return False
        price_or_none = usable_price(price)
        sample = (int(t_ms), value, price_or_none)
        self._latest = sample
        for window in self._fine:
            window.add(sample)
        if self._long:
            bucket = sample[0] - sample[0] % COARSE_BUCKET_MS
            if bucket != self._bucket:
                self._bucket = bucket
                for window in self._long:
                    window.add(sample)
            else:
                for window in self._long:
                    window.advance(sample[0])
        return True

    def observe(
        self, rule: Rule, mark_price: Number | None = None, stats: ChangeStats | None = None
    ) -> list[Observation]:
        """Observations of ``rule`` at the latest sample, one per direction; none when the
        rule's window is not yet covered or the reference is 0, nor for a relative rule
        without the symbol's ``stats`` of that window."""
        if self._latest is None:
            return []
        t_now, current, sample_price = self._latest
        price_now = usable_price(mark_price)
        if price_now is None:
            price_now = sample_price
        window = self._windows[rule.window_key]
        observations = []
        if rule.kind is RuleKind.RELATIVE:
            if stats is None or not window.covered(t_now):
                return []
            _, start, start_price = window.oldest
            for direction in rule.directions:
                observation = _observe(
                    rule, direction, t_now, current, start, Reference.WINDOW_START, price_now,
                    start_price, start_price, stats,
                )  # fmt: skip
                if observation is not None:
                    observations.append(observation)
            return observations
        if isinstance(window, WindowExtremes):
            if not window.covered(t_now):
                return []
            start_price = window.oldest[2]
            for direction in rule.directions:
                _, reference, ref_price = window.low if direction is Direction.UP else window.high
                kind = Reference.WINDOW_LOW if direction is Direction.UP else Reference.WINDOW_HIGH
                observation = _observe(
                    rule, direction, t_now, current, reference, kind, price_now, ref_price,
                    start_price,
                )  # fmt: skip
                if observation is not None:
                    observations.append(observation)
            return observations
        baseline = window.tracker.baseline()
        if baseline is None or window.tracker.baseline_samples < rule.min_samples:
            return []
        for direction in rule.directions:
            observation = _observe(
                rule, direction, t_now, current, baseline, Reference.MEDIAN, price_now, None,
                window.oldest_price,
            )  # fmt: skip
            if observation is not None:
                observations.append(observation)
        return observations


def _observe(
    rule: Rule,
    direction: Direction,
    t_now: int,
    current: float,
    reference: float,
    reference_kind: Reference,
    price_now: float | None,
    price_reference: float | None,
    price_window_start: float | None,
    stats: ChangeStats | None = None,
) -> Observation | None:
    if reference == 0:
        return None
    abs_change = current - reference
    move = abs_change / reference if direction is Direction.UP else -abs_change / reference
    if stats is not None:  # a relative rule: the move in robust z
        z = stats.z(abs_change / reference)
        move = z if direction is Direction.UP else -z
    abs_change_usd = abs(abs_change) * price_now if price_now is not None else None
    if move < rule.threshold(direction):
        reason = VerdictReason.BELOW_THRESHOLD
    else:
        reason = minimums_verdict(
            abs_change, abs_change_usd, rule.min_delta_contracts, rule.min_delta_usd
        )
    observation = Observation(
        rule=rule,
        direction=direction,
        reason=reason,
        t_ms=t_now,
        current=current,
        reference=reference,
        reference_kind=reference_kind,
        move=move,
        abs_change=abs_change,
        abs_change_usd=abs_change_usd,
        price_now=price_now,
        price_reference=price_reference,
        price_window_start=price_window_start,
    )
    if reason is VerdictReason.ALERT and rule.regimes and observation.regime not in rule.regimes:
        return replace(observation, reason=VerdictReason.BLOCKED_REGIME)
    return observation


# Re-arm and cooldown


@dataclass(frozen=True, slots=True)
class FireState:
    """A (rule, symbol, direction)'s memory: when it last fired, at what move, and whether it
    has re-armed since."""

    fired_ms: int
    move: float
    armed: bool = False
    claimed_ms: int = 0
    """Wall-clock time it was claimed for an alert not yet known to be stored; 0 once stored."""

    def encode(self) -> str:
        return f"{self.fired_ms}:{self.move!r}:{int(self.armed)}:{self.claimed_ms}"

    @classmethod
    def decode(cls, raw: str | None) -> "FireState | None":
        if not raw:
            return None
        fired_ms, move, armed, *claimed = raw.split(":")
        return cls(int(fired_ms), float(move), armed == "1", int(claimed[0]) if claimed else 0)


class GateAction(StrEnum):
    FIRE = "fire"
    REARM = "rearm"
    HOLD_COOLDOWN = "hold_cooldown"
    HOLD_NOT_REARMED = "hold_not_rearmed"
    BLOCKED = "blocked"
    NONE = "none"


def gate(state: FireState | None, observation: Observation) -> tuple[GateAction, FireState | None]:
    """What the observation does given the state, and the state after it."""
    rule = observation.rule
    threshold = rule.threshold(observation.direction)
    if not observation.crossed:
        if (
            state is not None
            and not state.armed
            and observation.move <= threshold * rule.rearm_ratio
        ):
            return GateAction.REARM, replace(state, armed=True)
        return GateAction.NONE, state
    if observation.reason is not VerdictReason.ALERT:
        return GateAction.BLOCKED, state
    fired = FireState(observation.t_ms, observation.move)
    if state is None:
        return GateAction.FIRE, fired
    if observation.t_ms - state.fired_ms < rule.cooldown_sec * 1000:
        return GateAction.HOLD_COOLDOWN, state
    if state.armed:
        return GateAction.FIRE, fired
    if rule.step_pct is not None and observation.move >= state.move + rule.step_pct:
        return GateAction.FIRE, fired
    return GateAction.HOLD_NOT_REARMED, state


class RuleBook:
    """In-memory gate states for replays and tests (the service keeps them in Redis)."""

    __slots__ = ("_states",)

    def __init__(self) -> None:
        self._states: dict[tuple[int, str, Direction], FireState] = {}

    def apply(self, symbol: str, observation: Observation) -> GateAction:
        key = (observation.rule.rule_id, symbol, observation.direction)
        action, state = gate(self._states.get(key), observation)
        if state is not None:
            self._states[key] = state
        return action


DIRECTIONS_OF = {
    "UP": (Direction.UP,),
    "DOWN": (Direction.DOWN,),
    "BOTH": (Direction.UP, Direction.DOWN),
}


def rule_from_fields(rule_id: int, fields: Mapping[str, object]) -> Rule:
    """The rule described by a stored rule's field values (as ``default_rule_specs`` gives them
    or the model holds them); a field left out takes the model's default."""

    def number(name: str) -> float | None:
        value = fields.get(name)
        return float(value) if value is not None else None

    threshold = float(fields["threshold_pct"])
    dump_threshold = number("dump_threshold_pct")
    rearm_ratio = number("rearm_ratio")
    return Rule(
        rule_id=rule_id,
        name=str(fields["name"]),
        kind=RuleKind(fields.get("kind", RuleKind.WINDOW_CHANGE)),
        window_sec=int(fields["window_sec"]),
        baseline_from_sec=fields.get("baseline_from_sec"),
        up_threshold=threshold,
        down_threshold=dump_threshold if dump_threshold is not None else threshold,
        directions=DIRECTIONS_OF[str(fields.get("direction", "BOTH"))],
        min_delta_contracts=number("min_delta_contracts"),
        min_delta_usd=number("min_delta_usd"),
        cooldown_sec=int(fields.get("cooldown_sec", 900)),
        rearm_ratio=rearm_ratio if rearm_ratio is not None else 0.5,
        step_pct=number("step_pct"),
        min_samples=int(fields.get("min_samples", 3)),
        scope=Scope(fields.get("scope", Scope.ALL)),
        symbols=frozenset(fields.get("symbols") or ()),
        regimes=frozenset(Regime(regime) for regime in fields.get("regimes") or ()),
        liquidity_tiers=bool(fields.get("liquidity_tiers", False)),
    )


def default_rule_specs(
    *,
    design_w_low_sec: int = 1800,
    design_w_high_sec: int = 3600,
    design_spike_pct: float = 0.05,
    design_dump_pct: float = 0.05,
    design_min_samples: int = 3,
    design_min_delta_contracts: float | None = 5000.0,
    design_min_delta_usd: float | None = None,
    design_cooldown_sec: int = 900,
) -> list[dict]:
    """The default rule set as model field values: the design's rule and the VolSpike production
    windows (5 m at 3%, 15 m at 7%, 1 h at 12%, both directions). Each fires again without
    re-arming only once its move has doubled (step = threshold). Plus two presets shipped
    disabled: OI up 3% in 5 m while the price falls (a short build: new shorts piling in), and
    a relative rule: the 4 h change extreme against the symbol's own 4 h changes. Its spec
    carries ``liquidity_tiers`` so migrations before that field skip it (0009 installs it)."""
    windows = [
        ("oi-5m-3pct", 300, "0.03", 300),
        ("oi-15m-7pct", 900, "0.07", 900),
        ("oi-1h-12pct", 3600, "0.12", 1800),
    ]
    specs = [
        {
            "name": "design-median-30-60m-5pct",
            "kind": RuleKind.MEDIAN_BASELINE.value,
            "window_sec": design_w_high_sec,
            "baseline_from_sec": design_w_low_sec,
            "threshold_pct": str(design_spike_pct),
            "dump_threshold_pct": None
            if design_dump_pct == design_spike_pct
            else str(design_dump_pct),
            "step_pct": str(design_spike_pct),
            "min_delta_contracts": design_min_delta_contracts,
            "min_delta_usd": design_min_delta_usd,
            "cooldown_sec": design_cooldown_sec,
            "min_samples": design_min_samples,
        }
    ]
    for name, window_sec, threshold, cooldown_sec in windows:
        specs.append(
            {
                "name": name,
                "kind": RuleKind.WINDOW_CHANGE.value,
                "window_sec": window_sec,
                "baseline_from_sec": None,
                "threshold_pct": threshold,
                "dump_threshold_pct": None,
                "step_pct": threshold,
                "min_delta_contracts": None,
                "min_delta_usd": None,
                "cooldown_sec": cooldown_sec,
                "min_samples": 3,
            }
        )
    specs.append(
        {
            "name": "oi-5m-3pct-short-build",
            "enabled": False,
            "kind": RuleKind.WINDOW_CHANGE.value,
            "window_sec": 300,
            "baseline_from_sec": None,
            "direction": "UP",
            "threshold_pct": "0.03",
            "dump_threshold_pct": None,
            "step_pct": "0.03",
            "min_delta_contracts": None,
            "min_delta_usd": None,
            "cooldown_sec": 300,
            "min_samples": 3,
            "regimes": [Regime.SHORT_BUILD.value],
        }
    )
    specs.append(
        {
            "name": RELATIVE_PRESET_NAME,
            "enabled": False,
            "kind": RuleKind.RELATIVE.value,
            "window_sec": 4 * 3600,
            "baseline_from_sec": None,
            "threshold_pct": RELATIVE_PRESET_Z,
            "dump_threshold_pct": None,
            "step_pct": RELATIVE_PRESET_Z,
            "min_delta_contracts": None,
            "min_delta_usd": None,
            "cooldown_sec": 3600,
            "min_samples": 3,
            "liquidity_tiers": False,
        }
    )
    return specs


RELATIVE_PRESET_NAME = "oi-4h-relative-z6"
RELATIVE_PRESET_Z = "6"
"""The 4 h change at 6 robust standard deviations of the symbol's own 4 h changes (see
bench/replay_rules.py for what it finds in ../shared/data)."""
