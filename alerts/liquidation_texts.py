"""How a liquidation-burst alert is written: its payload (API, feed, webhook) and its text (the
same on Telegram, Discord and Slack). Pure: no Django, Redis or HTTP."""

from datetime import datetime
from decimal import Decimal
from typing import Protocol

from alerts.formatting import LIQUIDATIONS_LOWER_BOUND, duration, price, symbol_links, usd
from alerts.liquidation_rules import BURST_RULE_KIND, LiquidatedSide
from common.formatting import iso_z

BURST_MARK = "💥"


class LiquidationAlertLike(Protocol):
    """What the formatters read of a ``LiquidationAlert``."""

    id: int | None
    rule_name: str
    symbol: str
    side: str
    window_sec: int
    usd: Decimal
    count: int
    other_side_usd: Decimal
    threshold_usd: Decimal
    quote_volume_24h: Decimal | None
    mark_price: Decimal | None
    ts: datetime  # aware


def volume_share(alert: LiquidationAlertLike) -> Decimal | None:
    """The side's liquidation USD as a share of the symbol's 24 h quote volume."""
    volume = alert.quote_volume_24h
    return alert.usd / volume if volume else None


def liquidation_alert_payload(alert: LiquidationAlertLike) -> dict:
    """The alert as the API, the feed and webhooks give it. The sums are lower bounds (``bound``):
    Binance sends at most one liquidation per symbol per second."""
    share = volume_share(alert)
    return {
        "id": alert.id,
        "kind": BURST_RULE_KIND,
        "symbol": alert.symbol,
        "side": alert.side,
        "rule": alert.rule_name,
        "windowSec": alert.window_sec,
        "usd": float(alert.usd),
        "count": alert.count,
        "otherSideUsd": float(alert.other_side_usd),
        "thresholdUsd": float(alert.threshold_usd),
        "quoteVolume24h": float(alert.quote_volume_24h) if alert.quote_volume_24h else None,
        "volumeShare": float(share) if share is not None else None,
        "markPrice": float(alert.mark_price) if alert.mark_price is not None else None,
        "timestamp": iso_z(alert.ts),
        "bound": LIQUIDATIONS_LOWER_BOUND,
        "links": symbol_links(alert.symbol),
    }


def _whose(side: str) -> str:
    return "longs" if side == LiquidatedSide.LONG else "shorts"


def liquidation_headline(alert: LiquidationAlertLike) -> str:
    """ "💥 BTCUSDT: longs liquidated ≥ $2.4M within 5 min" """
    return (
        f"{BURST_MARK} {alert.symbol}: {_whose(alert.side)} liquidated ≥ {usd(alert.usd)} "
        f"within {duration(alert.window_sec)}"
    )


def liquidation_details(alert: LiquidationAlertLike) -> list[str]:
    share = volume_share(alert)
    threshold = f"Threshold {usd(alert.threshold_usd)}"
    if share is not None:
        threshold += (
            f"; {float(share) * 100:.3g}% of the 24 h volume ({usd(alert.quote_volume_24h)})"
        )
    other = LiquidatedSide.SHORT if alert.side == LiquidatedSide.LONG else LiquidatedSide.LONG
    lines = [
        f"{alert.count} liquidation orders; {_whose(other)} liquidated ≥ "
        f"{usd(alert.other_side_usd)} in the same window",
        threshold,
    ]
    if alert.mark_price is not None:
        lines.append(f"Mark price {price(alert.mark_price)}")
    lines.append(f"Rule {alert.rule_name} · {iso_z(alert.ts)}")
    lines.append("Lower bounds: Binance sends at most one liquidation per symbol per second")
    return lines


def liquidation_text(alert: LiquidationAlertLike) -> str:
    """The alert as plain text (Telegram, and the plain form on Discord and Slack)."""
    links = symbol_links(alert.symbol)
    return "\n".join([liquidation_headline(alert), *liquidation_details(alert), links["binance"]])
