"""/health/ready's exchange part, against the real shared budget in Redis: a ban always makes the
system not ready; a rate-limit back-off only when it lasts longer than READY_MAX_BACKOFF_SEC."""

import pytest

from exchange.factory import build_budget

pytestmark = pytest.mark.django_db


def exchange_part(api_client) -> tuple[bool, str]:
    response = api_client.get("/health/ready")
    assert response.status_code == 503  # nothing runs here: beat, poller, universe all fail
    body = response.json()
    return "exchange" not in body["failing"], body["components"]["exchange"]


def test_a_ban_is_not_ready_and_a_short_back_off_is(api_client, redis_client, settings):
    budget = build_budget()
    assert exchange_part(api_client) == (True, "no back-off")

    budget.back_off(seconds=20, reason="429 /fapi/v1/openInterest")
    ok, detail = exchange_part(api_client)
    assert ok and "short back-off" in detail and "429 /fapi/v1/openInterest" in detail

    settings.READY_MAX_BACKOFF_SEC = 10
    ok, detail = exchange_part(api_client)
    assert not ok and "429 /fapi/v1/openInterest" in detail

    budget.clear_backoff()
    budget.back_off(seconds=5, reason="418 /fapi/v1/openInterest")
    ok, detail = exchange_part(api_client)
    assert not ok and detail.startswith("the exchange banned this IP")


def test_every_cause_is_named_when_nothing_runs(api_client, redis_client):
    body = api_client.get("/health/ready").json()
    assert body["status"] == "unavailable"
    assert body["components"]["beat"] == "no poll dispatch ever sent"
    assert body["components"]["universe"] == "never refreshed successfully"
    assert body["components"]["polling"] == "no liquid symbol to poll"
    assert api_client.get("/health").status_code == 200  # liveness is not readiness
