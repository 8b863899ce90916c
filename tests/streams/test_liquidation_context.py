"""Liquidations as market context (issue 18), on real Redis and Postgres: every alert the rules
engine raises carries long and short liquidation USD over its own window (one query per fired
batch), labelled a lower bound in its payload and texts; the ingest API's alerts and alerts raised
while the stream never ran carry null, not a false zero. The screener gives each lookback's sums
from one query for the whole universe."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from alerts.channels.discord import move_message as discord_message
from alerts.channels.slack import move_message as slack_message
from alerts.formatting import alert_payload
from alerts.models import AlertRule, OpenInterestAlert
from alerts.telegram.text import alert_text
from common.timeutil import now_ms
from exchange.streams import Liquidation as LiquidationValue
from exchange.streams import LiquidationSide, MarketStream
from liquidity.models import LiquidSymbol
from streams.keys import LAST_FRAME_KEY
from streams.services import liquidations_store
from tests.alerts.test_rule_engine import SYMBOL, Market, created

pytestmark = pytest.mark.django_db

SEC = 1000
MIN = 60 * SEC


def liquidation(symbol: str, side: LiquidationSide, usd: int, at_ms: int) -> LiquidationValue:
    """A liquidation of `usd` dollars (price 100, quantity usd / 100) traded at `at_ms`."""
    quantity = Decimal(usd) / 100
    return LiquidationValue(symbol, side, Decimal(100), Decimal(100), quantity, at_ms, at_ms)


def stream_seen(redis_client) -> None:
    """The liquidation stream's connection has delivered frames (the streams process ran)."""
    redis_client.hset(LAST_FRAME_KEY, MarketStream.MARK_PRICE, now_ms())


def liquidation_queries(queries) -> list[str]:
    return [q["sql"] for q in queries if "stream_liquidations" in q["sql"]]


def test_each_alert_carries_the_liquidations_of_its_own_window(redis_client):
    AlertRule.objects.update(min_delta_contracts=None)
    stream_seen(redis_client)
    market = Market(redis_client)
    market.flat(100_000, 65, price=150.0)
    fire_ms = market.t_ms + 30 * SEC  # the next tick's sample time
    liquidations_store(
        [
            liquidation(SYMBOL, LiquidationSide.SELL, 40_000, fire_ms - 60 * SEC),  # in 5 min
            liquidation(SYMBOL, LiquidationSide.SELL, 2_000, fire_ms),  # at the sample: in
            liquidation(SYMBOL, LiquidationSide.BUY, 500, fire_ms - 4 * MIN),  # in 5 min
            liquidation(SYMBOL, LiquidationSide.SELL, 7_000, fire_ms - 10 * MIN),  # 15 min only
            liquidation(SYMBOL, LiquidationSide.BUY, 9_000, fire_ms - 50 * MIN),  # 1 h only
            liquidation(SYMBOL, LiquidationSide.SELL, 1_000, fire_ms + 1),  # after: never
            liquidation("ETHUSDT", LiquidationSide.SELL, 99_000, fire_ms - 30 * SEC),  # other
        ]
    )

    with CaptureQueriesContext(connection) as queries:
        alerts = created(market.tick(125_000, price=140.0))

    assert len(alerts) >= 3
    assert len(liquidation_queries(queries)) == 1  # one query for the whole fired batch
    by_window = {a.window_sec: OpenInterestAlert.objects.get(pk=a.pk) for a in alerts}
    expected = {300: (42_000, 500), 900: (49_000, 500), 3600: (49_000, 9_500)}
    for window_sec, (long_usd, short_usd) in expected.items():
        alert = by_window[window_sec]
        assert (alert.liquidations_long_usd, alert.liquidations_short_usd) == (
            long_usd,
            short_usd,
        ), window_sec

    five = by_window[300]
    payload = alert_payload(five)
    assert payload["liquidationsLongUsd"] == 42_000.0
    assert payload["liquidationsShortUsd"] == 500.0
    assert payload["liquidationsBound"] == "lower"
    line = "Liquidations ≥ $42.0K long, ≥ $500 short (5 min)"
    assert line in alert_text(five).splitlines()
    assert line in discord_message([five])["embeds"][0]["description"]
    assert line in str(slack_message([five]))


def test_alerts_carry_null_liquidations_when_the_stream_never_ran(redis_client):
    AlertRule.objects.update(min_delta_contracts=None)
    market = Market(redis_client)
    market.flat(100_000, 65)
    liquidations_store([liquidation(SYMBOL, LiquidationSide.SELL, 5_000, market.t_ms)])

    alerts = created(market.tick(125_000))

    assert alerts
    for alert in alerts:
        alert.refresh_from_db()
        assert alert.liquidations_long_usd is None and alert.liquidations_short_usd is None
        payload = alert_payload(alert)
        assert payload["liquidationsLongUsd"] is None and payload["liquidationsBound"] is None
        assert "Liquidations" not in alert_text(alert)


