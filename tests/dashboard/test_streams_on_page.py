"""The market streams on the page, in a real headless Chromium against the ASGI server: the poller
panel tells where mark prices come from and each stream's freshness; an alert item and the
screener's "Liq 5m" column carry liquidations as lower bounds."""

import threading
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from alerts.liquidation_rules import BurstRule, BurstVerdict, LiquidatedSide
from alerts.liquidation_services import liquidation_alert_store
from alerts.models import OpenInterestAlert, RuleKind
from alerts.services import alert_rule_create
from common.timeutil import ms_from_datetime, now_ms
from exchange.streams import Liquidation, LiquidationSide, MarketStream
from liquidity.models import LiquidSymbol
from streams.keys import LAST_FRAME_KEY, MARK_PRICE_SOURCE_KEY
from streams.services import liquidations_store
from tests.dashboard.test_debug_page import chromium_page

pytestmark = pytest.mark.integration


def test_the_page_shows_stream_freshness_the_mark_price_source_and_liquidations(
    asgi_server, redis_client, settings
):
    now = timezone.now().replace(microsecond=0)
    # the mark-price stream is fresh, the mini tickers went silent 40 s ago; REST is in use
    redis_client.hset(
        LAST_FRAME_KEY,
        mapping={MarketStream.MARK_PRICE: now_ms(), MarketStream.MINI_TICKER: now_ms() - 40_000},
    )
    redis_client.set(MARK_PRICE_SOURCE_KEY, "rest")
    LiquidSymbol.objects.create(
        symbol="BTCUSDT", quote_volume_24h=Decimal("9e9"), entered_at=now - timedelta(days=2),
        last_seen_at=now,
    )  # fmt: skip
    at = ms_from_datetime(now) - 60_000
    liquidations_store(
        [
            Liquidation("BTCUSDT", LiquidationSide.SELL, Decimal(100), Decimal(100), q, at, at)
            for q, at in ((Decimal(1500), at), (Decimal(250), at + 1000))
        ]
    )  # $150K and $25K of longs in the last 5 min
    OpenInterestAlert.objects.create(
        symbol="ETHUSDT", direction="DOWN", baseline=Decimal(1000), current=Decimal(900),
        pct_change=Decimal("-0.1"), abs_change=Decimal(-100), source="oi_realtime_poller",
        ts=now, rule_name="oi-5m-3pct", window_sec=300,
        liquidations_long_usd=Decimal("1234567"), liquidations_short_usd=Decimal(0),
    )  # fmt: skip

    with chromium_page() as (page, page_errors):
        page.goto(f"{asgi_server}/debug/open-interest")
        page.wait_for_selector("#poller-streams li[data-state]", timeout=15_000)
        assert page.inner_text("#poller-mark-source") == "REST (premiumIndex)"
        states = page.eval_on_selector_all(
            "#poller-streams li",
            "lis => lis.map(li => [li.dataset.stream, li.dataset.state, li.className])",
        )
        assert states == [
            ["!markPrice@arr@1s", "fresh", ""],
            ["!miniTicker@arr", "stale", "stale"],
            ["!forceOrder@arr", "fresh", ""],
        ]
        ticker = page.inner_text("#poller-streams li[data-stream='!miniTicker@arr']")
        assert ticker.startswith("mini tickers: stale · 4")  # 40 s (or 41 s) ago

        page.wait_for_selector("#screener-body tr[data-symbol='BTCUSDT']", timeout=15_000)
        headers = page.eval_on_selector_all(
            "#screener th[data-key]", "ths => ths.map(t => t.innerText)"
        )
        column = headers.index("Liq 5m")
        cell = page.eval_on_selector(
            "#screener-body tr[data-symbol='BTCUSDT']",
            f"tr => tr.children[{column}].innerText",
        )
        assert cell == "$175.00k / $0"

        page.wait_for_function(
            "document.body.innerText.includes('liq ≥ $1.23M long, ≥ $0 short')", timeout=15_000
        )
        assert page_errors == []


def test_the_page_lists_liquidation_bursts_stored_and_live_and_their_rule(
    asgi_server, redis_client
):
    now = timezone.now().replace(microsecond=0)
    rule = alert_rule_create(
        name="liq-5m-longs", kind=RuleKind.LIQUIDATION_BURST, window_sec=300,
        liquidated_side="long", threshold_usd=Decimal(1_000_000),
        threshold_volume_share=Decimal("0.0005"),
    )  # fmt: skip
    burst = BurstRule(
        rule_id=rule.pk, name=rule.name, window_sec=300, sides=frozenset({LiquidatedSide.LONG}),
        threshold_usd=Decimal(1_000_000),
    )  # fmt: skip

    def verdict(symbol: str, usd: int, at) -> BurstVerdict:
        return BurstVerdict(
            rule=burst, symbol=symbol, side=LiquidatedSide.LONG, t_ms=ms_from_datetime(at),
            usd=Decimal(usd), count=9, other_side_usd=Decimal(0),
            threshold_usd=Decimal(1_000_000), quote_volume_24h=None,
        )  # fmt: skip

    stored = liquidation_alert_store(
        verdict("ETHUSDT", 1_500_000, now - timedelta(minutes=3)), mark_price=None
    )
    with chromium_page() as (page, page_errors):
        page.goto(f"{asgi_server}/debug/open-interest")
        assert "longs liquidated ≥ $1.0M (or ≥ 0.05% of the 24 h volume if more) within 5 min" in (
            page.inner_text("body")
        )
        page.wait_for_selector("#liquidation-alerts li[data-symbol='ETHUSDT']", timeout=15_000)
        page.wait_for_function(
            "document.querySelector('#feed-status').dataset.state === 'live'", timeout=15_000
        )
        # (the page's event loop runs on this thread: the ORM is used from another one)
        stored_live = []
        writer = threading.Thread(
            target=lambda: stored_live.append(
                liquidation_alert_store(verdict("SOLUSDT", 2_400_000, now), mark_price=None)
            )
        )
        writer.start()
        writer.join(timeout=10)
        [live] = stored_live
        page.wait_for_selector("#liquidation-alerts li[data-symbol='SOLUSDT']", timeout=15_000)
        items = page.eval_on_selector_all(
            "#liquidation-alerts li", "lis => lis.map(li => [li.dataset.alertId, li.innerText])"
        )
        assert [int(i) for i, _ in items] == [live.id, stored.id]  # newest first
        assert items[0][1].startswith("LONGS LIQUIDATED")
        assert "≥ $2.40M" in items[0][1] and "9 orders in 5 min" in items[0][1]
        assert page_errors == []
