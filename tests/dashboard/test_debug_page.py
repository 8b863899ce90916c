"""The debug page, used as a person would: a real headless Chromium against the running system
(simulator → Celery poller → Redis/Postgres → ASGI server with the WebSocket feed)."""

import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import pytest
import requests

from liquidity.models import LiquidSymbol, UniverseRefresh
from oi.ring import ring_read
from tests.fixtures.processes import ARTIFACTS, wait_until

pytestmark = pytest.mark.integration

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# The OI series' stroke colour in open_interest.js.
SERIES_RGB = (37, 99, 235)


def require_browser():
    """Playwright's entry point; fails (never skips) when Chromium or Playwright is missing."""
    if not CHROMIUM.exists():
        pytest.fail(
            f"{CHROMIUM} not found: the debug-page test drives Debian's Chromium. Install it with "
            "`apt-get update && apt-get install -y chromium`."
        )
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("playwright is not installed: pip install -r requirements-dev.txt")
    return sync_playwright


@contextmanager
def chromium_page() -> Iterator[tuple]:
    """A Chromium page and the list of its script errors. A missing browser fails the test (it must
    not pass by being skipped). Playwright runs an event loop in this thread, so Django's ORM is
    not usable inside the block: do the database work before."""
    sync_playwright = require_browser()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1600, "height": 1000})
        errors: list[str] = []
        console: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.on("console", lambda message: console.append(f"{message.type}: {message.text}"))
        try:
            yield page, errors
        except BaseException:
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "debug-page-failure.png"), full_page=True)
            (ARTIFACTS / "debug-page-failure-console.log").write_text("\n".join(console + errors))
            raise
        finally:
            browser.close()


def column(page, index: int) -> list[str]:
    """The text of one column in the visible rows, top to bottom (index 0 = Symbol)."""
    return page.eval_on_selector_all(
        "#screener-body tr:not([hidden])",
        f"rows => rows.map(r => r.children[{index}].textContent)",
    )


def column_values(page, key: str) -> list[float | str | None]:
    """The values behind a column, in display order, from the rows' data (exact, not formatted)."""
    return page.evaluate(
        """key => Array.from(document.querySelectorAll('#screener-body tr:not([hidden])'))
             .map(tr => { const v = window.oiDebug.rows.get(tr.dataset.symbol).data[key];
                          return (v === null || key === 'symbol') ? v : parseFloat(v); })""",
        key,
    )


def series_pixels(page) -> int:
    """Pixels of the chart canvas painted in the OI series' colour: data actually drawn."""
    return page.evaluate(
        """([r, g, b]) => {
            const canvas = document.querySelector('#chart canvas');
            const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
            let n = 0;
            for (let i = 0; i < data.length; i += 4) {
              if (Math.abs(data[i] - r) < 40 && Math.abs(data[i + 1] - g) < 40
                  && Math.abs(data[i + 2] - b) < 40 && data[i + 3] > 200) n++;
            }
            return n;
        }""",
        list(SERIES_RGB),
    )


def post_alert(
    base_url: str, api_key: str, symbol: str, baseline: float, pct: float, **context
) -> dict:
    current = round(baseline * (1 + pct), 3)
    response = requests.post(
        f"{base_url}/api/open-interest-alerts/ingest",
        headers={"Authorization": f"Token {api_key}"},
        json={
            "symbol": symbol,
            "direction": "UP" if pct > 0 else "DOWN",
            "baseline": baseline,
            "current": current,
            "pctChange": pct,
            "absChange": current - baseline,
            "timestamp": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
            "source": "ingest",
            **context,
        },
        timeout=10,
    )
    assert response.status_code == 200, response.text
    return response.json()["alert"]


