"""POST /api/volume-alerts/ingest and the reads, through the DRF client on real Postgres; the
schema's identity and indexes. (Over real HTTP with the scripts' bodies and the live feed:
tests/integration/test_volspike_clients.py.)"""

import json
from datetime import UTC, datetime, timedelta

import pytest
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from volume_alerts.models import VolumeAlert
from volume_alerts.selectors import volume_alert_list

INGEST_URL = "/api/volume-alerts/ingest"
LIST_URL = "/api/volume-alerts"
HOUR = datetime(2025, 12, 3, 14, tzinfo=UTC)

pytestmark = pytest.mark.django_db


def body(symbol="SOLUSDT", hour=HOUR, alert_type="SPIKE", minute=10, **fields) -> dict:
    scan = hour + timedelta(minutes=minute, seconds=2)
    return {
        "symbol": symbol, "asset": symbol.removesuffix("USDT"), "currentVolume": 12345678.9,
        "previousVolume": 3456789.1, "volumeRatio": 3.571429596326834, "price": 187.42,
        "fundingRate": 0.0001, "candleDirection": "bullish", "message": f"{symbol} spike",
        "timestamp": scan.isoformat().replace("+00:00", "Z"),
        "hourTimestamp": hour.isoformat().replace("+00:00", "Z"), "isUpdate": False,
        "alertType": alert_type, **fields,
    }  # fmt: skip


def test_a_resend_with_other_numbers_keeps_the_first_and_names_what_differs(writer_client):
    first = writer_client.post(INGEST_URL, body(), format="json").json()
    # the script restarted (its memory dedup lost) and sent the hour's spike again, later
    again = writer_client.post(
        INGEST_URL, body(minute=25, currentVolume=15000000.0), format="json"
    ).json()
    assert (again["duplicate"], again["alertId"]) == (True, first["alertId"])
    assert again["differingFields"] == ["currentVolume", "timestamp", "detectionTime"]
    assert again["alert"] == first["alert"]
    assert VolumeAlert.objects.get().current_volume == 12345678.9


@pytest.mark.parametrize(
    ("fields", "stored"),
    [
        ({"isUpdate": None, "alertType": None, "candleDirection": None}, ("SPIKE", False, "")),
        ({"detectionTime": None, "price": None}, ("SPIKE", False, "bullish")),
        ({"hourTimestamp": "2025-12-03T15:00:00+01:00"}, ("SPIKE", False, "bullish")),
    ],
)
def test_optional_fields_may_be_null_and_offsets_are_read(writer_client, fields, stored):
    response = writer_client.post(INGEST_URL, body(**fields), format="json")
    assert response.status_code == 200, response.content
    alert = VolumeAlert.objects.get()
    assert (alert.alert_type, alert.is_update, alert.candle_direction) == stored
    assert alert.hour_timestamp == HOUR
    assert alert.detection_time == alert.ts


@pytest.mark.parametrize(
    ("fields", "field", "reason"),
    [
        ({"message": "bad \x00 byte"}, "message", "must not contain NUL characters"),
        ({"asset": "\ud800"}, "asset", "must be valid Unicode (it has a lone surrogate)"),
        ({"timestamp": "2025-12-03T14:10:02"}, "timestamp", None),
        ({"volumeRatio": "NaN"}, "volumeRatio", "must be finite"),
        ({"symbol": "sol usdt"}, "symbol", None),
        ({"asset": ""}, "asset", "must be a string of 1 to 32 characters"),
    ],
)
def test_bad_fields_are_refused_naming_them(writer_client, fields, field, reason):
    raw = json.dumps(body(**fields))  # ensure_ascii: a lone surrogate goes as an escape
    response = writer_client.post(INGEST_URL, raw, content_type="application/json")
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["field"] == field
    if reason:
        assert error["reason"] == reason
    assert not VolumeAlert.objects.exists()


