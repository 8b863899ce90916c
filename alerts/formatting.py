"""How an alert is written: its §5.3 payload (API, feed, webhook), its links, and its numbers as
text, the same on Telegram and on the page. Pure: no Django, Redis or HTTP."""

from datetime import datetime
from decimal import Decimal
from typing import Protocol

from alerts.rules import Reference
from common.formatting import iso_z
from oi.regimes import REGIME_MEANINGS, Regime

Number = Decimal | float | int
LIQUIDATIONS_LOWER_BOUND = "lower"
"""The payload's liquidationsBound: Binance sends at most one liquidation per symbol per second,
so the sums are at least what was liquidated, maybe less than all of it."""


class AlertLike(Protocol):
    """What the formatters read of an alert (an ``OpenInterestAlert``, stored or not)."""

    id: int | None
    symbol: str
    direction: str
    baseline: Decimal
    current: Decimal
    pct_change: Decimal
    abs_change: Decimal
    ts: datetime  # aware
    source: str
    rule_name: str
    window_sec: int | None
    reference: str
    threshold_pct: Decimal | None
    price_change_pct: Decimal | None
    mark_price: Decimal | None
    funding_rate: Decimal | None
    oi_usd_before: Decimal | None
    oi_usd_after: Decimal | None
    quote_volume_24h: Decimal | None
    liquidations_long_usd: Decimal | None  # lower bounds over the window; None: not known
    liquidations_short_usd: Decimal | None
    alerts_24h: int | None
    regime: str  # oi.regimes.Regime, or "" for alerts stored before regimes existed


def alert_payload(alert: AlertLike) -> dict:
    """The design's §5.3 alert payload, plus the alert's id (for catching up after a reconnect),
    the rule that fired, its market context and links. Fields that are not known are null."""
    relative = alert.reference == Reference.WINDOW_START  # a relative rule's: a z threshold
    return {
        "id": alert.id,
        "symbol": alert.symbol,
        "direction": alert.direction,
        "baseline": float(alert.baseline),
        "current": float(alert.current),
        "pctChange": float(alert.pct_change),
        "absChange": float(alert.abs_change),
        "timestamp": iso_z(alert.ts),
        "source": alert.source,
        "rule": alert.rule_name or None,
        "windowSec": alert.window_sec,
        "reference": alert.reference or None,
        # a relative rule's threshold is a robust z against the symbol's own changes, not a %
        "thresholdPct": None if relative else _float_or_none(alert.threshold_pct),
        "thresholdZ": _float_or_none(alert.threshold_pct) if relative else None,
        "priceChangePct": _float_or_none(alert.price_change_pct),
        "markPrice": _float_or_none(alert.mark_price),
        "fundingRate": _float_or_none(alert.funding_rate),
        "oiUsdBefore": _float_or_none(alert.oi_usd_before),
        "oiUsdAfter": _float_or_none(alert.oi_usd_after),
        "quoteVolume24h": _float_or_none(alert.quote_volume_24h),
        # over the window, from the liquidation stream: at most one per symbol per second is
        # sent, so these are lower bounds (liquidationsBound says so); null when not recorded
        "liquidationsLongUsd": _float_or_none(alert.liquidations_long_usd),
        "liquidationsShortUsd": _float_or_none(alert.liquidations_short_usd),
        "liquidationsBound": (
            LIQUIDATIONS_LOWER_BOUND if alert.liquidations_long_usd is not None else None
        ),
        "alerts24h": alert.alerts_24h,
        "regime": alert.regime or None,
        "links": symbol_links(alert.symbol),
    }


def regime_text(regime: str) -> str | None:
    """The regime as a reader's words ("short build (OI up, price down: new shorts)"), or None
    when there is none to tell (unknown, or an alert stored before regimes existed)."""
    if not regime or regime == Regime.UNKNOWN:
        return None
    known = Regime(regime)
    return f"{known.label} ({REGIME_MEANINGS[known]})"


def symbol_links(symbol: str) -> dict[str, str]:
    return {
        "binance": f"https://www.binance.com/en/futures/{symbol}",
        "tradingview": f"https://www.tradingview.com/chart/?symbol=BINANCE:{symbol}.P",
    }


def _float_or_none(value: Number | None) -> float | None:
    return float(value) if value is not None else None


# --- Numbers as text ---------------------------------------------------------------------------


def signed_pct(fraction: Number, digits: int = 2) -> str:
    """A measured change, always signed and with fixed digits: 0.12 -> "+12.00%"."""
    return f"{float(fraction) * 100:+.{digits}f}%"


def threshold_pct(fraction: Number) -> str:
    """A rule's threshold, as short as it is exact: 0.03 -> "3%", 0.075 -> "7.5%"."""
    return f"{float(fraction) * 100:g}%"


def duration(seconds: int) -> str:
    """A window or age in its largest whole unit: "1 h", "5 min", "90 s"."""
    if seconds % 3600 == 0:
        return f"{seconds // 3600} h"
    if seconds % 60 == 0:
        return f"{seconds // 60} min"
    return f"{seconds} s"


def usd(value: Number) -> str:
    """A dollar amount, shortened: "$12.3M", "$845.2M", "$950"."""
    amount = float(value)
    for limit, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "K")):
        if abs(amount) >= limit:
            return f"${amount / limit:,.1f}{suffix}"
    return f"${amount:,.0f}"


def liquidations_line(alert: AlertLike) -> str | None:
    """ "Liquidations ≥ $1.2M long, ≥ $0 short (5 min)", or None when not recorded."""
    if alert.liquidations_long_usd is None or alert.liquidations_short_usd is None:
        return None
    window = f" ({duration(alert.window_sec)})" if alert.window_sec else ""
    return (
        f"Liquidations ≥ {usd(alert.liquidations_long_usd)} long, "
        f"≥ {usd(alert.liquidations_short_usd)} short{window}"
    )


def price(value: Number) -> str:
    """A price with the digits its size needs: 97,000.50, 12.5000, 0.001234."""
    amount = float(value)
    magnitude = abs(amount)
    digits = 2 if magnitude >= 1000 else 4 if magnitude >= 1 else 6
    return f"{amount:,.{digits}f}"
