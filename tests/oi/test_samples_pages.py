"""GET /api/market/open-interest/samples beyond the newest 5,000: `from`/`to` and a cursor, served
from Postgres; the pages cover every stored row exactly once, newest first."""

import base64
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from common.formatting import iso_z, plain_decimal
from oi.models import OpenInterestSnapshot, SnapshotSource

pytestmark = pytest.mark.django_db

SAMPLES_URL = "/api/market/open-interest/samples"
SYMBOL = "PAGEUSDT"
START = datetime(2025, 12, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def stored(redis_client) -> list[OpenInterestSnapshot]:
    """250 rows: 125 times, each with both sources (ties on ts), and another symbol's rows."""
    rows = [
        OpenInterestSnapshot(
            symbol=symbol, ts=START + timedelta(seconds=10 * i), source=source,
            open_interest=Decimal(1000 + i), mark_price=Decimal("2.5") if i % 3 else None,
            open_interest_usd=Decimal(2500 + i * 2.5) if i % 3 else None,
        )
        for symbol in (SYMBOL, "OTHERUSDT")
        for i in range(125)
        for source in SnapshotSource.values
    ]  # fmt: skip
    OpenInterestSnapshot.objects.bulk_create(rows)
    return sorted(
        OpenInterestSnapshot.objects.filter(symbol=SYMBOL),
        key=lambda row: (row.ts, row.source),
        reverse=True,
    )


def as_sample(row: OpenInterestSnapshot) -> dict:
    return {
        "ts": iso_z(row.ts),
        "openInterest": plain_decimal(row.open_interest),
        "openInterestUsd": plain_decimal(row.open_interest_usd) if row.open_interest_usd else None,
        "markPrice": plain_decimal(row.mark_price) if row.mark_price else None,
        "source": row.source,
    }


def pages(client, **params) -> list[dict]:
    answers = [client.get(SAMPLES_URL, {"symbol": SYMBOL, **params}).json()]
    while answers[-1]["next"]:
        assert len(answers) < 100
        answers.append(
            client.get(
                SAMPLES_URL, {"symbol": SYMBOL, **params, "cursor": answers[-1]["next"]}
            ).json()
        )
    return answers


def test_cursor_pages_cover_every_row_once_newest_first(api_client, stored):
    answers = pages(api_client, limit=37, **{"from": "2025-12-01T00:00:00Z"})
    assert [answer["count"] for answer in answers] == [37] * 6 + [28]
    assert {answer["servedFrom"] for answer in answers} == {"postgres"}
    assert [sample for answer in answers for sample in answer["samples"]] == [
        as_sample(row) for row in stored
    ]


def test_from_to_and_source_bound_the_pages(api_client, stored):
    since, until = START + timedelta(seconds=100), START + timedelta(seconds=700)
    answers = pages(
        api_client, limit=7, source="realtime",
        **{"from": str(int(since.timestamp() * 1000)), "to": iso_z(until)},
    )  # fmt: skip
    got = [sample for answer in answers for sample in answer["samples"]]
    assert got == [
        as_sample(row) for row in stored if since <= row.ts < until and row.source == "realtime"
    ]
    assert len(got) == 60


def test_the_newest_page_without_from_goes_on_with_its_cursor(api_client, stored):
    first = api_client.get(SAMPLES_URL, {"symbol": SYMBOL, "limit": 100}).json()
    assert first["servedFrom"] == "postgres"  # no ring here
    assert first["samples"] == [as_sample(row) for row in stored[:100]]
    rest = pages(api_client, limit=100, cursor=first["next"])
    assert [s for answer in rest for s in answer["samples"]] == [
        as_sample(row) for row in stored[100:]
    ]


def test_the_last_page_has_no_next(api_client, stored):
    answer = api_client.get(SAMPLES_URL, {"symbol": SYMBOL, "limit": 5000, "to": "1999999999999"})
    assert answer.json()["count"] == 250 and answer.json()["next"] is None


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"cursor": "%%%"}, "cursor"),
        ({"cursor": base64.urlsafe_b64encode(b"yesterday|realtime").decode()}, "cursor"),
        ({"cursor": base64.urlsafe_b64encode(b"2025-12-01T12:00:00+00:00").decode()}, "cursor"),
        ({"cursor": base64.urlsafe_b64encode(b"2025-12-01T12:00:00|x'; --").decode()}, "cursor"),
        ({"cursor": base64.urlsafe_b64encode(b"\xff\xfe").decode()}, "cursor"),
        ({"from": "soon"}, "from"),
        ({"to": "2025-12-01T12:00:00"}, "to"),
        ({"from": "2025-12-02T00:00:00Z", "to": "2025-12-01T00:00:00Z"}, "to"),
    ],
)
def test_bad_bounds_and_cursors_are_400s_naming_the_field(api_client, stored, params, field):
    response = api_client.get(SAMPLES_URL, {"symbol": SYMBOL, **params})
    assert response.status_code == 400, response.content[:300]
    assert response.json()["error"]["field"] == field
