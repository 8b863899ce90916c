"""Server-rendered debug pages. The page itself carries only settings and URLs; it reads its data
from the public API and the WebSocket feed, so what it shows is what any client would get."""

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_GET


def page_config() -> dict:
    """What the page's script needs: API paths and the alert rule's settings (global defaults;
    per-symbol admin overrides are not reflected)."""
    return {
        "urls": {
            "screener": reverse("oi-screener"),
            "samples": reverse("oi-snapshot-samples"),
            "poller": reverse("oi-poller-status"),
            "universe": reverse("oi-liquid-universe"),
            "alerts": reverse("oi-alert-list"),
            "feed": "/ws/open-interest/",
        },
        "alertRule": {
            "wLowSec": settings.OI_ALERT_W_LOW_SEC,
            "wHighSec": settings.OI_ALERT_W_HIGH_SEC,
            "spikeThresholdPct": settings.OI_SPIKE_THRESHOLD_PCT,
            "dumpThresholdPct": settings.OI_DUMP_THRESHOLD_PCT,
            "minBaselineSamples": settings.OI_ALERT_MIN_BASELINE_SAMPLES,
        },
        "ringWindowSec": settings.OI_RING_WINDOW_SEC,
        "maxSamplesLimit": settings.OI_SAMPLES_MAX_LIMIT,
        "universeRefreshSec": settings.LIQUIDITY_REFRESH_SEC,
        "maxIntervalSec": settings.OI_MAX_INTERVAL_SEC,
    }


@require_GET
def open_interest_debug_view(request: HttpRequest) -> HttpResponse:
    config = page_config()
    return render(
        request,
        "dashboard/open_interest.html",
        {
            "config": config,
            "baseline_from_min": settings.OI_ALERT_W_LOW_SEC / 60,
            "baseline_to_min": settings.OI_ALERT_W_HIGH_SEC / 60,
            "spike_pct": round(settings.OI_SPIKE_THRESHOLD_PCT * 100, 6),
            "dump_pct": round(settings.OI_DUMP_THRESHOLD_PCT * 100, 6),
        },
    )
