"""POST /api/open-interest-alerts/ingest and GET /api/open-interest-alerts, real Postgres + Redis."""

from datetime import UTC, datetime, timedelta

import pytest
from django.conf import settings

from alerts.models import OpenInterestAlert
from alerts.services import COOLDOWN_KEY
from common.redis import get_redis

INGEST_URL = "/api/open-interest-alerts/ingest"
LIST_URL = "/api/open-interest-alerts"
T0 = datetime(2025, 12, 1, 12, 0, tzinfo=UTC)

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def fresh_redis(redis_client):
    get_redis.cache_clear()
    yield
    get_redis.cache_clear()


def alert(symbol="BTCUSDT", direction="UP", minutes=0, **fields) -> dict:
    up = direction == "UP"
    return {
        "symbol": symbol,
        "direction": direction,
        "baseline": 150000.0,
        "current": 165000.0 if up else 135000.0,
        "pctChange": 0.1 if up else -0.1,
        "absChange": 15000.0 if up else -15000.0,
        "timestamp": (T0 + timedelta(minutes=minutes)).isoformat().replace("+00:00", "Z"),
        "source": "oi_realtime_poller",
        **fields,
    }


DESIGN_FIELDS = (
    "id", "symbol", "direction", "baseline", "current", "pctChange", "absChange", "timestamp",
    "source",
)  # fmt: skip


def test_an_alert_is_stored_once_and_a_resend_changes_nothing(writer_client):
    created = writer_client.post(INGEST_URL, alert(), format="json")
    assert created.status_code == 200
    body = created.json()
    assert body["outcome"] == "created"
    assert {key: body["alert"][key] for key in DESIGN_FIELDS} == {
        "id": OpenInterestAlert.objects.get().id,
        "symbol": "BTCUSDT",
        "direction": "UP",
        "baseline": 150000.0,
        "current": 165000.0,
        "pctChange": 0.1,
        "absChange": 15000.0,
        "timestamp": "2025-12-01T12:00:00Z",
        "source": "oi_realtime_poller",
    }
    # an alert from another producer has no rule and no market context, but its links and count
    assert body["alert"]["rule"] is None
    assert body["alert"]["alerts24h"] == 1
    assert body["alert"]["links"]["binance"] == "https://www.binance.com/en/futures/BTCUSDT"
    again = writer_client.post(INGEST_URL, alert(), format="json")
    assert again.status_code == 200
    assert again.json()["outcome"] == "duplicate"
    assert again.json()["alert"]["id"] == body["alert"]["id"]
    assert OpenInterestAlert.objects.count() == 1


def test_the_same_move_within_the_cooldown_is_refused_visibly_and_the_other_way_is_not(
    writer_client,
):
    writer_client.post(INGEST_URL, alert(), format="json")
    held = writer_client.post(INGEST_URL, alert(minutes=5), format="json")
    assert held.status_code == 200
    assert held.json()["outcome"] == "cooldown"
    assert held.json()["detail"] == "BTCUSDT UP alerted within its cooldown; not stored"
    other_way = writer_client.post(INGEST_URL, alert(direction="DOWN", minutes=5), format="json")
    assert other_way.json()["outcome"] == "created"
    other_symbol = writer_client.post(INGEST_URL, alert(symbol="ETHUSDT", minutes=5), format="json")
    assert other_symbol.json()["outcome"] == "created"
    assert OpenInterestAlert.objects.count() == 3


def test_a_cooldown_claimed_by_a_process_that_died_before_storing_does_not_hold_an_alert(
    writer_client, redis_client
):
    # given a claim made 40 s ago (its TTL shows it) by a process that never stored its alert
    key = COOLDOWN_KEY.format("BTCUSDT", "UP")
    redis_client.set(key, int(T0.timestamp() * 1000), ex=settings.OI_ALERT_COOLDOWN_SEC - 40)

    created = writer_client.post(INGEST_URL, alert(minutes=1), format="json")

    assert created.json()["outcome"] == "created"
    # and a claim whose alert exists still holds the next one back
    held = writer_client.post(INGEST_URL, alert(minutes=2), format="json")
    assert held.json()["outcome"] == "cooldown"


