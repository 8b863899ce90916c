"""Server-rendered debug pages. The page itself carries only settings and URLs; it reads its data
from the public API and the WebSocket feed, so what it shows is what any client would get."""

from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_GET

from alerts.enums import Direction
from alerts.formatting import duration, threshold_pct, usd
from alerts.liquidation_rules import ALL_SIDES, BurstRule, LiquidatedSide
from alerts.liquidation_selectors import liquidation_rules_enabled
from alerts.rules import Rule, RuleKind, Scope
from alerts.selectors import alert_rules_enabled
from common.authentication import request_has_api_token
from common.permissions import signed_in_staff


def page_config() -> dict:
    """What the page's script needs: API paths, the enabled alert rules, and the median rule's
    settings for drawing its baseline (per-symbol overrides are not drawn)."""
    rules = alert_rules_enabled()
    median = next((rule for rule in rules if rule.kind is RuleKind.MEDIAN_BASELINE), None)
    return {
        "urls": {
            "screener": reverse("oi-screener"),
            "market": reverse("oi-market-view"),
            "samples": reverse("oi-snapshot-samples"),
            "poller": reverse("oi-poller-status"),
            "universe": reverse("oi-liquid-universe"),
            "alerts": reverse("oi-alert-list"),
            "rules": reverse("alert-rule-list"),
            "outcomes": reverse("alert-outcome-list"),
            "liquidationAlerts": reverse("liquidation-alert-list"),
            "feed": "/ws/open-interest/",
        },
        "alertRule": {
            "name": median.name,
            "wLowSec": median.baseline_from_sec,
            "wHighSec": median.window_sec,
            "spikeThresholdPct": median.up_threshold,
            "dumpThresholdPct": median.down_threshold,
            "minBaselineSamples": median.min_samples,
        }
        if median
        else None,
        "ringWindowSec": settings.OI_RING_WINDOW_SEC,
        "maxSamplesLimit": settings.OI_SAMPLES_MAX_LIMIT,
        "universeRefreshSec": settings.LIQUIDITY_REFRESH_SEC,
        "maxIntervalSec": settings.OI_MAX_INTERVAL_SEC,
    }


def rule_summary(rule: Rule) -> str:
    """One line a trader reads, e.g. "±3% within 5 min (against the window's low/high)"."""
    sign = {(Direction.UP,): "+", (Direction.DOWN,): "−"}.get(rule.directions, "±")
    if rule.kind is RuleKind.RELATIVE:
        text = (
            f"{sign}{rule.up_threshold:g} robust σ of the symbol's own {duration(rule.window_sec)} "
            "changes (no verdict without its statistics)"
        )
        return (
            text
            if rule.scope == Scope.ALL
            else f"{text}; {rule.scope} " + ", ".join(sorted(rule.symbols))
        )
    if rule.up_threshold == rule.down_threshold or len(rule.directions) == 1:
        threshold = f"{sign}{threshold_pct(rule.threshold(rule.directions[0]))}"
    else:
        threshold = f"+{threshold_pct(rule.up_threshold)} / −{threshold_pct(rule.down_threshold)}"
    if rule.kind is RuleKind.MEDIAN_BASELINE:
        text = (
            f"{threshold} against the median of the samples aged "
            f"{duration(rule.baseline_from_sec)}–{duration(rule.window_sec)}"
        )
    else:
        text = f"{threshold} within {duration(rule.window_sec)} (against the window's low/high)"
    if rule.liquidity_tiers:
        text += " × the symbol's liquidity tier"
    if rule.scope != Scope.ALL:
        text += f"; {rule.scope} {', '.join(sorted(rule.symbols))}"
    return text


def burst_rule_summary(rule: BurstRule) -> str:
    """e.g. "longs liquidated ≥ $1.0M (or ≥ 0.1% of the 24 h volume if more) within 5 min"."""
    whose = (
        "longs or shorts"
        if rule.sides == ALL_SIDES
        else "longs"
        if LiquidatedSide.LONG in rule.sides
        else "shorts"
    )
    parts = []
    if rule.threshold_usd is not None:
        parts.append(f"≥ {usd(rule.threshold_usd)}")
    if rule.threshold_volume_share is not None:
        share = f"≥ {float(rule.threshold_volume_share) * 100:g}% of the 24 h volume"
        parts.append(f"(or {share} if more)" if parts else share)
    text = f"{whose} liquidated {' '.join(parts)} within {duration(rule.window_sec)}"
    if rule.scope != Scope.ALL:
        text += f"; {rule.scope} {', '.join(sorted(rule.symbols))}"
    return text


@require_GET
def open_interest_debug_view(request: HttpRequest) -> HttpResponse:
    """The page. With API_READS_REQUIRE_AUTH it shows the rules only to a staff member signed in
    at /admin/ (a browser is sent to the login) or to a request with an API token."""
    if settings.API_READS_REQUIRE_AUTH and not (
        signed_in_staff(request) or request_has_api_token(request)
    ):
        return redirect_to_login(request.get_full_path(), login_url=reverse("admin:login"))
    config = page_config()
    rules = [
        {"name": rule.name, "summary": rule_summary(rule), "cooldown_min": rule.cooldown_sec / 60}
        for rule in alert_rules_enabled()
    ] + [
        {
            "name": rule.name,
            "summary": burst_rule_summary(rule),
            "cooldown_min": rule.cooldown_sec / 60,
        }
        for rule in liquidation_rules_enabled()
    ]
    return render(request, "dashboard/open_interest.html", {"config": config, "rules": rules})
