"""Who may read and write (issue 19): a read-only token never writes (hardening #8), and
API_READS_REQUIRE_AUTH=true closes every read door but /health (hardening #9). Against the web
process as the Procfile runs it."""

from collections.abc import Iterator

import pytest
import requests

from tests.fixtures.web import INGEST_PATH, WebProcess, a_batch, make_token, valid_alert

pytestmark = [pytest.mark.reliability, pytest.mark.integration]


@pytest.fixture(scope="module")
def web(django_db_setup, django_db_blocker) -> Iterator[WebProcess]:
    server = WebProcess("access-scopes-web")
    try:
        yield server
    finally:
        server.stop()


# --- hardening #8: a read-only token reads and never writes --------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_read_only_token_reads_and_every_write_with_it_is_refused(web):
    from alerts.models import AlertRule, OpenInterestAlert
    from oi.models import OpenInterestSnapshot

    reader = {"Authorization": f"Token {make_token('dashboard-reader', '--read-only')}"}
    writer = {"Authorization": f"Token {make_token('hourly-script')}"}
    rule = AlertRule.objects.order_by("id").first()
    rules_before = list(AlertRule.objects.order_by("id").values())
    writes = [
        ("post", INGEST_PATH, a_batch()),
        ("post", "/api/open-interest-alerts/ingest", valid_alert()),
        ("post", "/api/alert-rules", {"name": "x", "window_sec": 300, "threshold_pct": "0.05"}),
        ("patch", f"/api/alert-rules/{rule.id}", {"enabled": False}),
        ("put", f"/api/alert-rules/{rule.id}", {"window_sec": 300, "threshold_pct": "0.5"}),
        ("delete", f"/api/alert-rules/{rule.id}", None),
        ("post", "/api/alert-overrides", {"symbol": "BTCUSDT", "cooldown_sec": 1}),
        ("post", "/api/alert-channels", {"name": "x", "kind": "webhook", "url": "https://e.x/h"}),
    ]

    for method, path, body in writes:
        response = requests.request(
            method, web.base_url + path, json=body, headers=reader, timeout=10
        )
        assert response.status_code == 403, (method, path, response.status_code, response.text)
        assert "read-only" in response.json()["error"]["message"]
    assert requests.get(f"{web.base_url}/api/alert-rules", headers=reader, timeout=10).ok
    assert not OpenInterestSnapshot.objects.exists() and not OpenInterestAlert.objects.exists()
    assert list(AlertRule.objects.order_by("id").values()) == rules_before

    stored = requests.post(web.base_url + INGEST_PATH, json=a_batch(), headers=writer, timeout=10)
    assert stored.status_code == 200 and stored.json()["inserted"] == 1


# --- hardening #9: API_READS_REQUIRE_AUTH=true closes every read door but /health ----------------

METRICS_TOKEN = "prometheus-scrape-secret-0123456789"


@pytest.fixture(scope="module")
def locked_web(django_db_setup, django_db_blocker, simulator) -> Iterator[WebProcess]:
    server = WebProcess(
        "hostile-http-web-locked",
        API_READS_REQUIRE_AUTH="true",
        METRICS_TOKEN=METRICS_TOKEN,
        BINANCE_BASE_URL=simulator.base_url,
    )
    try:
        yield server
    finally:
        server.stop()


READ_DOORS = [
    "/metrics",
    "/debug/open-interest",
    "/api/schema/",
    "/api/docs/",
    "/api/binance/futures/info",
    "/api/open-interest-alerts",
    "/api/alert-rules",
]


@pytest.mark.django_db(transaction=True)
def test_with_reads_locked_every_door_but_health_needs_a_token(locked_web):
    key = make_token("locked-reader", "--read-only")
    base = locked_web.base_url

    for path in READ_DOORS:
        anonymous = requests.get(base + path, timeout=30, allow_redirects=False)
        if path == "/debug/open-interest":  # a browser is sent to the admin's login
            assert anonymous.status_code == 302, (path, anonymous.status_code)
            assert anonymous.headers["Location"].startswith("/admin/login/?next=")
        else:
            assert anonymous.status_code == 401, (path, anonymous.status_code)
        assert "alertRule" not in anonymous.text and "volspike_" not in anonymous.text
        with_token = requests.get(
            base + path, headers={"Authorization": f"Token {key}"}, timeout=30
        )
        assert with_token.status_code == 200, (path, with_token.status_code, with_token.text[:200])

    assert requests.get(base + "/health", timeout=10).status_code == 200
    preflight = requests.options(
        base + "/api/binance/futures/info",
        headers={
            "Origin": "https://app.example",
            "Access-Control-Request-Headers": "authorization",
        },
        timeout=10,
    )
    assert preflight.status_code == 204
    assert "Authorization" in preflight.headers["Access-Control-Allow-Headers"]


@pytest.mark.django_db(transaction=True)
def test_with_reads_locked_prometheus_scrapes_with_the_metrics_token(locked_web):
    url = locked_web.base_url + "/metrics"
    scraped = requests.get(url, headers={"Authorization": f"Bearer {METRICS_TOKEN}"}, timeout=30)
    assert scraped.status_code == 200 and "volspike_universe_symbols" in scraped.text
    wrong = requests.get(url, headers={"Authorization": "Bearer not-the-token"}, timeout=30)
    assert wrong.status_code == 401


@pytest.mark.django_db(transaction=True)
def test_with_reads_locked_a_signed_in_staff_member_uses_the_page(locked_web):
    import re

    from django.contrib.auth import get_user_model

    get_user_model().objects.create_user("ops", password="a-long-passphrase-9", is_staff=True)
    browser = requests.Session()
    base = locked_web.base_url
    login_page = browser.get(f"{base}/admin/login/?next=/debug/open-interest", timeout=10)
    csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', login_page.text).group(1)
    page = browser.post(
        f"{base}/admin/login/?next=/debug/open-interest",
        data={
            "username": "ops",
            "password": "a-long-passphrase-9",
            "csrfmiddlewaretoken": csrf,
            "next": "/debug/open-interest",
        },
        headers={"Referer": f"{base}/admin/login/"},
        timeout=10,
    )
    assert page.status_code == 200 and page.url.endswith("/debug/open-interest")
    assert "alertRule" in page.text
    # the page's own reads go through with the session; a write needs a token all the same
    assert browser.get(f"{base}/api/open-interest-alerts", timeout=10).status_code == 200
    assert browser.get(f"{base}/api/market/open-interest/screener", timeout=10).status_code == 200
    write = browser.post(
        base + INGEST_PATH,
        json=a_batch(),
        headers={"X-CSRFToken": browser.cookies["csrftoken"], "Referer": base + "/"},
        timeout=10,
    )
    assert write.status_code in (401, 403)
