"""The screener API and the page's server side, without a browser."""

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.test import Client

from alerts.models import AlertRule
from liquidity.models import LiquidSymbol
from oi.keys import MARK_PRICE_KEY
from oi.ring import RingSample, ring_append, ring_key

NOW_MS = 1_764_590_400_000  # 2025-12-01T12:00:00Z
MINUTE_MS = 60_000


def member(symbol: str, volume: str) -> LiquidSymbol:
    now = datetime.fromtimestamp(NOW_MS / 1000, tz=UTC)
    return LiquidSymbol.objects.create(
        symbol=symbol,
        quote_volume_24h=Decimal(volume),
        entered_at=now - timedelta(days=2),
        last_seen_at=now,
    )


@pytest.fixture
def frozen_now(monkeypatch):
    from django.utils import timezone

    fixed = datetime.fromtimestamp(NOW_MS / 1000, tz=UTC)
    monkeypatch.setattr(timezone, "now", lambda: fixed)
    return fixed


@pytest.mark.django_db
def test_the_screener_gives_every_member_its_latest_oi_and_changes(
    api_client, redis_client, frozen_now
):
    # given two members: one sampled over the last 70 minutes, one never sampled
    member("BTCUSDT", "9000000000")
    member("ETHUSDT", "5000000000")
    samples = [
        RingSample(NOW_MS - 70 * MINUTE_MS, Decimal(100), backfilled=True),  # before now-1h
        RingSample(NOW_MS - 20 * MINUTE_MS, Decimal(110)),  # at or before now-15m
        RingSample(NOW_MS - 5 * MINUTE_MS, Decimal(120)),  # exactly now-5m
        RingSample(NOW_MS - 10_000, Decimal(132)),  # the latest
    ]
    ring_append(redis_client, {"BTCUSDT": samples}, window_ms=3 * 3600 * 1000, now_ms=NOW_MS)
    redis_client.hset(MARK_PRICE_KEY, mapping={"BTCUSDT": "97000.5"})

    response = api_client.get("/api/market/open-interest/screener")

    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 2
    assert body["lookbacksSec"] == {"5m": 300, "15m": 900, "1h": 3600, "4h": 14400, "24h": 86400}
    btc, eth = body["symbols"]  # by 24h volume, highest first
    assert btc["symbol"] == "BTCUSDT"
    assert btc["quoteVolume24h"] == "9000000000"
    assert btc["openInterest"] == "132"
    assert btc["openInterestTime"] == "2025-12-01T11:59:50Z"
    assert btc["markPrice"] == "97000.5"
    assert btc["openInterestUsd"] == "12804066"
    assert btc["pctChange5m"] == pytest.approx(0.1)  # 120 → 132
    assert btc["pctChange15m"] == pytest.approx(0.2)  # 110 → 132
    assert btc["pctChange1h"] == pytest.approx(0.32)  # 100 → 132
    assert btc["ringSamples"] == 4
    assert eth == {
        "symbol": "ETHUSDT",
        "quoteVolume24h": "5000000000",
        "enteredAt": "2025-11-29T12:00:00Z",
        "openInterest": None,
        "openInterestTime": None,
        "markPrice": None,
        "openInterestUsd": None,
        "pctChange5m": None,
        "pctChange15m": None,
        "pctChange1h": None,
        "pctChange4h": None,
        "pctChange24h": None,
        "priceChange5m": None,
        "priceChange15m": None,
        "priceChange1h": None,
        "priceChange4h": None,
        "priceChange24h": None,
        "regime5m": "unknown",
        "regime15m": "unknown",
        "regime1h": "unknown",
        "regime4h": "unknown",
        "regime24h": "unknown",
        "ringSamples": 0,
        # the liquidation stream never ran in this test: unknown, not zero
        **{
            f"liq{side}Usd{label}": None
            for side in ("Long", "Short")
            for label in ("5m", "15m", "1h", "4h", "24h")
        },
    }


@pytest.mark.django_db
def test_a_change_is_null_when_the_ring_does_not_reach_back_that_far(
    api_client, redis_client, frozen_now
):
    member("BTCUSDT", "9000000000")
    samples = [RingSample(NOW_MS - 8 * MINUTE_MS, Decimal(100)), RingSample(NOW_MS, Decimal(90))]
    ring_append(redis_client, {"BTCUSDT": samples}, window_ms=3 * 3600 * 1000, now_ms=NOW_MS)

    (row,) = api_client.get("/api/market/open-interest/screener").json()["symbols"]

    assert row["pctChange5m"] == pytest.approx(-0.1)
    assert row["pctChange15m"] is None and row["pctChange1h"] is None
    assert row["openInterestUsd"] is None  # no mark price yet


