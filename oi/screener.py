"""The open-interest screener: every liquid symbol's latest OI and its change over a few lookbacks,
read from the ring buffers in one Redis round trip (a handful of commands per symbol, not 3 h of
samples per symbol). The 4h and 24h lookbacks read their reference from the coarse ring (one
sample per 5 min, oi.coarse): a reference more than a quarter of the lookback (at least 5.5 min)
older than the lookback's point is no reference (the ring has a hole there), as a rule's window
would not be covered."""

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from common import timeutil
from common.redis import get_redis
from common.timeutil import datetime_from_ms
from liquidity.selectors import liquid_symbol_list
from oi.coarse import is_long_window
from oi.keys import MARK_PRICE_KEY
from oi.market import PricedSamples
from oi.regimes import Regime, fractional_change, regime_of
from oi.ring import RingSample, coarse_ring_key, decode_member, ring_key
from streams.selectors import LiquidationSums, liquidation_sums_by_lookback, liquidations_recorded

# (label, seconds): the change is measured against the newest sample at or before now - seconds.
SCREENER_LOOKBACKS: tuple[tuple[str, int], ...] = (
    ("5m", 300), ("15m", 900), ("1h", 3600), ("4h", 4 * 3600), ("24h", 24 * 3600),
)  # fmt: skip


LIQUIDATIONS_LOWER_BOUND = "lower"
"""The screener's liquidationsBound (as the alert payload's, alerts.formatting): the liq* sums
are lower bounds, Binance sending at most one liquidation per symbol per second."""


