"""POST /api/market/open-interest/ingest and GET .../samples against real Postgres."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.core.management import call_command

from oi.models import OpenInterestSnapshot

INGEST_URL = "/api/market/open-interest/ingest"
SAMPLES_URL = "/api/market/open-interest/samples"
T0 = datetime(2025, 12, 1, 12, 0, tzinfo=UTC)

pytestmark = pytest.mark.django_db


def snapshot_batch(n_symbols: int, *, at: datetime = T0, source: str = "realtime") -> dict:
    return {
        "timestamp": at.isoformat().replace("+00:00", "Z"),
        "totalSymbols": n_symbols,
        "data": [
            {
                "symbol": f"SYM{i}USDT",
                "openInterest": f"{1000 + i}.5",
                "markPrice": "2.5",
                "source": source,
            }
            for i in range(n_symbols)
        ],
    }


def test_a_batch_is_stored_and_read_back_newest_first(writer_client, api_client):
    # given two batches a minute apart
    for minute, oi in ((0, "100.25"), (1, "101")):
        body = {
            "timestamp": (T0 + timedelta(minutes=minute)).isoformat(),
            "data": [
                {"symbol": "BTCUSDT", "openInterest": oi, "markPrice": 64000, "source": "realtime"}
            ],
        }
        response = writer_client.post(INGEST_URL, body, format="json")
        assert response.status_code == 200, response.content
        assert response.json() == {
            "success": True,
            "received": 1,
            "inserted": 1,
            "duplicates": 0,
            "partial": False,
            "ignoredFields": [],
        }

    # when the samples are read
    response = api_client.get(SAMPLES_URL, {"symbol": "BTCUSDT"})

    # then the newest comes first, decimals as plain strings
    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 2
    assert body["samples"] == [
        {
            "ts": "2025-12-01T12:01:00Z",
            "openInterest": "101",
            "openInterestUsd": "6464000",
            "markPrice": "64000",
            "source": "realtime",
        },
        {
            "ts": "2025-12-01T12:00:00Z",
            "openInterest": "100.25",
            "openInterestUsd": "6416000",
            "markPrice": "64000",
            "source": "realtime",
        },
    ]


def test_re_sending_a_batch_inserts_nothing(writer_client):
    body = snapshot_batch(50)
    first = writer_client.post(INGEST_URL, body, format="json").json()
    again = writer_client.post(INGEST_URL, body, format="json").json()
    assert first == {
        "success": True,
        "received": 50,
        "inserted": 50,
        "duplicates": 0,
        "partial": False,
        "ignoredFields": [],
    }
    assert again == {
        "success": True,
        "received": 50,
        "inserted": 0,
        "duplicates": 50,
        "partial": False,
        "ignoredFields": [],
    }
    assert OpenInterestSnapshot.objects.count() == 50


def test_the_same_sample_from_both_sources_is_kept_twice(writer_client):
    writer_client.post(INGEST_URL, snapshot_batch(3, source="snapshot"), format="json")
    writer_client.post(INGEST_URL, snapshot_batch(3, source="realtime"), format="json")
    assert OpenInterestSnapshot.objects.filter(symbol="SYM0USDT").count() == 2


def test_a_batch_overlapping_a_stored_one_inserts_only_the_new_rows(writer_client):
    writer_client.post(INGEST_URL, snapshot_batch(10), format="json")
    response = writer_client.post(INGEST_URL, snapshot_batch(15), format="json")
    assert response.json() == {
        "success": True,
        "received": 15,
        "inserted": 5,
        "duplicates": 10,
        "partial": False,
        "ignoredFields": [],
    }


def test_a_full_universe_batch_of_5000_rows_is_accepted(writer_client):
    response = writer_client.post(INGEST_URL, snapshot_batch(5000), format="json")
    assert response.status_code == 200
    assert response.json()["inserted"] == 5000
    assert OpenInterestSnapshot.objects.count() == 5000
    row = OpenInterestSnapshot.objects.get(symbol="SYM4999USDT")
    assert row.open_interest == Decimal("5999.5")
    assert row.open_interest_usd == Decimal("14998.75")


def test_one_bad_row_refuses_the_whole_batch_and_stores_nothing(writer_client):
    # given 5000 good rows and one bad row deep inside
    body = snapshot_batch(5000)
    body["data"][4321]["openInterest"] = "-3"

    # when it is sent
    response = writer_client.post(INGEST_URL, body, format="json")

    # then it is refused naming the row, the field and the reason, and nothing is stored
    assert response.status_code == 400
    assert response.json() == {
        "error": {
            "code": "invalid",
            "message": "row 4321, field 'openInterest': must not be negative",
            "row": 4321,
            "field": "openInterest",
            "reason": "must not be negative",
        }
    }
    assert OpenInterestSnapshot.objects.count() == 0


def test_a_body_that_is_not_json_is_refused(writer_client):
    response = writer_client.post(INGEST_URL, "{not json", content_type="application/json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "parse_error"


@pytest.mark.parametrize(
    ("authorization", "status"),
    [(None, 401), ("Token wrong-key", 401), ("Token", 401), ("Basic dXNlcjpwdw==", 401)],
)
def test_writes_without_a_valid_token_are_refused_and_store_nothing(
    api_client, authorization, status
):
    if authorization:
        api_client.credentials(HTTP_AUTHORIZATION=authorization)
    response = api_client.post(INGEST_URL, snapshot_batch(3), format="json")
    assert response.status_code == status
    assert response.json()["error"]["code"] in {"not_authenticated", "authentication_failed"}
    assert OpenInterestSnapshot.objects.count() == 0


def test_a_revoked_token_no_longer_writes(writer_client):
    call_command("create_api_token", "test-writer", "--revoke")
    response = writer_client.post(INGEST_URL, snapshot_batch(3), format="json")
    assert response.status_code == 401
    assert OpenInterestSnapshot.objects.count() == 0


def test_the_management_command_prints_a_working_key(api_client, capsys):
    call_command("create_api_token", "hourly-script")
    raw_key = capsys.readouterr().out.strip()
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw_key}")
    response = api_client.post(INGEST_URL, snapshot_batch(2), format="json")
    assert response.status_code == 200
    assert response.json()["inserted"] == 2


def test_reads_are_open_by_default_and_can_be_closed(api_client, writer_client, settings):
    assert api_client.get(SAMPLES_URL, {"symbol": "BTCUSDT"}).status_code == 200
    settings.API_READS_REQUIRE_AUTH = True
    assert api_client.get(SAMPLES_URL, {"symbol": "BTCUSDT"}).status_code == 401
    assert writer_client.get(SAMPLES_URL, {"symbol": "BTCUSDT"}).status_code == 200


def test_samples_limit_defaults_to_100_and_is_capped_at_5000(writer_client, api_client):
    rows = [
        {
            "symbol": "BTCUSDT",
            "openInterest": str(i),
            "timestamp": (T0 + timedelta(seconds=i)).isoformat(),
        }
        for i in range(150)
    ]
    writer_client.post(INGEST_URL, {"data": rows, "source": "realtime"}, format="json")

    default = api_client.get(SAMPLES_URL, {"symbol": "BTCUSDT"}).json()
    assert default["count"] == 100
    assert default["samples"][0]["openInterest"] == "149"
    assert api_client.get(SAMPLES_URL, {"symbol": "BTCUSDT", "limit": 5000}).json()["count"] == 150
    assert api_client.get(SAMPLES_URL, {"symbol": "BTCUSDT", "limit": 3}).json()["count"] == 3


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"symbol": "BTCUSDT", "limit": 5001}, "limit"),
        ({"symbol": "BTCUSDT", "limit": 0}, "limit"),
        ({"symbol": "BTCUSDT", "limit": "ten"}, "limit"),
        ({"symbol": "btc usdt"}, "symbol"),
        ({}, "symbol"),
    ],
)
def test_samples_refuse_a_bad_symbol_or_limit_with_400(api_client, params, field):
    response = api_client.get(SAMPLES_URL, params)
    assert response.status_code == 400
    assert response.json()["error"]["field"] == field