@pytest.mark.django_db
def test_the_4h_and_24h_changes_come_from_the_coarse_ring_and_need_it_to_reach_back(
    api_client, redis_client, frozen_now
):
    # given 25 h of 10-second samples written as the sink writes them (both rings), OI rising
    # 1 contract a minute from 1000 and the price from 100 by 0.01 a minute
    member("BTCUSDT", "9000000000")
    member("ETHUSDT", "5000000000")
    start = NOW_MS - 25 * 3600 * 1000
    for hour in range(25):
        batch = [
            RingSample(t, Decimal(1000 + (t - start) // MINUTE_MS),
                       mark_price=Decimal(100) + Decimal((t - start) // MINUTE_MS) / 100)
            for t in range(start + hour * 3600_000, start + (hour + 1) * 3600_000, 10_000)
        ]  # fmt: skip
        ring_append(redis_client, {"BTCUSDT": batch}, window_ms=3 * 3600 * 1000,
                    now_ms=batch[-1].time_ms, coarse_window_ms=25 * 3600 * 1000)  # fmt: skip
    # and ETH with only the last 5 h, and a hole of 2 h around 4 h ago
    eth = [RingSample(NOW_MS - 5 * 3600_000 - 2 * MINUTE_MS, Decimal(500))] + [
        RingSample(t, Decimal(500)) for t in range(NOW_MS - 3 * 3600_000, NOW_MS, 60_000)
    ]
    ring_append(redis_client, {"ETHUSDT": eth}, window_ms=3 * 3600 * 1000, now_ms=NOW_MS,
                coarse_window_ms=25 * 3600 * 1000)  # fmt: skip

    btc_row, eth_row = api_client.get("/api/market/open-interest/screener").json()["symbols"]

    latest = 1000 + 25 * 60 - 1  # the sample 10 s before now
    # against the coarse sample at exactly now - 4 h (the first of its 5-minute bucket)
    assert btc_row["pctChange4h"] == pytest.approx(latest / (1000 + 21 * 60) - 1)
    assert btc_row["pctChange24h"] == pytest.approx(latest / (1000 + 60) - 1)
    assert btc_row["priceChange24h"] == pytest.approx(114.99 / 100.6 - 1)
    assert btc_row["regime24h"] == "long_build"
    assert btc_row["pctChange1h"] == pytest.approx(latest / (1000 + 24 * 60) - 1)
    # the coarse ring holds one sample per 5 minutes: 25 h = 300 members, not 9,000
    assert redis_client.zcard("oi:ring5m:BTCUSDT") == 300
    # ETH: no sample within an hour before now - 4 h (a hole), none 24 h back
    assert eth_row["pctChange4h"] is None and eth_row["pctChange24h"] is None


@pytest.mark.django_db
def test_the_page_carries_the_alert_rules_and_only_local_assets():
    AlertRule.objects.filter(kind="median_baseline").update(threshold_pct="0.07")
    AlertRule.objects.filter(name="oi-15m-7pct").update(enabled=False)
    response = Client().get("/debug/open-interest")

    assert response.status_code == 200
    html = response.content.decode()
    config = json.loads(html.split('id="oi-config" type="application/json">')[1].split("<")[0])
    assert config["alertRule"]["spikeThresholdPct"] == 0.07
    assert config["alertRule"]["wLowSec"] == 1800
    assert config["urls"]["screener"] == "/api/market/open-interest/screener"
    assert "±7% against the median of the samples aged 30 min–1 h" in html
    assert "±3% within 5 min (against the window&#x27;s low/high)" in html
    assert "oi-1h-12pct" in html and "oi-15m-7pct" not in html  # enabled rules only
    assert "baseline window (30–60 min)" in html
    assert "http://" not in html and "https://" not in html  # no CDN: works offline
    assert Client().get("/static/dashboard/vendor/uplot/uPlot.iife.min.js").status_code == 200


@pytest.mark.django_db
def test_each_window_carries_its_price_change_and_its_oi_price_regime(
    api_client, redis_client, frozen_now
):
    # OI rose over every window; the price fell over the last 5 min, rose over 15 min and barely
    # moved over the hour (+0.1%, inside the hour's dead band of 0.35%)
    member("BTCUSDT", "9000000000")
    samples = [
        RingSample(NOW_MS - 61 * MINUTE_MS, Decimal(100), mark_price=Decimal("1000")),
        RingSample(NOW_MS - 16 * MINUTE_MS, Decimal(110), mark_price=Decimal("950")),
        RingSample(NOW_MS - 6 * MINUTE_MS, Decimal(120), mark_price=Decimal("1020")),
        RingSample(NOW_MS - 10_000, Decimal(132), mark_price=Decimal("1001")),
    ]
    ring_append(redis_client, {"BTCUSDT": samples}, window_ms=3 * 3600 * 1000, now_ms=NOW_MS)

    (row,) = api_client.get("/api/market/open-interest/screener").json()["symbols"]

    assert row["priceChange5m"] == pytest.approx(1001 / 1020 - 1)
    assert row["regime5m"] == "short_build"  # OI up, price down
    assert row["priceChange15m"] == pytest.approx(1001 / 950 - 1)
    assert row["regime15m"] == "long_build"  # OI up, price up
    assert row["priceChange1h"] == pytest.approx(0.001)
    assert row["regime1h"] == "build_price_flat"

    # a falling OI with a falling price is a long flush; a sample without a price gives no label
    redis_client.delete(ring_key("BTCUSDT"))
    ring_append(
        redis_client,
        {"BTCUSDT": [
            RingSample(NOW_MS - 6 * MINUTE_MS, Decimal(100), mark_price=Decimal("1000")),
            RingSample(NOW_MS - 10_000, Decimal(90), mark_price=Decimal("950")),
        ]},
        window_ms=3 * 3600 * 1000, now_ms=NOW_MS,
    )  # fmt: skip
    (row,) = api_client.get("/api/market/open-interest/screener").json()["symbols"]
    assert row["regime5m"] == "long_flush"
    assert row["regime15m"] == "unknown"  # the ring does not reach back 15 min