def long_lookback_max_lag_ms(seconds: int) -> int:
    """How much older than now - seconds a long lookback's reference may be (its max gap)."""
    return max(seconds * 1000 // 4, 330_000)


@dataclass(frozen=True, slots=True)
class ScreenerRow:
    symbol: str
    quote_volume_24h: Decimal
    entered_at: datetime
    latest: RingSample | None
    mark_price: Decimal | None
    open_interest_usd: Decimal | None
    pct_change: dict[str, float | None]
    """Fraction (0.1 = +10%) by lookback label; None when the ring does not reach that far back,
    or holds nothing newer than that point to compare with."""
    price_change: dict[str, float | None]
    """The mark price's fraction change over each lookback, between the prices stored with the
    two samples compared (None when either has no price)."""
    regime: dict[str, Regime]
    """The OI/price regime of each lookback (oi.regimes)."""
    ring_samples: int
    liquidations_long_usd: dict[str, Decimal | None] | None = None
    """Long liquidation USD over each lookback (a lower bound: Binance sends at most one
    liquidation per symbol per second); None when not asked for, a None value when the
    liquidation stream never ran."""
    liquidations_short_usd: dict[str, Decimal | None] | None = None


def _first_sample(reply: list) -> RingSample | None:
    """The sample of a WITHSCORES reply of at most one member."""
    if not reply:
        return None
    member, _score = reply[0]
    return decode_member(member if isinstance(member, str) else member.decode())


def _pct_change(latest: RingSample | None, reference: RingSample | None) -> float | None:
    if latest is None or reference is None or reference.time_ms >= latest.time_ms:
        return None
    if reference.open_interest == 0:
        return None
    return float((latest.open_interest - reference.open_interest) / reference.open_interest)


def _price_change(latest: RingSample | None, reference: RingSample | None) -> float | None:
    if latest is None or reference is None or reference.time_ms >= latest.time_ms:
        return None
    return fractional_change(
        float(reference.mark_price) if reference.mark_price is not None else None,
        float(latest.mark_price) if latest.mark_price is not None else None,
    )


def _decimal_or_none(raw: str | None) -> Decimal | None:
    if raw in (None, ""):
        return None
    try:
        return Decimal(raw)
    except ArithmeticError:
        return None


def open_interest_screener(
    *, now_ms: int | None = None, with_liquidations: bool = False
) -> list[ScreenerRow]:
    """One row per liquid symbol (highest 24h volume first), from one Redis pipeline; with
    ``with_liquidations``, each lookback's liquidation sums too, from one Postgres query for the
    whole universe."""
    now_ms = timeutil.now_ms() if now_ms is None else now_ms
    members = list(liquid_symbol_list().only("symbol", "quote_volume_24h", "entered_at"))
    if not members:
        return []
    symbols = [member.symbol for member in members]
    with get_redis().pipeline(transaction=False) as pipe:
        pipe.hmget(MARK_PRICE_KEY, symbols)
        for symbol in symbols:
            key = ring_key(symbol)
            pipe.zrevrange(key, 0, 0, withscores=True)
            for _label, seconds in SCREENER_LOOKBACKS:
                at_ms = now_ms - seconds * 1000
                if is_long_window(seconds):
                    pipe.zrevrangebyscore(
                        coarse_ring_key(symbol), at_ms, at_ms - long_lookback_max_lag_ms(seconds),
                        start=0, num=1, withscores=True,
                    )  # fmt: skip
                else:
                    pipe.zrevrangebyscore(key, at_ms, "-inf", start=0, num=1, withscores=True)
            pipe.zcard(key)
        replies = pipe.execute()
    mark_prices = replies[0]
    liquidations = _liquidations(now_ms) if with_liquidations else None
    per_symbol = 2 + len(SCREENER_LOOKBACKS)
    rows = []
    for index, member in enumerate(members):
        reply = replies[1 + index * per_symbol : 1 + (index + 1) * per_symbol]
        latest = _first_sample(reply[0])
        references = [_first_sample(r) for r in reply[1:-1]]
        mark_price = _decimal_or_none(mark_prices[index])
        pct_change, price_change = {}, {}
        for (label, _seconds), reference in zip(SCREENER_LOOKBACKS, references, strict=True):
            pct_change[label] = _pct_change(latest, reference)
            price_change[label] = _price_change(latest, reference)
        rows.append(
            ScreenerRow(
                symbol=member.symbol,
                quote_volume_24h=member.quote_volume_24h,
                entered_at=member.entered_at,
                latest=latest,
                mark_price=mark_price,
                open_interest_usd=(
                    (latest.open_interest * mark_price).quantize(Decimal("0.01"))
                    if latest is not None and mark_price is not None
                    else None
                ),
                pct_change=pct_change,
                price_change=price_change,
                regime={
                    label: regime_of(
                        oi_change=pct_change[label],
                        price_change=price_change[label],
                        window_sec=seconds,
                    )
                    for label, seconds in SCREENER_LOOKBACKS
                },
                ring_samples=int(reply[-1]),
                **(
                    _liquidation_fields(liquidations, member.symbol)
                    if liquidations is not None
                    else {}
                ),
            )
        )
    return rows


_NOT_RECORDED = {label: None for label, _seconds in SCREENER_LOOKBACKS}
_NO_LIQUIDATIONS = [LiquidationSums(Decimal(0), Decimal(0), 0)] * len(SCREENER_LOOKBACKS)


def _liquidations(now_ms: int) -> dict[str, list[LiquidationSums]] | bool:
    """Every symbol's sums per lookback, or False when the liquidation stream never ran (the
    sums would read 0 where nothing was listening)."""
    if not liquidations_recorded():
        return False
    return liquidation_sums_by_lookback(
        [seconds for _label, seconds in SCREENER_LOOKBACKS], until=datetime_from_ms(now_ms)
    )


def _liquidation_fields(
    liquidations: dict[str, list[LiquidationSums]] | bool, symbol: str
) -> dict[str, dict[str, Decimal | None]]:
    if liquidations is False:
        return {"liquidations_long_usd": _NOT_RECORDED, "liquidations_short_usd": _NOT_RECORDED}
    sums = liquidations.get(symbol, _NO_LIQUIDATIONS)
    labels = [label for label, _seconds in SCREENER_LOOKBACKS]
    return {
        "liquidations_long_usd": {label: s.long_usd for label, s in zip(labels, sums, strict=True)},
        "liquidations_short_usd": {
            label: s.short_usd for label, s in zip(labels, sums, strict=True)
        },
    }


# A symbol counts in the market's total at time t with its newest sample at most this old then.
MARKET_SAMPLE_MAX_AGE_MS = 120_000


def open_interest_market_samples(symbols: list[str], times_ms: list[int]) -> list[PricedSamples]:
    """Each symbol's priced sample at each of `times_ms` (its newest at or before the time, at
    most MARKET_SAMPLE_MAX_AGE_MS old, with the mark price it was stored with), from the ring
    buffers in one Redis round trip."""
    with get_redis().pipeline(transaction=False) as pipe:
        for time_ms in times_ms:
            for symbol in symbols:
                pipe.zrevrangebyscore(
                    ring_key(symbol), time_ms, time_ms - MARKET_SAMPLE_MAX_AGE_MS,
                    start=0, num=1, withscores=True,
                )  # fmt: skip
        replies = pipe.execute()
    at_times = []
    for index in range(len(times_ms)):
        priced: PricedSamples = {}
        for symbol, reply in zip(
            symbols, replies[index * len(symbols) : (index + 1) * len(symbols)], strict=True
        ):
            sample = _first_sample(reply)
            if sample is not None and sample.mark_price is not None:
                priced[symbol] = (sample.open_interest, sample.mark_price)
        at_times.append(priced)
    return at_times
