"""Relative rules on the running system: statistics refreshed from the stored snapshots by the
beat job on a real worker and bootstrapped from openInterestHist over HTTP (the simulator),
inspectable per symbol through the API; the live engine firing a relative rule and a 4 h rule
from the rings."""

import random
from datetime import timedelta
from decimal import Decimal

import pytest
from django.conf import settings as django_settings
from django.utils import timezone

from alerts import evaluation
from alerts.evaluation import alerts_evaluate
from alerts.models import AlertRule, OpenInterestAlert, OpenInterestChangeStats
from alerts.relative_selectors import CHANGE_STATS_VERSION_KEY
from common.redis import get_redis
from common.timeutil import ms_from_datetime, now_ms
from liquidity.models import LiquidSymbol
from oi.models import OpenInterestSnapshot
from oi.ring import RingSample, ring_append
from tests.fixtures.processes import wait_until

PRESET = "oi-4h-relative-z6"
FOUR_HOURS = 4 * 3600


def liquid(symbol: str, volume: str = "500000000") -> None:
    now = timezone.now()
    LiquidSymbol.objects.create(symbol=symbol, quote_volume_24h=Decimal(volume),
                                entered_at=now - timedelta(days=9), last_seen_at=now)  # fmt: skip


def stored_history(symbol: str, *, days: float, seed: int = 3) -> None:
    """5-minute realtime snapshots with ±0.5% noise, ending now."""
    rng = random.Random(seed)
    end = timezone.now()
    count = int(days * 288)
    OpenInterestSnapshot.objects.bulk_create(
        OpenInterestSnapshot(
            symbol=symbol, ts=end - timedelta(minutes=5 * (count - i)),
            open_interest=Decimal(f"{1000 * (1 + rng.uniform(-0.005, 0.005)):.4f}"),
            mark_price=Decimal(10), source="realtime",
        )
        for i in range(count)
    )  # fmt: skip


def exchange_symbols(sim, n: int) -> list[str]:
    info = sim.get("/fapi/v1/exchangeInfo").json()
    return [s["symbol"] for s in info["symbols"]
            if s["contractType"] == "PERPETUAL" and s["status"] == "TRADING"][:n]  # fmt: skip


def test_beat_refreshes_the_statistics_hourly_on_the_backfill_queue_and_it_expires_first():
    entry = django_settings.CELERY_BEAT_SCHEDULE["alerts-change-stats-refresh"]
    assert entry["task"] == "alerts.change_stats_refresh"
    assert entry["options"]["queue"] == "oi_backfill"
    assert entry["options"]["expires"] < entry["schedule"]


def test_the_job_on_a_real_worker_refreshes_from_snapshots_and_bootstraps_from_the_exchange(
    celery_processes, sim, api_client
):
    from alerts.tasks import change_stats_refresh_task

    stored, fresh = exchange_symbols(sim, 2)
    # given a symbol with 3 days of stored samples, one a fresh install has never stored, and
    # one the exchange does not know (no history anywhere)
    for symbol in (stored, fresh, "NOHISTORYUSDT"):
        liquid(symbol)
    stored_history(stored, days=3)
    celery_processes.start_worker(queues="oi_backfill", BINANCE_BASE_URL=sim.base_url)

    change_stats_refresh_task.apply_async(queue="oi_backfill", expires=120)

    # (the version is bumped once the job has written every symbol's statistics; counting rows
    # instead raced the job's end on a busy machine)
    wait_until(lambda: get_redis().get(CHANGE_STATS_VERSION_KEY), 60, "no statistics")
    from_snapshots = OpenInterestChangeStats.objects.get(symbol=stored, window_sec=FOUR_HOURS)
    assert from_snapshots.source == "snapshots"
    assert from_snapshots.count == 3 * 288 - 48 - 1  # every 5-minute sample with 4 h behind it
    assert 0.002 < from_snapshots.scale < 0.006
    bootstrapped = OpenInterestChangeStats.objects.get(symbol=fresh, window_sec=FOUR_HOURS)
    assert bootstrapped.source == "open_interest_hist"
    # two pages of 500 5-minute entries (~83 h) from the simulator, over HTTP
    assert 900 <= bootstrapped.count <= 1000 - 48
    assert not OpenInterestChangeStats.objects.filter(symbol="NOHISTORYUSDT").exists()

    # and each is inspectable through the API; the symbol without history says so
    body = api_client.get(f"/api/open-interest/{fresh}/change-stats").json()
    (window,) = body["windows"]
    assert window["windowSec"] == FOUR_HOURS and window["source"] == "open_interest_hist"
    assert window["scale"] == pytest.approx(bootstrapped.scale)
    assert body["withoutStats"] == []
    none = api_client.get("/api/open-interest/NOHISTORYUSDT/change-stats").json()
    assert none["windows"] == [] and none["withoutStats"] == [FOUR_HOURS]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("/api/open-interest/btc-usdt!/change-stats", "symbol"),
        ("/api/open-interest/BTCUSDT/change-stats?window=4h", "window"),
        ("/api/open-interest/BTCUSDT/change-stats?window=0", "window"),
    ],
)
def test_bad_input_to_the_statistics_api_is_a_400_naming_the_field(api_client, path, field):
    answer = api_client.get(path)
    assert answer.status_code == 400
    assert answer.json()["error"]["field"] == field


