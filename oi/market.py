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


def market_total(
    time_ms: int, samples: Iterable[tuple[Decimal, Decimal | None] | None]
) -> MarketTotal:
    """The universe's OI in USD at `time_ms` from each symbol's (open interest, mark price) then;
    symbols with no sample or no price are left out (and not counted)."""
    total, counted = Decimal(0), 0
    for sample in samples:
        if sample is None or sample[1] is None:
            continue
        total += sample[0] * sample[1]
        counted += 1
    return MarketTotal(time_ms, total.quantize(Decimal("0.01")), counted)
