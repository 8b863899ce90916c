"""Runs the enabled liquidation-burst rules on the liquidations the streams process stores (the
I/O around alerts.liquidation_rules). A sink of STREAMS_LIQUIDATION_SINKS: the streams process
calls ``liquidation_bursts_evaluate`` with each batch right after it is in Postgres, so a burst
is told within about a second of its liquidations (STREAMS_LIQUIDATION_FLUSH_SEC).

The rules cover the liquid universe (as the open-interest rules do), each symbol with its
published 24 h quote volume (for thresholds given as a share of it). The rules and the volumes
are reloaded when a rule changes (the rules' version key) or every RULES_CACHE_SEC.

The trackers live in the streams process (one process, one thread drains its frames). Whenever
the rule set changes, and at the first batch after a start, they are rebuilt from the stored
liquidations of the longest window, through the same pure code: a burst that an alert was
already stored for (before a restart, say) disarms its rule and is not told again, and a burst
still under way that nobody told (the process was down, or the rule is new) is stored then.
Each alert is unique on (rule, symbol, side, the time of the liquidation that fired it), so a
rebuild that finds a stored alert again stores nothing.
"""

import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import ROUND_HALF_UP, Decimal

from django.utils import timezone

from alerts.liquidation_rules import (
    BurstRule,
    BurstTracker,
    BurstVerdict,
    LiquidatedSide,
    LiquidationEvent,
)
from alerts.liquidation_selectors import liquidation_alert_stored_since, liquidation_rules_enabled
from alerts.liquidation_services import liquidation_alert_store
from alerts.services import RULES_VERSION_KEY
from common.redis import get_redis
from common.timeutil import datetime_from_ms
from exchange.streams import Liquidation as LiquidationValue
from exchange.streams import LiquidationSide
from liquidity.selectors import universe_quote_volumes, universe_symbols_published
from streams.selectors import liquidations_since, mark_prices_of

logger = logging.getLogger(__name__)

RULES_CACHE_SEC = 10.0
LIQUIDATED = {LiquidationSide.SELL: LiquidatedSide.LONG, LiquidationSide.BUY: LiquidatedSide.SHORT}
STORED_USD_PLACES = Decimal("1e-8")  # stream_liquidations.usd: a rebuild sums what is stored


@dataclass
class _Engine:
    rules: tuple[BurstRule, ...] = ()
    version: object = None
    loaded_at: float = -math.inf
    volumes: dict[str, Decimal | None] = field(default_factory=dict)
    """The liquid universe: symbol -> its published 24 h quote volume."""
    trackers: dict[str, BurstTracker] = field(default_factory=dict)
    built: bool = False

    def rules_for(self, symbol: str) -> list[BurstRule]:
        if symbol not in self.volumes:
            return []  # not liquid
        return [rule for rule in self.rules if rule.applies_to(symbol)]

    def observe(self, symbol: str, event: LiquidationEvent) -> list[BurstVerdict]:
        rules = self.rules_for(symbol)
        if not rules:
            return []
        tracker = self.trackers.get(symbol)
        if tracker is None:
            tracker = self.trackers[symbol] = BurstTracker(symbol)
        return tracker.observe(event, rules, self.volumes.get(symbol))


_engine = _Engine()


def liquidation_bursts_evaluate(liquidations: Sequence[LiquidationValue]) -> None:
    """The sink: evaluate a stored batch. A failure is logged with its cause and never stops
    the stream (the next batch, or the next rebuild, catches up)."""
    try:
        _evaluate(liquidations)
    except Exception as exc:
        _engine.built = False  # rebuild from what is stored at the next batch
        logger.exception(
            "liquidation burst evaluation failed",
            extra={"cause": repr(exc)[:300], "liquidations": len(liquidations)},
        )


def engine_reset() -> None:
    """Forget the trackers and the cached rules (a new process starts this way)."""
    global _engine
    _engine = _Engine()


def _evaluate(liquidations: Sequence[LiquidationValue]) -> None:
    _refresh()
    if not _engine.rules:
        return
    if not _engine.built:
        _rebuild()  # reads the batch back from Postgres with the rest
        return
    verdicts = []
    for value in sorted(liquidations, key=lambda v: v.trade_time_ms):
        event = LiquidationEvent(
            value.trade_time_ms,
            LIQUIDATED[value.side],
            value.usd.quantize(STORED_USD_PLACES, ROUND_HALF_UP),
        )
        verdicts += _engine.observe(value.symbol, event)
    _store(verdicts)


def _refresh() -> None:
    """Reload the rules and the universe's volumes when a rule changed or the cache is old; a
    changed rule set rebuilds the trackers."""
    version = get_redis().get(RULES_VERSION_KEY)
    if version == _engine.version and time.monotonic() - _engine.loaded_at < RULES_CACHE_SEC:
        return
    rules = tuple(liquidation_rules_enabled())
    symbols = sorted(universe_symbols_published()) if rules else []
    if rules != _engine.rules:
        _engine.built = False
    _engine.rules, _engine.version, _engine.loaded_at = rules, version, time.monotonic()
    _engine.volumes = universe_quote_volumes(symbols)


def _rebuild() -> None:
    """New trackers, fed the stored liquidations of the longest window; the last fire of each
    (rule, symbol, side) found on the way is stored unless an alert of it is stored already."""
    _engine.trackers = {}
    longest_ms = max(rule.window_ms for rule in _engine.rules)
    now = timezone.now()
    last: dict[tuple[int, str, LiquidatedSide], BurstVerdict] = {}
    stored = liquidations_since(
        now - timedelta(milliseconds=longest_ms), symbols=set(_engine.volumes)
    )
    for row in stored:
        event = LiquidationEvent(row.time_ms, LIQUIDATED[row.side], row.usd)
        for verdict in _engine.observe(row.symbol, event):
            last[(verdict.rule.rule_id, verdict.symbol, verdict.side)] = verdict
    _engine.built = True
    missed = [
        verdict
        for verdict in last.values()
        if not liquidation_alert_stored_since(
            rule_name=verdict.rule.name,
            symbol=verdict.symbol,
            side=verdict.side.value,
            since=datetime_from_ms(verdict.t_ms - verdict.rule.window_ms),
        )
    ]
    logger.info(
        "liquidation burst trackers rebuilt",
        extra={
            "rules": len(_engine.rules),
            "liquidations": len(stored),
            "symbols": len(_engine.trackers),
            "untold_bursts": len(missed),
        },
    )
    _store(missed)


def _store(verdicts: list[BurstVerdict]) -> None:
    if not verdicts:
        return
    marks = mark_prices_of(sorted({v.symbol for v in verdicts}))
    for verdict in verdicts:
        liquidation_alert_store(verdict, mark_price=marks.get(verdict.symbol))
