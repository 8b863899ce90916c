"""GET /api/market/open-interest/samples answers the same fields and values whichever store serves
it: the ring buffer (fresh) or Postgres. Real Redis and Postgres; the samples go in as a client
sends them (the ingest API) and as the ring holds them."""

from decimal import ROUND_HALF_UP, Decimal

import pytest
from django.conf import settings

from common.formatting import iso_z
from common.timeutil import datetime_from_ms, now_ms
from oi.models import SnapshotSource
from oi.ring import RingSample, ring_append, ring_key

pytestmark = pytest.mark.django_db

INGEST_URL = "/api/market/open-interest/ingest"
SAMPLES_URL = "/api/market/open-interest/samples"
SYMBOL = "SAMPLEUSDT"
# (ms before now, open interest, mark price): a product that Postgres rounds to 12 places, a plain
# one, and a sample whose price was not known
SAMPLES = [
    (1_123, "1234.567", "0.000123456789"),
    (6_456, "85374.562", "97000.5"),
    (11_789, "1500000", None),
]


def usd_as_stored(open_interest: str, mark_price: str) -> str:
    """numeric(30, 12): rounded half away from zero, then written without padding zeros."""
    product = Decimal(open_interest) * Decimal(mark_price)
    return format(product.quantize(Decimal("1e-12"), ROUND_HALF_UP).normalize(), "f")


def test_the_ring_and_postgres_answer_the_same_samples_alike(
    writer_client, api_client, redis_client
):
    now = now_ms()
    rows = [(now - ago, oi, price) for ago, oi, price in SAMPLES]
    body = {
        "data": [
            {"symbol": SYMBOL, "openInterest": oi, "markPrice": price,
             "timestamp": iso_z(datetime_from_ms(t)), "source": SnapshotSource.REALTIME}
            for t, oi, price in rows
        ]
    }  # fmt: skip
    response = writer_client.post(INGEST_URL, body, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["inserted"] == len(rows)
    ring_append(
        redis_client,
        {SYMBOL: [RingSample(t, Decimal(oi), mark_price=price and Decimal(price))
                  for t, oi, price in rows]},
        window_ms=settings.OI_RING_WINDOW_SEC * 1000,
        now_ms=now,
    )  # fmt: skip

    from_ring = api_client.get(SAMPLES_URL, {"symbol": SYMBOL, "limit": len(rows)}).json()
    redis_client.delete(ring_key(SYMBOL))  # the ring no longer holds enough: Postgres answers
    from_postgres = api_client.get(SAMPLES_URL, {"symbol": SYMBOL, "limit": len(rows)}).json()

    assert (from_ring["servedFrom"], from_postgres["servedFrom"]) == ("ring", "postgres")
    assert from_ring["samples"] == from_postgres["samples"]
    assert from_ring["count"] == from_postgres["count"] == len(rows)
    assert [
        (s["ts"], s["openInterest"], s["markPrice"], s["openInterestUsd"], s["source"])
        for s in from_ring["samples"]
    ] == [
        (
            iso_z(datetime_from_ms(t)),
            oi,
            price,
            usd_as_stored(oi, price) if price else None,
            "realtime",
        )
        for t, oi, price in rows
    ]
    assert from_ring["samples"][0]["openInterestUsd"] == "0.152415677625"
