"""GET /api/binance/futures/info: one upstream request per TTL, the last good copy on failure."""

import pytest

from common.redis import get_redis

URL = "/api/binance/futures/info"

pytestmark = pytest.mark.django_db


@pytest.fixture
def proxy(sim, settings, redis_client):
    settings.BINANCE_BASE_URL = sim.base_url
    settings.EXCHANGE_INFO_CACHE_TTL_SEC = 60
    get_redis.cache_clear()
    yield sim
    get_redis.cache_clear()


def exchange_info_requests(sim) -> int:
    return sum(
        ip_stats["endpoints"].get("/fapi/v1/exchangeInfo", 0)
        for ip_stats in sim.stats()["ips"].values()
    )


def test_many_callers_cost_one_upstream_request(proxy, api_client):
    answers = [api_client.get(URL) for _ in range(20)]
    assert [a.status_code for a in answers] == [200] * 20
    assert answers[0]["X-Cache"] == "MISS"
    assert {a["X-Cache"] for a in answers[1:]} == {"HIT"}
    assert exchange_info_requests(proxy) == 1
    body = answers[-1].json()
    upstream = proxy.get("/fapi/v1/exchangeInfo").json()
    assert body["symbols"] == upstream["symbols"]
    assert body["rateLimits"] == upstream["rateLimits"]


def test_an_expired_copy_is_refreshed_once(proxy, api_client, settings):
    api_client.get(URL)
    settings.EXCHANGE_INFO_CACHE_TTL_SEC = 0
    assert api_client.get(URL)["X-Cache"] == "MISS"
    assert exchange_info_requests(proxy) == 2


def test_when_the_exchange_fails_the_last_good_copy_is_served_with_its_age(
    proxy, api_client, settings
):
    good = api_client.get(URL)
    settings.EXCHANGE_INFO_CACHE_TTL_SEC = 0
    proxy.set_faults(error_rate=1.0)
    stale = api_client.get(URL)
    assert stale.status_code == 200
    assert stale["X-Cache"] == "STALE"
    assert float(stale["X-Cache-Age-Seconds"]) >= 0
    assert "Age" in stale
    assert stale.json() == good.json()


def test_503_only_when_there_never_was_a_good_copy(proxy, api_client):
    proxy.set_faults(html_rate=1.0)
    answer = api_client.get(URL)
    assert answer.status_code == 503
    assert answer.json()["error"]["code"] == "exchange_unavailable"


def test_cors_headers_follow_the_allowed_origins(proxy, api_client, settings):
    assert (
        api_client.get(URL, HTTP_ORIGIN="https://a.example")["Access-Control-Allow-Origin"] == "*"
    )
    settings.EXCHANGE_INFO_CORS_ALLOWED_ORIGINS = ["https://app.volspike.example"]
    allowed = api_client.get(URL, HTTP_ORIGIN="https://app.volspike.example")
    assert allowed["Access-Control-Allow-Origin"] == "https://app.volspike.example"
    refused = api_client.get(URL, HTTP_ORIGIN="https://evil.example")
    assert "Access-Control-Allow-Origin" not in refused
    preflight = api_client.options(URL, HTTP_ORIGIN="https://app.volspike.example")
    assert preflight.status_code == 204
    assert preflight["Access-Control-Allow-Methods"] == "GET, OPTIONS"