def test_the_ingest_apis_alerts_leave_liquidations_null(writer_client, redis_client):
    stream_seen(redis_client)
    now = datetime.now(tz=UTC).replace(microsecond=0)
    liquidations_store([liquidation("BTCUSDT", LiquidationSide.SELL, 5_000, now_ms() - 10 * SEC)])
    response = writer_client.post(
        "/api/open-interest-alerts/ingest",
        {
            "symbol": "BTCUSDT",
            "direction": "UP",
            "baseline": 100,
            "current": 110,
            "pctChange": 0.1,
            "absChange": 10,
            "timestamp": now.isoformat(),
            "source": "oi_realtime_poller",
        },
        format="json",
    )
    assert response.status_code == 200, response.content
    assert response.json()["alert"]["liquidationsLongUsd"] is None
    assert OpenInterestAlert.objects.get(symbol="BTCUSDT").liquidations_long_usd is None


NOW = datetime(2025, 12, 1, 12, 0, tzinfo=UTC)
NOW_MS = int(NOW.timestamp() * 1000)


@pytest.fixture
def frozen_now(monkeypatch):
    from django.utils import timezone

    monkeypatch.setattr(timezone, "now", lambda: NOW)


def members(*symbols: str) -> None:
    for rank, symbol in enumerate(symbols):
        LiquidSymbol.objects.create(
            symbol=symbol,
            quote_volume_24h=Decimal(10**9 - rank),
            entered_at=NOW - timedelta(days=2),
            last_seen_at=NOW,
        )


def test_the_screener_sums_each_lookback_in_one_query(api_client, redis_client, frozen_now):
    members("BTCUSDT", "ETHUSDT", "SOLUSDT")
    stream_seen(redis_client)
    liquidations_store(
        [
            liquidation("BTCUSDT", LiquidationSide.SELL, 10_000, NOW_MS - 1 * MIN),
            liquidation("BTCUSDT", LiquidationSide.BUY, 3_000, NOW_MS - 4 * MIN),
            liquidation("BTCUSDT", LiquidationSide.SELL, 20_000, NOW_MS - 10 * MIN),
            liquidation("BTCUSDT", LiquidationSide.SELL, 5_000, NOW_MS - 3 * 3600 * SEC),
            liquidation("BTCUSDT", LiquidationSide.BUY, 1_000, NOW_MS - 20 * 3600 * SEC),
            liquidation("BTCUSDT", LiquidationSide.SELL, 8_000, NOW_MS - 25 * 3600 * SEC),  # out
            liquidation("ETHUSDT", LiquidationSide.BUY, 4_000, NOW_MS - 2 * MIN),
            liquidation("XRPUSDT", LiquidationSide.SELL, 4_000, NOW_MS - 2 * MIN),  # no member
        ]
    )

    with CaptureQueriesContext(connection) as queries:
        response = api_client.get("/api/market/open-interest/screener")

    assert response.status_code == 200
    assert len(liquidation_queries(queries)) == 1
    body = response.json()
    assert body["liquidationsBound"] == "lower"
    rows = {row["symbol"]: row for row in body["symbols"]}

    def sums(symbol: str, label: str) -> tuple[Decimal, Decimal]:
        row = rows[symbol]
        return Decimal(row[f"liqLongUsd{label}"]), Decimal(row[f"liqShortUsd{label}"])

    assert sums("BTCUSDT", "5m") == (10_000, 3_000)
    assert sums("BTCUSDT", "15m") == (30_000, 3_000)
    assert sums("BTCUSDT", "1h") == (30_000, 3_000)
    assert sums("BTCUSDT", "4h") == (35_000, 3_000)
    assert sums("BTCUSDT", "24h") == (35_000, 4_000)
    assert sums("ETHUSDT", "5m") == (0, 4_000)
    assert sums("SOLUSDT", "24h") == (0, 0)


def test_the_screener_gives_null_liquidations_when_the_stream_never_ran(
    api_client, redis_client, frozen_now
):
    members("BTCUSDT")
    liquidations_store([liquidation("BTCUSDT", LiquidationSide.SELL, 10_000, NOW_MS - MIN)])

    row = api_client.get("/api/market/open-interest/screener").json()["symbols"][0]

    assert row["liqLongUsd5m"] is None and row["liqShortUsd24h"] is None
