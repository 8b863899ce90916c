"""Input that decodes but that Django or Postgres refuse (issue 19, hardening #10): each is a 400
naming the field, never a 500 with a traceback; and an alert whose change disagrees with its own
values (low). Against the web process as the Procfile runs it."""

import base64
from collections.abc import Iterator

import pytest
import requests

from tests.fixtures.web import ALERT_INGEST_PATH, INGEST_PATH, WebProcess, a_batch, valid_alert

pytestmark = [pytest.mark.reliability, pytest.mark.integration]


@pytest.fixture(scope="module")
def web(django_db_setup, django_db_blocker) -> Iterator[WebProcess]:
    server = WebProcess("hostile-input-web")
    try:
        yield server
    finally:
        server.stop()


# --- hardening #10: input that decodes but Django or Postgres refuse is a 400, not a 500 ---------


def refusal(response, field: str) -> dict:
    assert response.status_code == 400, (response.status_code, response.text[:300])
    assert "Traceback" not in response.text
    error = response.json()["error"]
    assert error["code"] == "invalid" and error["field"] == field, error
    return error


def a_cursor(decoded: str) -> str:
    return base64.b64encode(decoded.encode()).decode()


@pytest.mark.parametrize(
    "decoded",
    [
        "p=",  # an empty position
        "p=soon",  # not a date
        "p=2025-13-45+00%3A00%3A00%2B00%3A00",  # a date that does not exist
        "p=2025-12-01+12%3A00%3A00%2B23%3A59",  # an offset Postgres refuses
        "p=9999-12-31+23%3A59%3A59-14%3A00",  # past year 9999 in UTC
    ],
)
def test_a_cursor_that_decodes_to_a_bad_position_is_a_400_naming_the_cursor(web, decoded):
    response = requests.get(
        f"{web.base_url}/api/open-interest-alerts", params={"cursor": a_cursor(decoded)}, timeout=10
    )
    refusal(response, "cursor")


def test_a_cursor_the_api_gave_out_still_pages(web):
    cursor = a_cursor("p=2025-12-01+12%3A00%3A00%2B00%3A00")
    response = requests.get(
        f"{web.base_url}/api/open-interest-alerts", params={"cursor": cursor}, timeout=10
    )
    assert response.status_code == 200, response.text[:300]


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        (INGEST_PATH, a_batch(openInterest="1e-999999"), "openInterest"),
        (INGEST_PATH, a_batch(markPrice="0." + "0" * 20000 + "1"), "markPrice"),
        (INGEST_PATH, a_batch(timestamp="2025-12-01T12:00:00+23:59"), "timestamp"),
        (INGEST_PATH, {**a_batch(), "timestamp": "2025-12-01T12:00:00-23:59"}, "timestamp"),
        (ALERT_INGEST_PATH, {**valid_alert(), "current": "1e-999999"}, "current"),
        (
            ALERT_INGEST_PATH,
            {**valid_alert(), "timestamp": "2025-12-01T12:00:00+23:59"},
            "timestamp",
        ),
    ],
    ids=["oi-tiny", "mark-long", "row-offset", "batch-offset", "alert-tiny", "alert-offset"],
)
def test_numbers_and_offsets_postgres_refuses_are_a_400_naming_the_field(
    web, api_key, path, body, field
):
    response = requests.post(
        web.base_url + path, json=body, headers={"Authorization": f"Token {api_key}"}, timeout=10
    )
    refusal(response, field)


@pytest.mark.django_db(transaction=True)
def test_an_offset_within_real_zones_is_stored_in_utc(web, api_key):
    response = requests.post(
        web.base_url + INGEST_PATH,
        json=a_batch(timestamp="2025-12-01T23:30:00+14:00"),
        headers={"Authorization": f"Token {api_key}"},
        timeout=10,
    )
    assert response.status_code == 200, response.text[:300]
    samples = requests.get(
        f"{web.base_url}/api/market/open-interest/samples",
        params={"symbol": "HOSTILEUSDT", "source": "realtime"},
        timeout=10,
    ).json()["samples"]
    assert [s["ts"] for s in samples] == ["2025-12-01T09:30:00Z"]


# --- low: an alert's pctChange and absChange must agree with its baseline and current -----------


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"pctChange": 0.5}, "pctChange"),  # +50% claimed for a +10% move
        ({"pctChange": 0.0001}, "pctChange"),
        ({"absChange": 5000}, "absChange"),
    ],
)
def test_an_alert_whose_change_disagrees_with_its_values_is_refused(web, api_key, change, field):
    response = requests.post(
        f"{web.base_url}/api/open-interest-alerts/ingest",
        json={**valid_alert(), **change},
        headers={"Authorization": f"Token {api_key}"},
        timeout=10,
    )
    refusal(response, field)


@pytest.mark.django_db(transaction=True)
def test_an_alert_with_a_rounded_pct_change_is_stored(web, api_key):
    response = requests.post(
        f"{web.base_url}/api/open-interest-alerts/ingest",
        json={
            **valid_alert(),
            "symbol": "ROUNDEDUSDT",  # no other test's cooldown (kept in Redis) applies
            "current": "1100.4",
            "pctChange": 0.1,
            "absChange": 100.4,
        },
        headers={"Authorization": f"Token {api_key}"},
        timeout=10,
    )
    assert response.status_code == 200, response.text[:300]
