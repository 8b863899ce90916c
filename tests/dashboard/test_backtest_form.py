"""The page's "try this rule on the last N days" form, used as a person would in headless Chromium
against the real ASGI server: pick a saved rule, change its threshold (a draft), run, read the
alerts per symbol-day and the list; a reload shows the result again."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from alerts.models import AlertRule
from oi.models import OpenInterestSnapshot, SnapshotSource
from tests.dashboard.test_debug_page import chromium_page, require_browser

pytestmark = pytest.mark.integration


def test_the_backtest_form_replays_a_changed_rule_and_keeps_its_result_across_a_reload(
    asgi_server, redis_client, api_key
):
    require_browser()
    # given 2 h of stored 10-second samples of BTCUSDT with a +5% step at 40 min, and a saved
    # 5-minute rule at 7% (which that step does not reach)
    start = timezone.now().replace(microsecond=0) - timedelta(hours=2)
    OpenInterestSnapshot.objects.bulk_create(
        OpenInterestSnapshot(
            symbol="BTCUSDT", ts=start + timedelta(seconds=10 * i),
            open_interest=Decimal("1050" if 240 <= i < 245 else "1000"), mark_price=Decimal("2"),
            source=SnapshotSource.REALTIME,
        )
        for i in range(720)
    )  # fmt: skip
    rule = AlertRule.objects.get(name="oi-5m-3pct")
    AlertRule.objects.filter(pk=rule.pk).update(threshold_pct=Decimal("0.07"))

    with chromium_page() as (page, errors):
        page.goto(f"{asgi_server}/debug/open-interest?token={api_key}")
        page.wait_for_selector(f"#bt-rule option[value='{rule.pk}']", state="attached")

        # when the saved rule is picked, its threshold lowered to 4%, for spikes only, and run on
        # the last day
        page.select_option("#bt-rule", str(rule.pk))
        assert page.input_value("#bt-threshold") == "7"
        page.fill("#bt-threshold", "4")
        page.select_option("#bt-direction", "UP")
        page.fill("#bt-days", "1")
        page.click("#bt-run")

        # then the draft's one alert is listed, with the alerts per symbol-day
        page.wait_for_selector("#bt-alerts li")
        summary = page.text_content("#bt-summary")
        assert summary == (
            "oi-5m-3pct (draft): 1 alerts, 12.017 per symbol-day over 1 symbols; "
            "held back / re-armed: hold_cooldown 4, rearm 1"
        )
        alerts = page.eval_on_selector_all(
            "#bt-alerts li", "items => items.map(i => i.textContent)"
        )
        assert len(alerts) == 1
        assert " BTCUSDT UP 5.00% price 0.00% build_price_flat" in alerts[0]
        assert page.text_content("#bt-per-symbol tr[data-symbol='BTCUSDT'] td:nth-child(2)") == "1"
        # and what followed it (the price held at 2: flat at every horizon)
        flat = "+0.00% [+0.00%, +0.00%] ↑0% →100% ↓0% (n=1)"
        assert page.text_content("#bt-outcomes") == (
            f"price after: 5m {flat} · 15m {flat} · 1h {flat}"
        )

        # and a reload shows the same result again (the job's result is kept)
        page.reload()
        page.wait_for_selector("#bt-alerts li")
        assert page.text_content("#bt-summary") == summary

        # and a bad input names its field
        page.fill("#bt-days", "400")
        page.click("#bt-run")
        page.wait_for_function(
            "document.getElementById('bt-status').textContent.startsWith('refused')"
        )
        assert page.text_content("#bt-status").startswith("refused: days: longer than the")
        assert errors == []