def test_the_debug_page_shows_the_universe_a_chart_and_live_alerts(
    sim, asgi_server, celery_processes, redis_client, api_key
):
    require_browser()  # before starting anything
    ARTIFACTS.mkdir(exist_ok=True)

    # given the running system
    env = {"BINANCE_BASE_URL": sim.base_url}
    celery_processes.start_worker(queues="default,oi_backfill", **env)
    celery_processes.start_worker(queues="oi_poll", concurrency=4, **env)
    celery_processes.start_beat(**env)
    wait_until(lambda: UniverseRefresh.objects.filter(ok=True).exists(), 30, "no universe")
    n_symbols = LiquidSymbol.objects.count()
    assert n_symbols > 10
    symbol = LiquidSymbol.objects.order_by("symbol").values_list("symbol", flat=True).first()
    wait_until(lambda: len(ring_read(redis_client, symbol)) > 36, 60, "no backfilled ring")
    latest_oi = float(ring_read(redis_client, symbol)[-1].open_interest)

    with chromium_page() as (page, page_errors):
        # when a person opens the page
        page.goto(f"{asgi_server}/debug/open-interest")
        page.evaluate("window.__sameDocument = true")

        # then the screener lists the whole universe, biggest 24h volume first
        page.wait_for_function(
            f"document.querySelectorAll('#screener-body tr').length === {n_symbols}", timeout=15_000
        )
        assert page.inner_text("#row-count") == f"{n_symbols} symbols"
        volumes = column_values(page, "quoteVolume24h")
        by_volume = column(page, 0)
        assert volumes == sorted(volumes, reverse=True)
        assert all(cell.startswith("$") for cell in column(page, 1))
        page.wait_for_function(
            "Array.from(document.querySelectorAll('#screener-body tr'))"
            ".filter(tr => /\\d/.test(tr.children[3].textContent)).length > 0",
            timeout=15_000,
        )

        # and the status panels are filled
        page.wait_for_function(
            "/\\d/.test(document.getElementById('poller-n').textContent)", timeout=10_000
        )
        assert "weight/min" in page.inner_text("#poller-budget")
        # with each egress group (this host's IP): its symbols and the weight it used
        page.wait_for_function(
            "/symbols, [\\d,]+ \\/ [\\d,]+ weight\\/min/.test("
            "document.querySelector('#poller-groups li[data-egress=default]')?.textContent)",
            timeout=10_000,
        )
        page.wait_for_function(
            "document.getElementById('universe-refreshed').textContent.endsWith('ago')",
            timeout=10_000,
        )
        assert page.inner_text("#universe-state") == "fresh"
        # and the market panel sums the universe's OI in USD and says how broad the moves are
        page.wait_for_function(
            "/^\\$[\\d.]+[kMBT]? \\(\\d+ symbols\\)$/"
            ".test(document.getElementById('market-total').textContent)",
            timeout=20_000,
        )
        assert re.fullmatch(
            r"\d+% rising · \d+% falling \(of \d+\)", page.inner_text("#market-breadth-5m")
        )
        # and each row tells what kind of move its last 5 min were (OI and price together)
        page.wait_for_function(
            "Array.from(document.querySelectorAll('#screener-body td.regime'))"
            ".filter(td => td.dataset.regime !== 'unknown').length > 0",
            timeout=20_000,
        )
        # the Δ 4h and Δ 24h columns are there (a dash until the coarse ring reaches back)
        headers = page.locator("#screener thead th").all_inner_texts()
        assert headers[8:10] == ["Δ 4h", "Δ 24h"]
        assert set(column(page, 10)) <= {  # the Regime 5m column
            "long build", "short build", "short cover", "long flush", "OI ↑ · price flat",
            "OI ↓ · price flat", "OI flat", "–",
        }  # fmt: skip

        # when sorting by symbol, then again (descending), then by 24h volume ascending
        page.click("#screener thead th[data-key=symbol]")
        symbols = column(page, 0)
        assert symbols == sorted(symbols) and symbols != by_volume
        page.click("#screener thead th[data-key=symbol]")
        assert column(page, 0) == sorted(symbols, reverse=True)
        page.click("#screener thead th[data-key=quoteVolume24h]")  # a new column: descending first
        page.click("#screener thead th[data-key=quoteVolume24h]")
        assert column_values(page, "quoteVolume24h") == sorted(volumes)
        assert (
            page.get_attribute("#screener thead th[data-key=quoteVolume24h]", "aria-sort")
            == "ascending"
        )
        page.screenshot(path=str(ARTIFACTS / "debug-page-sorted.png"), full_page=False)

        # and filtering by text keeps only the matching rows
        page.fill("#filter", symbol[:3].lower())
        shown = column(page, 0)
        assert shown and all(symbol[:3] in s for s in shown) and symbol in shown
        assert page.inner_text("#row-count") == f"{len(shown)} of {n_symbols} symbols"

        # when the person clicks a symbol, then its chart shows the ring buffer's 3 hours
        page.click(f"#screener-body tr[data-symbol='{symbol}']")
        page.wait_for_function(
            f"document.getElementById('chart').dataset.symbol === '{symbol}' && "
            "Number(document.getElementById('chart').dataset.points) > 30",
            timeout=15_000,
        )
        box = page.locator("#chart canvas").bounding_box()
        assert box["width"] > 300 and box["height"] > 200
        assert series_pixels(page) > 200, "no OI line drawn on the chart"
        assert "in baseline window" in page.inner_text("#chart-info")

        # and it follows the live feed: new poller samples extend the line without a refetch
        points = int(page.get_attribute("#chart", "data-points"))
        page.wait_for_function(
            f"Number(document.getElementById('chart').dataset.points) > {points}", timeout=20_000
        )
        page.fill("#filter", "")

        # when an alert for that symbol is raised, then it appears live, in the list and on the chart
        alerts_before = int(page.get_attribute("#chart", "data-alerts"))
        first = post_alert(asgi_server, api_key, symbol, latest_oi, 0.2, priceChange=-0.01)
        page.wait_for_selector(f"#alerts li[data-alert-id='{first['id']}']", timeout=10_000)
        item = page.inner_text(f"#alerts li[data-alert-id='{first['id']}']")
        assert symbol in item and "+20.00%" in item and "SPIKE" in item
        assert "short build" in item  # OI up 20% while the price fell 1%: new shorts
        page.wait_for_function(
            f"Number(document.getElementById('chart').dataset.alerts) === {alerts_before + 1}",
            timeout=5_000,
        )

        # when the feed drops and an alert is raised meanwhile, then the page catches up on reconnect
        page.evaluate("window.oiDebug.dropFeed()")
        second = post_alert(asgi_server, api_key, symbol, latest_oi, -0.12)
        page.wait_for_selector(f"#alerts li[data-alert-id='{second['id']}']", timeout=15_000)
        page.wait_for_function("window.oiDebug.feed.state === 'live'", timeout=10_000)
        feed_urls = page.evaluate("window.oiDebug.feed.urls")
        assert len(feed_urls) == 2 and feed_urls[1].endswith(f"?after_id={first['id']}")
        ids = page.eval_on_selector_all("#alerts li", "items => items.map(i => i.dataset.alertId)")
        ours = [i for i in ids if i in (str(first["id"]), str(second["id"]))]
        assert ours == [str(second["id"]), str(first["id"])]  # newest first, each once
        assert len(ids) == len(set(ids))

        # and all of it happened without reloading the page, with no script error
        assert page.evaluate("window.__sameDocument") is True
        assert page_errors == []
        page.locator("#chart").scroll_into_view_if_needed()
        page.screenshot(path=str(ARTIFACTS / "debug-page-overview.png"), full_page=True)
