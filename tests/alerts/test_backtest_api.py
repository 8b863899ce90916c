"""POST /api/alert-rules/backtest and GET .../backtest/<job> on real Postgres and Redis, and the
management command: the alerts a rule would have raised on stored samples, and bad input."""

from datetime import timedelta
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import timezone

from alerts.models import AlertRule
from common.redis import get_redis
from oi.models import OpenInterestSnapshot, SnapshotSource

URL = "/api/alert-rules/backtest"
pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def fresh_redis(redis_client):
    get_redis.cache_clear()
    yield
    get_redis.cache_clear()


def store_series(symbol: str, values: list[float], *, start, step_sec=10, prices=None) -> list:
    rows = [
        OpenInterestSnapshot(
            symbol=symbol,
            ts=start + timedelta(seconds=step_sec * index),
            open_interest=Decimal(str(value)),
            mark_price=Decimal(str(prices[index])) if prices else Decimal("2"),
            source=SnapshotSource.REALTIME,
        )
        for index, value in enumerate(values)
    ]
    OpenInterestSnapshot.objects.bulk_create(rows)
    return [row.ts for row in rows]


@pytest.fixture
def two_hours():
    """BTCUSDT: 2 h of 10-second samples, flat at 1000 but +5% for 5 samples at 40 min (the
    price falling 1% with it) and +5% again at 80 min; ETHUSDT flat."""
    start = timezone.now().replace(microsecond=0) - timedelta(hours=2)
    values = [1000.0] * 720
    prices = [2.0] * 720
    for index in range(240, 245):
        values[index], prices[index] = 1050.0, 1.98
    for index in range(480, 490):
        values[index] = 1050.0
    times = store_series("BTCUSDT", values, start=start, prices=prices)
    store_series("ETHUSDT", [500.0] * 720, start=start)
    return times


DRAFT = {"window_sec": 300, "threshold_pct": "0.04", "direction": "UP", "cooldown_sec": 60}


def test_a_draft_rule_replays_over_the_stored_samples_and_its_job_keeps_the_result(
    writer_client, api_client, two_hours
):
    # when a draft (never saved) is tried on the last day of BTCUSDT and ETHUSDT
    answer = writer_client.post(
        URL, {"rule": DRAFT, "days": 1, "symbols": ["BTCUSDT", "ETHUSDT"]}, format="json"
    )

    # then it answers at once with the two alerts, each at the jump's first sample
    assert answer.status_code == 200, answer.json()
    body = answer.json()
    assert body["state"] == "done"
    result = body["result"]
    assert [(a["symbol"], a["direction"], a["tMs"]) for a in result["alerts"]] == [
        ("BTCUSDT", "UP", int(two_hours[240].timestamp() * 1000)),
        ("BTCUSDT", "UP", int(two_hours[480].timestamp() * 1000)),
    ]
    first = result["alerts"][0]
    assert first["pctChange"] == pytest.approx(0.05)
    assert first["reference"] == 1000.0 and first["referenceKind"] == "window_low"
    assert first["priceChangePct"] == pytest.approx(-0.01)
    assert first["regime"] == "short_build"
    # and what followed it, measured as the live outcomes job does: the price back at 2 from
    # 1.98 and OI back at 1000 from 1050, 5 min, 15 min and 1 h later
    for horizon in ("5m", "15m", "1h"):
        assert first["outcomes"][horizon]["status"] == "measured"
        assert first["outcomes"][horizon]["priceChange"] == pytest.approx(2 / 1.98 - 1)
        assert first["outcomes"][horizon]["oiChange"] == pytest.approx(1000 / 1050 - 1)
    # the second alert (80 min into 2 h of samples): nothing stored an hour after it yet
    second = result["alerts"][1]
    assert second["outcomes"]["5m"]["priceChange"] == pytest.approx(0.0)
    assert second["outcomes"]["1h"] == {"status": "no_data", "priceChange": None, "oiChange": None}
    assert result["outcomes"]["5m"]["measured"] == 2
    assert (
        result["outcomes"]["5m"]["shareUp"] == 0.5 and result["outcomes"]["5m"]["shareFlat"] == 0.5
    )
    assert result["outcomes"]["1h"]["measured"] == 1 and result["outcomes"]["1h"]["noData"] == 1
    # held back: the samples still up inside the minute's cooldown (4, then 5), then without
    # having re-armed (4); each jump's fall re-arms it
    assert result["actions"] == {"fire": 2, "hold_cooldown": 9, "hold_not_rearmed": 4, "rearm": 2}
    assert [(row["symbol"], row["alerts"]) for row in result["perSymbol"]] == [
        ("BTCUSDT", 2),
        ("ETHUSDT", 0),
    ]
    assert result["alertsPerSymbolDay"] == pytest.approx(2 / (2 * 7190 / 86400), rel=1e-3)
    assert result["rule"]["name"] == "draft" and result["rule"]["id"] is None
    assert not AlertRule.objects.filter(name="draft").exists()

    # and the job shows the same result later (a page reload), without a token
    job = api_client.get(f"{URL}/{body['job']}")
    assert job.status_code == 200
    assert job.json()["state"] == "done" and job.json()["result"] == result


