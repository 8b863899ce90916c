"""The backtest API on real Postgres replays 4 h rules (coarse samples from the stored rows, as
the live tracker takes them) and relative rules (statistics as of the period's start, from the
stored days before it)."""

import random
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from common.redis import get_redis
from oi.models import OpenInterestSnapshot, SnapshotSource

URL = "/api/alert-rules/backtest"
pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def fresh_redis(redis_client):
    get_redis.cache_clear()
    yield
    get_redis.cache_clear()


def store(symbol: str, values: list[float], *, start, step_sec: int) -> list:
    rows = [
        OpenInterestSnapshot(symbol=symbol, ts=start + timedelta(seconds=step_sec * i),
                             open_interest=Decimal(f"{v:.4f}"), mark_price=Decimal(2),
                             source=SnapshotSource.REALTIME)
        for i, v in enumerate(values)
    ]  # fmt: skip
    OpenInterestSnapshot.objects.bulk_create(rows)
    return [row.ts for row in rows]


def test_a_4h_draft_replays_from_the_stored_rows_with_the_window_4h_back(writer_client):
    # given 7 h of 1-minute samples: 960 for the first 200 min, 1000 after, 1010 from 6 h 30 min
    start = timezone.now().replace(microsecond=0, second=0) - timedelta(hours=7)
    values = [960.0] * 200 + [1000.0] * 190 + [1010.0] * 30
    times = store("BTCUSDT", values, start=start, step_sec=60)
    rule = {"window_sec": 4 * 3600, "threshold_pct": "0.05", "direction": "UP"}

    answer = writer_client.post(URL, {"rule": rule, "days": 0.25, "symbols": ["BTCUSDT"]},
                                format="json")  # fmt: skip

    assert answer.status_code == 200, answer.json()
    result = answer.json()["result"]
    # at 1010, the 960s of 3 h 11 min before lie inside the 4 h window: +5.2% against its low
    (alert,) = result["alerts"]
    assert alert["tMs"] == int(times[390].timestamp() * 1000)
    assert alert["pctChange"] == pytest.approx(1010 / 960 - 1)
    assert alert["referenceKind"] == "window_low"


def test_a_relative_draft_uses_the_statistics_as_of_the_period_start(writer_client):
    # given 3 days of 5-minute samples with ±0.3% noise, then a +4% hour in the last 6 h
    rng = random.Random(5)
    start = timezone.now().replace(microsecond=0, second=0) - timedelta(days=3)
    values = [1000 * (1 + rng.uniform(-0.003, 0.003)) for _ in range(3 * 288)]
    for i in range(3 * 288 - 30, 3 * 288 - 20):
        values[i] = 1040.0
    times = store("ETHUSDT", values, start=start, step_sec=300)
    rule = {"kind": "relative", "window_sec": 3600, "threshold_pct": "6", "step_pct": "6",
            "cooldown_sec": 3600}  # fmt: skip

    answer = writer_client.post(URL, {"rule": rule, "days": 0.25, "symbols": ["ETHUSDT"]},
                                format="json")  # fmt: skip

    assert answer.status_code == 200, answer.json()
    result = answer.json()["result"]
    assert result["relativeStats"] == {"asOfPeriodStart": 1}
    alerts = [(a["direction"], a["tMs"]) for a in result["alerts"]]
    # the jump up, and the fall back once the hour's oldest sample is one of the jump's (-3.8%
    # over the hour): both far out for this symbol
    assert alerts == [
        ("UP", int(times[3 * 288 - 30].timestamp() * 1000)),
        ("DOWN", int(times[3 * 288 - 18].timestamp() * 1000)),
    ]
    assert result["alerts"][0]["referenceKind"] == "window_start"


def test_a_relative_draft_without_history_before_the_period_has_no_verdict(writer_client):
    start = timezone.now().replace(microsecond=0, second=0) - timedelta(hours=8)
    store("SOLUSDT", [1000.0] * 60 + [1200.0] * 36, start=start, step_sec=300)
    rule = {"kind": "relative", "window_sec": 3600, "threshold_pct": "6"}

    answer = writer_client.post(URL, {"rule": rule, "days": 0.25, "symbols": ["SOLUSDT"]},
                                format="json")  # fmt: skip

    result = answer.json()["result"]
    assert result["relativeStats"] == {"none": 1}
    assert result["alerts"] == []