# The live engine


def rings(redis_client, symbol: str, values_at, *, hours: float, end_ms: int) -> None:
    """10-second samples for ``hours`` up to ``end_ms``, written as the sink writes them."""
    samples = [RingSample(t, Decimal(str(values_at(t))), mark_price=Decimal(10))
               for t in range(end_ms - int(hours * 3600_000), end_ms, 10_000)]  # fmt: skip
    for start in range(0, len(samples), 360):
        batch = samples[start : start + 360]
        ring_append(redis_client, {symbol: batch}, window_ms=3 * 3600_000,
                    now_ms=batch[-1].time_ms, coarse_window_ms=25 * 3600_000)  # fmt: skip


@pytest.mark.django_db
def test_the_live_engine_fires_a_relative_rule_on_an_outlier_only_where_statistics_exist(
    redis_client,
):
    AlertRule.objects.update(enabled=False)
    AlertRule.objects.filter(name=PRESET).update(enabled=True)
    now = timezone.now()
    # CALM's 4 h change has a robust sigma of 0.4%; NOSTATS has no statistics
    OpenInterestChangeStats.objects.create(
        symbol="CALMUSDT", window_sec=FOUR_HOURS, median=0.0, scale=0.004, count=800,
        first_ts=now - timedelta(days=3), last_ts=now, source="snapshots", computed_at=now,
    )  # fmt: skip
    evaluation.engine_reset()
    end = now_ms() - 20_000
    for symbol in ("CALMUSDT", "NOSTATSUSDT"):
        rings(redis_client, symbol, lambda t: 1000, hours=5, end_ms=end)
    # a +2% move over 4 h: 5 robust sigmas for CALM, under its z of 6
    for symbol in ("CALMUSDT", "NOSTATSUSDT"):
        ring_append(redis_client, {symbol: [RingSample(end, Decimal(1020))]},
                    window_ms=3 * 3600_000, now_ms=end, coarse_window_ms=25 * 3600_000)  # fmt: skip
    assert alerts_evaluate(["CALMUSDT", "NOSTATSUSDT"], mark_prices={}) == []
    # +5%: 12.5 robust sigmas: CALM alerts; the symbol without statistics gets no verdict
    for symbol in ("CALMUSDT", "NOSTATSUSDT"):
        ring_append(redis_client, {symbol: [RingSample(end + 10_000, Decimal(1050))]},
                    window_ms=3 * 3600_000, now_ms=end + 10_000,
                    coarse_window_ms=25 * 3600_000)  # fmt: skip
    (raised,) = alerts_evaluate(["CALMUSDT", "NOSTATSUSDT"], mark_prices={})
    alert = raised.alert
    assert (alert.symbol, alert.rule_name, alert.direction) == ("CALMUSDT", PRESET, "UP")
    assert alert.pct_change == pytest.approx(Decimal("0.05"))
    assert alert.reference == "window_start" and alert.window_sec == FOUR_HOURS
    assert OpenInterestAlert.objects.count() == 1


@pytest.mark.django_db
def test_a_process_started_late_rebuilds_a_4h_window_from_the_coarse_ring(redis_client):
    # given a 4 h rule and 5 h of history, only the last 3 h of it in the full-resolution ring
    AlertRule.objects.update(enabled=False)
    rule = AlertRule.objects.create(name="oi-4h-8pct", kind="window_change", window_sec=FOUR_HOURS,
                                    threshold_pct="0.08", direction="UP")  # fmt: skip
    end = now_ms() - 20_000
    start = end - 5 * 3600_000
    # OI was 950 until 3.5 h ago and 1000 since
    rings(redis_client, "LATEUSDT",
          lambda t: 950 if t < start + 1.5 * 3600_000 else 1000, hours=5, end_ms=end)  # fmt: skip
    assert redis_client.zcard("oi:ring:LATEUSDT") <= 3 * 360 + 1
    evaluation.engine_reset()  # a process that never saw the first 2 h
    ring_append(redis_client, {"LATEUSDT": [RingSample(end, Decimal(1030))]},
                window_ms=3 * 3600_000, now_ms=end, coarse_window_ms=25 * 3600_000)  # fmt: skip

    (raised,) = alerts_evaluate(["LATEUSDT"], mark_prices={})

    # the window's low (950, 3.5 h ago) came from the coarse ring: +8.4%
    assert raised.alert.rule_id == rule.pk
    assert raised.alert.pct_change == pytest.approx(Decimal(1030) / 950 - 1, rel=Decimal("1e-9"))
    assert ms_from_datetime(raised.alert.ts) == end
