"""The market-wide view: breadth and the biggest movers of the liquid universe per lookback, and
its total open interest in USD. Pure: it works on the screener's per-symbol changes and on ring
samples already read; no Django, Redis or HTTP."""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal


@dataclass(frozen=True, slots=True)
class SymbolChange:
    symbol: str
    pct_change: float | None  # over the lookback; None when not measurable
    open_interest_usd: Decimal | None


@dataclass(frozen=True, slots=True)
class Breadth:
    """Shares of the symbols whose change over the lookback is measurable."""

    rising: float
    falling: float
    measured: int


def breadth(changes: Iterable[SymbolChange]) -> Breadth:
    measured = [change.pct_change for change in changes if change.pct_change is not None]
    if not measured:
        return Breadth(0.0, 0.0, 0)
    rising = sum(1 for pct in measured if pct > 0)
    falling = sum(1 for pct in measured if pct < 0)
    return Breadth(rising / len(measured), falling / len(measured), len(measured))


def movers(
    changes: Sequence[SymbolChange], count: int
) -> tuple[list[SymbolChange], list[SymbolChange]]:
    """The `count` largest rises (largest first) and the `count` largest falls (largest first);
    a symbol without a change, or without a move in that direction, is in neither."""
    measured = [change for change in changes if change.pct_change is not None]
    gainers = sorted(
        (c for c in measured if c.pct_change > 0), key=lambda c: (-c.pct_change, c.symbol)
    )
    losers = sorted(
        (c for c in measured if c.pct_change < 0), key=lambda c: (c.pct_change, c.symbol)
    )
    return gainers[:count], losers[:count]


@dataclass(frozen=True, slots=True)
class MarketTotal:
    time_ms: int
    open_interest_usd: Decimal
    symbols: int  # how many symbols had a sample with a price at that time


PricedSamples = dict[str, tuple[Decimal, Decimal]]
"""symbol -> (open interest, mark price) of its sample at one time; unpriced ones left out."""


def market_total(time_ms: int, samples: PricedSamples) -> MarketTotal:
    """The universe's OI in USD at `time_ms` from each symbol's priced sample then."""
    total = sum((oi * price for oi, price in samples.values()), Decimal(0))
    return MarketTotal(time_ms, total.quantize(Decimal("0.01")), len(samples))


@dataclass(frozen=True, slots=True)
class TotalChange:
    """The change of the summed OI in USD between two times, over the symbols priced at both
    (like for like: a symbol that entered or got its first price meanwhile does not count)."""

    pct_change: float | None
    symbols: int


def total_change(then: PricedSamples, now: PricedSamples) -> TotalChange:
    common = then.keys() & now.keys()
    before = sum((then[s][0] * then[s][1] for s in common), Decimal(0))
    after = sum((now[s][0] * now[s][1] for s in common), Decimal(0))
    if not common or before == 0:
        return TotalChange(None, len(common))
    return TotalChange(float((after - before) / before), len(common))
