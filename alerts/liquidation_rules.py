"""Liquidation-burst rules, evaluated per symbol as liquidations arrive. Pure: stdlib only.

A rule fires when the liquidation USD of one side (longs liquidated: SELL orders; shorts
liquidated: BUY orders) over the last ``window_sec`` (ages 0..W, the newest liquidation's time
the clock) reaches its threshold: a USD amount, a share of the symbol's 24 h quote volume, or
both (then the larger of the two). A rule with a share and no known volume gives no verdict.
Binance sends at most one liquidation per symbol per second, so every sum is a lower bound.

Re-arm, as the OI rules (``alerts.rules``): after a rule fires for a (symbol, side) it is
disarmed; it re-arms once the side's sum falls back to ``rearm_ratio`` × the threshold, and fires
again only when armed and ``cooldown_sec`` after its last fire. A sum rises only when a
liquidation arrives, so verdicts come only then, and one tracker fed the same liquidations in
the same order gives the same verdicts: the live path and a rebuild from stored liquidations
(after a restart or a rule change) agree.
"""

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum

from alerts.rules import Scope

BURST_RULE_KIND = "liquidation_burst"
"""The stored rule kind (``AlertRule.kind``) of these rules; the others are ``alerts.rules``'."""


class LiquidatedSide(StrEnum):
    """Whose positions were liquidated."""

    LONG = "long"  # SELL orders
    SHORT = "short"  # BUY orders


ALL_SIDES = frozenset(LiquidatedSide)


@dataclass(frozen=True, slots=True)
class BurstRule:
    rule_id: int
    name: str
    window_sec: int
    sides: frozenset[LiquidatedSide] = ALL_SIDES
    threshold_usd: Decimal | None = None
    threshold_volume_share: Decimal | None = None
    """A fraction of the symbol's 24 h quote volume (0.001 = 0.1%)."""
    cooldown_sec: int = 900
    rearm_ratio: Decimal = Decimal("0.5")
    scope: Scope = Scope.ALL
    symbols: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        if self.window_sec <= 0:
            raise ValueError(f"window_sec must be > 0, got {self.window_sec}")
        if self.threshold_usd is None and self.threshold_volume_share is None:
            raise ValueError(
                "a liquidation-burst rule needs threshold_usd or threshold_volume_share"
            )
        for name in ("threshold_usd", "threshold_volume_share"):
            value = getattr(self, name)
            if value is not None and not value > 0:
                raise ValueError(f"{name} must be > 0, got {value}")
        if not self.sides:
            raise ValueError("sides must name at least one side")
        if not 0 <= self.rearm_ratio < 1:
            raise ValueError(f"rearm_ratio must be in [0, 1), got {self.rearm_ratio}")
        if self.cooldown_sec < 0:
            raise ValueError(f"cooldown_sec must be >= 0, got {self.cooldown_sec}")

    @property
    def window_ms(self) -> int:
        return self.window_sec * 1000

    def applies_to(self, symbol: str) -> bool:
        if self.scope == Scope.ONLY:
            return symbol in self.symbols
        if self.scope == Scope.EXCEPT:
            return symbol not in self.symbols
        return True

    def threshold(self, quote_volume_24h: Decimal | None) -> Decimal | None:
        """The USD a side's sum must reach; None (no verdict) when the rule has a volume share
        and the symbol's volume is unknown."""
        if self.threshold_volume_share is None:
            return self.threshold_usd
        if quote_volume_24h is None or not quote_volume_24h > 0:
            return None
        share = self.threshold_volume_share * quote_volume_24h
        return share if self.threshold_usd is None else max(share, self.threshold_usd)


@dataclass(frozen=True, slots=True)
class LiquidationEvent:
    t_ms: int
    side: LiquidatedSide
    usd: Decimal


@dataclass(frozen=True, slots=True)
class BurstVerdict:
    rule: BurstRule
    symbol: str
    side: LiquidatedSide
    t_ms: int
    """The time of the liquidation that took the sum over the threshold."""
    usd: Decimal
    """The side's liquidation USD over the window, that liquidation included."""
    count: int
    """The side's liquidations in the window."""
    other_side_usd: Decimal
    threshold_usd: Decimal
    quote_volume_24h: Decimal | None


@dataclass(slots=True)
class _Window:
    """One window length's liquidations of a symbol, with each side's running sum."""

    window_ms: int
    events: deque = field(default_factory=deque)
    usd: dict = field(default_factory=lambda: {side: Decimal(0) for side in LiquidatedSide})
    count: dict = field(default_factory=lambda: {side: 0 for side in LiquidatedSide})

    def advance(self, now_ms: int) -> None:
        """Drop what is older than the window at `now_ms` (a liquidation exactly W old stays)."""
        events, oldest = self.events, now_ms - self.window_ms
        while events and events[0].t_ms < oldest:
            gone = events.popleft()
            self.usd[gone.side] -= gone.usd
            self.count[gone.side] -= 1
        if not events:  # exact zero again (no drift left by subtractions)
            for side in LiquidatedSide:
                self.usd[side], self.count[side] = Decimal(0), 0

    def add(self, event: LiquidationEvent) -> None:
        self.events.append(event)
        self.usd[event.side] += event.usd
        self.count[event.side] += 1