def test_a_saved_rule_with_a_regime_holds_back_the_moves_of_other_regimes(writer_client, two_hours):
    # given a saved rule that asks for long builds only (OI up with the price up)
    rule = AlertRule.objects.create(
        name="long-builds", window_sec=300, threshold_pct=Decimal("0.04"), direction="UP",
        cooldown_sec=60, regimes=["long_build"],
    )  # fmt: skip

    answer = writer_client.post(URL, {"rule_id": rule.id, "days": 1}, format="json")

    # then no alert: the first jump was a short build, the second had a flat price
    assert answer.status_code == 200, answer.json()
    result = answer.json()["result"]
    assert result["alerts"] == [] and result["symbols"] == 2
    assert result["actions"]["blocked"] == 15
    assert result["blockedReasons"] == {"blocked_regime": 15}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (
            {"rule": DRAFT, "since": "2026-01-02T00:00:00Z", "until": "2026-01-01T00:00:00Z"},
            "since",
        ),
        ({"rule": DRAFT, "days": 0}, "days"),
        ({"rule": DRAFT, "days": 400}, "days"),
        ({"rule": DRAFT, "days": 1, "symbols": ["BTCUSDT", "NOPEUSDT"]}, "symbols"),
        ({"rule": {**DRAFT, "window_sec": 3 * 3600}, "days": 1}, "rule.window_sec"),
        ({"rule": {**DRAFT, "threshold_pct": "0"}, "days": 1}, "rule.threshold_pct"),
        ({"rule_id": 999999, "days": 1}, "rule_id"),
        ({"days": 1}, "rule_id"),
    ],
)
def test_bad_input_is_a_400_naming_the_field(writer_client, two_hours, body, field):
    answer = writer_client.post(URL, body, format="json")
    assert answer.status_code == 400
    error = answer.json()["error"]
    assert error.get("field") == field or field in error.get("fields", error), error


def test_a_period_without_stored_samples_is_a_400(writer_client, two_hours):
    answer = writer_client.post(
        URL,
        {"rule": DRAFT, "since": "2025-01-01T00:00:00Z", "until": "2025-01-02T00:00:00Z"},
        format="json",
    )
    assert answer.status_code == 400
    assert answer.json()["error"]["field"] == "since"


def test_a_backtest_needs_a_token(api_client, two_hours):
    answer = api_client.post(URL, {"rule": DRAFT, "days": 1}, format="json")
    assert answer.status_code in (401, 403)


def test_the_command_prints_the_alerts_and_what_held_the_others_back(two_hours):
    out = StringIO()
    call_command(
        "backtest_rule", "--draft", '{"window_sec": 300, "threshold_pct": "0.04", '
        '"direction": "UP", "cooldown_sec": 60}', "--days", "1", "--symbols", "BTCUSDT",
        stdout=out, stderr=StringIO(),
    )  # fmt: skip
    text = out.getvalue()
    assert "alerts: 2 (" in text
    assert "'hold_cooldown': 9" in text
    assert text.count("BTCUSDT") >= 3 and "+5.00% vs window_low 1000" in text