def test_the_list_filters_and_pages_with_a_cursor(writer_client, api_client):
    for hours in range(5):
        hour = HOUR + timedelta(hours=hours)
        writer_client.post(INGEST_URL, body(hour=hour), format="json")
        writer_client.post(INGEST_URL, body(hour=hour, alert_type="HALF_UPDATE", minute=30),
                           format="json")  # fmt: skip
    writer_client.post(INGEST_URL, body(symbol="ETHUSDT"), format="json")

    first = api_client.get(LIST_URL, {"symbol": "SOLUSDT", "alertType": "SPIKE", "limit": 3})
    page = first.json()
    assert [a["hourTimestamp"][11:13] for a in page["alerts"]] == ["18", "17", "16"]
    second = api_client.get(page["next"]).json()
    assert [a["hourTimestamp"][11:13] for a in second["alerts"]] == ["15", "14"]
    assert second["next"] is None
    since = api_client.get(LIST_URL, {"since": "2025-12-03T17:00:00Z"}).json()
    assert len(since["alerts"]) == 4  # the spikes and half updates of 17:00 and 18:00
    both = api_client.get(LIST_URL, {"symbol": "ETHUSDT,SOLUSDT"}).json()
    assert len(both["alerts"]) == 11
    bad = api_client.get(LIST_URL, {"alertType": "HOURLY"})
    assert bad.status_code == 400 and bad.json()["error"]["field"] == "alertType"


def test_upstreams_tier_form_caps_and_delays_as_upstream_did(writer_client, api_client):
    for hours in range(12):
        writer_client.post(INGEST_URL, body(hour=HOUR + timedelta(hours=hours)), format="json")
    now = timezone.now().replace(microsecond=0)
    fresh = body(symbol="NEWUSDT", hour=now.replace(minute=0, second=0))
    fresh["timestamp"] = (now + timedelta(seconds=1)).isoformat().replace("+00:00", "Z")
    assert writer_client.post(INGEST_URL, fresh, format="json").status_code == 200

    free = api_client.get(LIST_URL, {"tier": "free", "limit": 500}).json()
    elite = api_client.get(LIST_URL, {"tier": "elite"}).json()

    assert (free["limit"], len(free["alerts"])) == (10, 10)  # `limit` ignored, as upstream
    assert "NEWUSDT" not in {a["symbol"] for a in free["alerts"]}  # not before its :15 boundary
    assert elite["alerts"][0]["symbol"] == "NEWUSDT" and len(elite["alerts"]) == 13
    boundary = datetime.fromisoformat(free["lastBroadcastTime"])
    assert boundary.minute % 15 == 0 and boundary <= now


def test_the_identity_lives_in_postgres_and_the_reads_use_indexes():
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO volume_alerts (symbol, asset, current_volume, previous_volume,
                volume_ratio, candle_direction, alert_type, is_update, message, ts,
                detection_time, hour_timestamp)
            SELECT 'S' || (i % 400) || 'USDT', 'S', 1e7, 2e6, 5, '', 'SPIKE', false, 'm',
                   timestamptz '2024-01-01' + i * interval '1 minute' + interval '10 minutes',
                   timestamptz '2024-01-01' + i * interval '1 minute',
                   date_trunc('hour', timestamptz '2024-01-01' + i * interval '1 minute')
            FROM generate_series(1, 200000) AS i
            """
        )
        cursor.execute("ANALYZE volume_alerts")
        with (
            pytest.raises(IntegrityError, match="volume_alert_identity_uniq"),
            transaction.atomic(),
        ):
            cursor.execute(
                "INSERT INTO volume_alerts (symbol, asset, current_volume, previous_volume, "
                "volume_ratio, candle_direction, alert_type, is_update, message, ts, "
                "detection_time, hour_timestamp) SELECT symbol, asset, 1, 1, 1, '', alert_type, "
                "true, 'again', now(), now(), hour_timestamp FROM volume_alerts LIMIT 1"
            )
    newest = volume_alert_list()[:100].explain()
    one_symbol = volume_alert_list(symbols=["S7USDT"])[:100].explain()
    since = volume_alert_list(since=datetime(2024, 5, 1, tzinfo=UTC))[:100].explain()
    print(newest, one_symbol, since, sep="\n\n")
    assert "volume_alert_ts_idx" in newest and "volume_alert_ts_idx" in since
    assert "volume_alert_symbol_ts_idx" in one_symbol
    for plan in (newest, one_symbol, since):
        assert "Seq Scan" not in plan


def test_the_admin_lists_and_filters_volume_alerts(writer_client, admin_client):
    writer_client.post(INGEST_URL, body(), format="json")
    writer_client.post(INGEST_URL, body(alert_type="HALF_UPDATE", minute=30), format="json")
    page = admin_client.get("/admin/volume_alerts/volumealert/", {"alert_type__exact": "SPIKE"})
    assert page.status_code == 200
    text = page.content.decode()
    assert "SOLUSDT" in text and "1 volume alert" in text
    detail = admin_client.get(
        f"/admin/volume_alerts/volumealert/{VolumeAlert.objects.first().pk}/change/"
    )
    assert detail.status_code == 200