@dataclass(slots=True)
class _Gate:
    armed: bool = True
    last_fired_ms: int | None = None


class BurstTracker:
    """One symbol's windows (one per distinct window length) and each rule's gate per side."""

    def __init__(self, symbol: str) -> None:
        self.symbol = symbol
        self.windows: dict[int, _Window] = {}
        self.gates: dict[tuple[int, LiquidatedSide], _Gate] = {}
        self.newest_ms: int | None = None

    def observe(
        self,
        event: LiquidationEvent,
        rules: list[BurstRule],
        quote_volume_24h: Decimal | None,
    ) -> list[BurstVerdict]:
        """Take one liquidation (in time order; an older one counts where its window still
        holds it) and return the rules that fire on it."""
        now_ms = event.t_ms if self.newest_ms is None else max(self.newest_ms, event.t_ms)
        self.newest_ms = now_ms
        for rule in rules:
            if rule.window_ms not in self.windows:
                self.windows[rule.window_ms] = _Window(rule.window_ms)
        verdicts = []
        for window_ms, window in self.windows.items():
            window.advance(now_ms)
            # re-arm on what the window held just before this liquidation
            for rule in rules:
                if rule.window_ms == window_ms:
                    self._rearm(rule, window, quote_volume_24h)
            if event.t_ms >= now_ms - window_ms:
                window.add(event)
        for rule in rules:
            if event.side not in rule.sides:
                continue
            verdict = self._fire(rule, event, now_ms, quote_volume_24h)
            if verdict is not None:
                verdicts.append(verdict)
        return verdicts

    def _rearm(self, rule: BurstRule, window: _Window, quote_volume_24h: Decimal | None) -> None:
        threshold = rule.threshold(quote_volume_24h)
        for side in rule.sides:
            gate = self.gates.get((rule.rule_id, side))
            if gate is None or gate.armed or threshold is None:
                continue
            if window.usd[side] <= rule.rearm_ratio * threshold:
                gate.armed = True

    def _fire(
        self,
        rule: BurstRule,
        event: LiquidationEvent,
        now_ms: int,
        quote_volume_24h: Decimal | None,
    ) -> BurstVerdict | None:
        threshold = rule.threshold(quote_volume_24h)
        if threshold is None:
            return None
        window = self.windows[rule.window_ms]
        side = event.side
        if window.usd[side] < threshold:
            return None
        gate = self.gates.setdefault((rule.rule_id, side), _Gate())
        if not gate.armed:
            return None
        if (
            gate.last_fired_ms is not None
            and now_ms - gate.last_fired_ms < rule.cooldown_sec * 1000
        ):
            return None  # armed, and fires on a later liquidation once the cooldown is over
        gate.armed, gate.last_fired_ms = False, now_ms
        other = LiquidatedSide.SHORT if side is LiquidatedSide.LONG else LiquidatedSide.LONG
        return BurstVerdict(
            rule=rule,
            symbol=self.symbol,
            side=side,
            t_ms=now_ms,
            usd=window.usd[side],
            count=window.count[side],
            other_side_usd=window.usd[other],
            threshold_usd=threshold,
            quote_volume_24h=quote_volume_24h,
        )


LIQUIDATION_WINDOW_MIN_SEC = 10
LIQUIDATION_WINDOW_MAX_SEC = 3600
"""The trackers hold every liquidation of their window in memory (at most one per symbol and
second: 3,600 per symbol for an hour)."""
BOTH_SIDES = "both"


def burst_rule_from_fields(rule_id: int, fields: Mapping[str, object]) -> BurstRule:
    """The burst rule described by a stored rule's field values (a left-out field takes the
    model's default)."""

    def decimal(name: str) -> Decimal | None:
        value = fields.get(name)
        return Decimal(str(value)) if value is not None else None

    side = str(fields.get("liquidated_side") or BOTH_SIDES)
    rearm_ratio = decimal("rearm_ratio")
    return BurstRule(
        rule_id=rule_id,
        name=str(fields["name"]),
        window_sec=int(fields["window_sec"]),
        sides=ALL_SIDES if side == BOTH_SIDES else frozenset({LiquidatedSide(side)}),
        threshold_usd=decimal("threshold_usd"),
        threshold_volume_share=decimal("threshold_volume_share"),
        cooldown_sec=int(fields.get("cooldown_sec", 900)),
        rearm_ratio=rearm_ratio if rearm_ratio is not None else Decimal("0.5"),
        scope=Scope(fields.get("scope", Scope.ALL)),
        symbols=frozenset(fields.get("symbols") or ()),
    )
