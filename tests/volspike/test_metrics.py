"""/metrics reports what the whole system did, from the shared state in Redis and Postgres."""

import pytest

from common.redis import get_redis
from exchange.errors import RateLimited
from exchange.factory import build_client

pytestmark = pytest.mark.django_db(transaction=True)


def metric(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.split(" ")[0] == name:
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{name} not in /metrics")


def test_metrics_count_requests_429s_snapshots_and_alerts(
    sim, settings, api_client, writer_client, redis_client
):
    settings.BINANCE_BASE_URL = sim.base_url
    get_redis.cache_clear()
    with build_client("default") as client:
        client.ping()
        client.ping()
        sim.force_rate_limit(status=429, seconds=1)
        with pytest.raises(RateLimited):
            client.ping()
    writer_client.post(
        "/api/market/open-interest/ingest",
        {"timestamp": "2025-12-01T12:00:00Z", "data": [{"symbol": "BTCUSDT", "openInterest": "1"}]},
        format="json",
    )
    writer_client.post(
        "/api/open-interest-alerts/ingest",
        {
            "symbol": "BTCUSDT", "direction": "DOWN", "baseline": 100, "current": 90,
            "pctChange": -0.1, "absChange": -10, "timestamp": "2025-12-01T12:00:00Z", "source": "ingest",
        },
        format="json",
    )  # fmt: skip

    text = api_client.get("/metrics").content.decode()

    assert metric(text, 'volspike_exchange_responses_total{outcome="200"}') == 2
    assert metric(text, 'volspike_exchange_responses_total{outcome="429"}') == 1
    assert metric(text, "volspike_exchange_backoff_active") == 1
    assert metric(text, "volspike_snapshots_stored_total") == 1
    assert metric(text, 'volspike_alerts_total{direction="DOWN"}') == 1
    assert metric(text, 'volspike_alerts_total{direction="UP"}') == 0
    assert "volspike_poll_lag_seconds" in text
    assert "volspike_universe_symbols" in text
