"""The web process as a user meets it: real uvicorn, real HTTP, real Postgres and Redis."""

import pytest
import requests

pytestmark = pytest.mark.integration


def test_the_web_process_serves_health_admin_docs_and_an_ingest_round_trip(asgi_server, api_key):
    # the pages a new user opens first
    assert requests.get(f"{asgi_server}/health", timeout=5).json()["status"] == "ok"
    admin_login = requests.get(f"{asgi_server}/admin/login/", timeout=5)
    assert admin_login.status_code == 200
    assert "Django administration" in admin_login.text
    docs = requests.get(f"{asgi_server}/api/docs/", timeout=5)
    assert docs.status_code == 200
    assert "swagger" in docs.text.lower()
    schema = requests.get(f"{asgi_server}/api/schema/", timeout=5)
    assert "/api/market/open-interest/ingest" in schema.text

    # the README's curl round trip
    batch = {
        "timestamp": "2025-12-01T12:34:56Z",
        "totalSymbols": 2,
        "data": [
            {
                "symbol": "BTCUSDT",
                "openInterest": "85374.562",
                "markPrice": "97000.5",
                "source": "realtime",
            },
            {"symbol": "ETHUSDT", "openInterest": 1500000, "markPrice": 3600, "source": "realtime"},
        ],
    }
    headers = {"Authorization": f"Token {api_key}"}
    url = f"{asgi_server}/api/market/open-interest/ingest"
    first = requests.post(url, json=batch, headers=headers, timeout=10)
    again = requests.post(url, json=batch, headers=headers, timeout=10)
    expected = {"success": True, "received": 2, "partial": False, "ignoredFields": []}
    assert first.json() == expected | {"inserted": 2, "duplicates": 0}
    assert again.json() == expected | {"inserted": 0, "duplicates": 2}

    bad = dict(batch, data=[*batch["data"], {"symbol": "SOLUSDT", "openInterest": "-1"}])
    refused = requests.post(url, json=bad, headers=headers, timeout=10)
    assert refused.status_code == 400
    assert refused.json()["error"]["message"] == "row 2, field 'openInterest': must not be negative"

    samples = requests.get(
        f"{asgi_server}/api/market/open-interest/samples", params={"symbol": "ETHUSDT"}, timeout=5
    ).json()
    assert samples["count"] == 1
    assert samples["samples"][0]["openInterestUsd"] == "5400000000"
    assert (
        requests.get(
            f"{asgi_server}/api/market/open-interest/samples",
            params={"symbol": "SOLUSDT"},
            timeout=5,
        ).json()["count"]
        == 0
    )