@pytest.mark.parametrize(
    ("fields", "field", "reason"),
    [
        ({"direction": "SIDEWAYS"}, "direction", "must be UP or DOWN"),
        ({"pctChange": -0.1}, "pctChange", "must be above 0 for UP"),
        ({"absChange": -5}, "absChange", "must be above 0 for UP"),
        ({"baseline": -1}, "baseline", "must not be negative"),
        ({"baseline": 0}, "baseline", "must be above 0"),
        ({"current": "lots"}, "current", "'lots' is not a decimal number"),
        ({"symbol": "btc"}, "symbol", None),
        ({"timestamp": "2025-12-01 12:00"}, "timestamp", None),
        ({"source": "rumour"}, "source", "must be one of oi_realtime_poller, ingest"),
        ({"timeframe": "2 min"}, "timeframe", "must be one of 5 min, 15 min, 1 hour"),
        ({"timeframe": ["5 min"]}, "timeframe", "must be one of 5 min, 15 min, 1 hour"),
        ({"direction": ["UP"]}, "direction", "must be UP or DOWN"),
        ({"priceChange": "up"}, "priceChange", "'up' is not a decimal number"),
    ],
)
def test_a_bad_alert_is_refused_with_the_field_and_reason(writer_client, fields, field, reason):
    response = writer_client.post(INGEST_URL, alert(**fields), format="json")
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["field"] == field
    if reason:
        assert error["reason"] == reason
    assert OpenInterestAlert.objects.count() == 0


def test_the_volspike_pollers_timeframe_and_context_are_stored_and_each_window_is_its_own_alert(
    writer_client,
):
    # given the poller's 5 min and 15 min alerts on the same sample, with an unknown key
    five = alert(timeframe="5 min", priceChange=0.021, fundingRate=-0.0003, chunkId=7)
    fifteen = alert(timeframe="15 min", priceChange=0.035, fundingRate=None)

    first = writer_client.post(INGEST_URL, five, format="json")
    second = writer_client.post(INGEST_URL, fifteen, format="json")

    # then both are stored, each with its window and context, and the unknown key is named
    assert (first.status_code, second.status_code) == (200, 200)
    assert first.json()["success"] is True
    assert first.json()["id"] == first.json()["alert"]["id"]
    assert first.json()["ignoredFields"] == ["chunkId"]
    assert second.json()["ignoredFields"] == []
    stored = {a.window_sec: a for a in OpenInterestAlert.objects.all()}
    assert set(stored) == {300, 900}
    assert float(stored[300].price_change_pct) == 0.021
    assert float(stored[300].funding_rate) == -0.0003
    assert stored[900].funding_rate is None
    assert first.json()["alert"]["windowSec"] == 300
    assert first.json()["alert"]["priceChangePct"] == 0.021
    # and a resend of either is a duplicate carrying the stored id
    again = writer_client.post(INGEST_URL, five, format="json")
    assert (again.status_code, again.json()["outcome"]) == (200, "duplicate")
    assert again.json()["id"] == first.json()["id"]
    assert OpenInterestAlert.objects.count() == 2


def test_a_missing_field_is_named(writer_client):
    payload = alert()
    del payload["absChange"]
    response = writer_client.post(INGEST_URL, payload, format="json")
    assert response.json()["error"] == {
        "code": "invalid",
        "message": "field 'absChange': is required",
        "field": "absChange",
        "reason": "is required",
    }


def test_alert_writes_need_a_token(api_client):
    assert api_client.post(INGEST_URL, alert(), format="json").status_code == 401
    assert OpenInterestAlert.objects.count() == 0


def test_alerts_are_listed_newest_first_with_filters_and_cursor_pages(writer_client, api_client):
    for minute in range(0, 5):
        for symbol in ("BTCUSDT", "ETHUSDT"):
            # a new (symbol, direction) key per alert, so the cooldown does not interfere
            direction = "UP" if minute % 2 == 0 else "DOWN"
            get_redis().flushdb()
            writer_client.post(INGEST_URL, alert(symbol, direction, minutes=minute), format="json")
    assert OpenInterestAlert.objects.count() == 10

    everything = api_client.get(LIST_URL).json()["results"]
    assert [a["timestamp"] for a in everything] == sorted(
        (a["timestamp"] for a in everything), reverse=True
    )

    btc_up = api_client.get(LIST_URL, {"symbol": "BTCUSDT", "direction": "UP"}).json()["results"]
    assert [a["timestamp"][11:16] for a in btc_up] == ["12:04", "12:02", "12:00"]

    since = api_client.get(LIST_URL, {"since": "2025-12-01T12:03:00Z"}).json()["results"]
    assert len(since) == 4

    first_page = api_client.get(LIST_URL, {"limit": 4}).json()
    second_page = api_client.get(first_page["next"]).json()
    assert len(first_page["results"]) == 4
    assert {a["id"] for a in first_page["results"]}.isdisjoint(
        {a["id"] for a in second_page["results"]}
    )

    newest_id = max(a["id"] for a in everything)
    assert api_client.get(LIST_URL, {"after_id": newest_id - 2}).json()["results"] == everything[:2]


@pytest.mark.parametrize(
    "params", [{"direction": "UP,DOWN"}, {"symbol": "btc"}, {"limit": 501}, {"since": "yesterday"}]
)
def test_bad_list_filters_are_refused(api_client, params):
    assert api_client.get(LIST_URL, params).status_code == 400
