"""`/` leads to the page, and the API docs (Swagger UI and ReDoc) render with no request leaving
the machine: their scripts and styles are the project's static files, not a CDN's."""

from urllib.parse import urlsplit

import pytest
import requests

from tests.dashboard.test_debug_page import chromium_page

pytestmark = pytest.mark.integration


def test_home_redirects_to_the_page(client, db):
    response = client.get("/", follow=True)
    assert response.redirect_chain == [("/debug/open-interest", 302)]
    assert response.status_code == 200


def offline(page, base_url: str) -> list[str]:
    """Refuse every request that is not to the server under test; the refused URLs."""
    server = urlsplit(base_url).netloc
    refused: list[str] = []

    def route(route):
        if urlsplit(route.request.url).netloc == server or route.request.url.startswith("data:"):
            route.continue_()
        else:
            refused.append(route.request.url)
            route.abort()

    page.route("**/*", route)
    return refused


def test_api_docs_render_every_operation_offline(asgi_server):
    schema = requests.get(f"{asgi_server}/api/schema/?format=json", timeout=10).json()
    operations = sum(
        method in {"get", "post", "put", "patch", "delete"}
        for path in schema["paths"].values()
        for method in path
    )
    assert operations >= 10
    with chromium_page() as (page, errors):
        refused = offline(page, asgi_server)
        page.goto(f"{asgi_server}/api/docs/")
        page.wait_for_function(
            "n => document.querySelectorAll('.opblock').length >= n", arg=operations, timeout=20_000
        )
        assert page.locator(".opblock-summary-path", has_text="/api/alert-rules").count() >= 1
        assert refused == []
        assert errors == []


def test_redoc_renders_offline(asgi_server):
    with chromium_page() as (page, errors):
        refused = offline(page, asgi_server)
        page.goto(f"{asgi_server}/api/redoc/")
        page.wait_for_selector("h1:has-text('VolSpike OI API')", timeout=20_000)
        page.wait_for_function(
            "() => document.body.innerText.includes('/api/market/open-interest/ingest')",
            timeout=20_000,
        )
        assert refused == []
        assert errors == []
