"""The page's Outcomes panel in a real headless Chromium against the ASGI server: what followed a
rule's alerts, per regime, measured by the outcomes job from stored samples."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from alerts.models import AlertRule, OpenInterestAlert
from alerts.outcome_services import alert_outcomes_fill
from oi.models import OpenInterestSnapshot
from tests.dashboard.test_debug_page import chromium_page, require_browser
from tests.fixtures.processes import ARTIFACTS

pytestmark = pytest.mark.integration


def alert_with_path(rule, symbol, regime, at, oi, price, path):
    """An alert at `at` and its stored samples: path = {seconds after: (OI, price)}."""
    OpenInterestAlert.objects.create(
        symbol=symbol, direction="UP", baseline=Decimal(oi) * Decimal("0.9"), current=Decimal(oi),
        pct_change=Decimal("0.11"), abs_change=Decimal(oi) * Decimal("0.1"),
        source="oi_realtime_poller", ts=at, rule=rule, rule_name=rule.name, window_sec=300,
        mark_price=Decimal(price), regime=regime,
    )  # fmt: skip
    OpenInterestSnapshot.objects.bulk_create(
        [
            OpenInterestSnapshot(
                symbol=symbol,
                ts=at + timedelta(seconds=sec),
                open_interest=Decimal(o),
                mark_price=Decimal(p),
                source="realtime",
            )
            for sec, (o, p) in path.items()
        ]
    )


def test_the_outcomes_panel_shows_each_rules_forward_moves_per_regime(
    asgi_server, redis_client, settings
):
    require_browser()
    settings.OI_MAX_INTERVAL_SEC = 20.0
    rule = AlertRule.objects.create(
        name="panel rule", window_sec=300, threshold_pct=Decimal("0.05"), scope="only",
        symbols=["BTCUSDT", "ETHUSDT"],
    )  # fmt: skip
    at = timezone.now().replace(microsecond=0) - timedelta(hours=2)
    alert_with_path(
        rule, "BTCUSDT", "long_build", at, "1000", "100",
        {300: ("1010", "101"), 900: ("1020", "102"), 3600: ("1000", "99")},
    )  # fmt: skip
    alert_with_path(  # nothing stored at 15 min: no data there
        rule, "ETHUSDT", "short_build", at + timedelta(minutes=1), "500", "10",
        {300: ("510", "9.9"), 3600: ("490", "10.2")},
    )  # fmt: skip
    alert_outcomes_fill()

    with chromium_page() as (page, page_errors):
        page.goto(f"{asgi_server}/debug/open-interest")
        row = "#outcomes-body tr[data-rule='panel rule']"
        page.wait_for_selector(f"{row}[data-regime='all']", timeout=15_000)

        def cell(regime, measure, horizon):
            return page.inner_text(
                f"{row}[data-regime='{regime}'] td[data-measure='{measure}']"
                f"[data-horizon='{horizon}']"
            )

        overall = page.eval_on_selector(
            f"{row}[data-regime='all']", "tr => Array.from(tr.children).map(td => td.innerText)"
        )
        # two alerts on the rule's two symbols over the 30-day period
        assert overall[:4] == ["panel rule", "every regime", "2", "0.033"]
        # +1% and −1% at 5 min: median 0, quartiles ±0.5%, one up, one down
        assert cell("all", "priceChange", "5m").split("\n") == [
            "0.00% [−0.50%, +0.50%]", "50% ↑ · 0% → · 50% ↓ (n=2)",
        ]  # fmt: skip
        assert cell("all", "priceChange", "15m").startswith("+2.00%")  # the one with a sample
        assert cell("long_build", "priceChange", "1h").startswith("−1.00%")
        assert cell("short_build", "priceChange", "1h").startswith("+2.00%")
        assert cell("short_build", "priceChange", "15m") == "no data"
        assert cell("short_build", "oiChange", "5m").startswith("+2.00%")
        regimes = page.eval_on_selector_all(
            f"{row}:not([data-regime='all'])", "rows => rows.map(r => r.children[1].innerText)"
        )
        assert regimes == ["long build", "short build"]
        text = page.inner_text("[aria-label=Outcomes]").lower()
        assert "win rate" not in text and "not advice" in text
        assert page_errors == []
        page.locator("#outcomes").scroll_into_view_if_needed()
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "debug-page-outcomes.png"), full_page=False)
