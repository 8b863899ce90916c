"""The market-wide view: the pure breadth, movers and totals, and the API over real Redis and
Postgres (a frozen clock, rings written as the poller writes them)."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from liquidity.models import LiquidSymbol
from oi.keys import MARK_PRICE_KEY
from oi.market import (
    Breadth,
    SymbolChange,
    TotalChange,
    breadth,
    market_total,
    movers,
    total_change,
)
from oi.ring import RingSample, ring_append

NOW_MS = 1_764_590_400_000  # 2025-12-01T12:00:00Z
MINUTE_MS = 60_000


def change(symbol: str, pct: float | None) -> SymbolChange:
    return SymbolChange(symbol, pct, None)


def test_breadth_counts_only_measurable_changes():
    changes = [change("A", 0.1), change("B", -0.2), change("C", 0.0), change("D", None)]
    assert breadth(changes) == Breadth(rising=1 / 3, falling=1 / 3, measured=3)
    assert breadth([change("D", None)]) == Breadth(0.0, 0.0, 0)


def test_movers_are_the_largest_moves_each_way_largest_first():
    changes = [change("A", 0.05), change("B", 0.20), change("C", -0.30), change("D", -0.01),
               change("E", 0.20), change("F", None), change("G", 0.0)]  # fmt: skip
    gainers, losers = movers(changes, 2)
    assert [c.symbol for c in gainers] == ["B", "E"]  # ties by symbol
    assert [c.symbol for c in losers] == ["C", "D"]


def test_the_market_total_sums_the_priced_samples():
    total = market_total(
        NOW_MS, {"A": (Decimal(10), Decimal("2.5")), "B": (Decimal(4), Decimal(1))}
    )
    assert (total.open_interest_usd, total.symbols) == (Decimal("29.00"), 2)


def test_the_total_change_is_like_for_like_over_symbols_priced_at_both_times():
    then = {"A": (Decimal(10), Decimal(1)), "B": (Decimal(10), Decimal(1))}
    now = {"A": (Decimal(12), Decimal(1)), "C": (Decimal(1000), Decimal(1))}  # C entered since
    assert total_change(then, now) == TotalChange(pytest.approx(0.2), 1)
    assert total_change({}, now) == TotalChange(None, 0)


@pytest.fixture
def frozen_now(monkeypatch):
    from django.utils import timezone

    fixed = datetime.fromtimestamp(NOW_MS / 1000, tz=UTC)
    monkeypatch.setattr(timezone, "now", lambda: fixed)
    return fixed


def member(symbol: str, volume: str) -> None:
    now = datetime.fromtimestamp(NOW_MS / 1000, tz=UTC)
    LiquidSymbol.objects.create(
        symbol=symbol, quote_volume_24h=Decimal(volume), entered_at=now - timedelta(days=1),
        last_seen_at=now,
    )  # fmt: skip


@pytest.mark.django_db
def test_the_api_gives_totals_breadth_and_movers_of_the_universe(
    api_client, redis_client, frozen_now
):
    # BTC up 10% over 5 min (and priced), ETH down 20% over 5 min, SOL sampled only now
    member("BTCUSDT", "9000000000")
    member("ETHUSDT", "5000000000")
    member("SOLUSDT", "1000000000")
    price_btc, price_eth = Decimal("100"), Decimal("10")

    def samples(values: list[tuple[int, int]], price: Decimal | None) -> list[RingSample]:
        return [RingSample(NOW_MS - minutes * MINUTE_MS, Decimal(oi), mark_price=price)
                for minutes, oi in values]  # fmt: skip

    ring_append(
        redis_client,
        {
            "BTCUSDT": samples([(61, 90), (6, 100), (0, 110)], price_btc),
            "ETHUSDT": samples([(61, 250), (6, 250), (0, 200)], price_eth),
            "SOLUSDT": samples([(0, 7)], None),
        },
        window_ms=3 * 3600 * 1000,
        now_ms=NOW_MS,
    )
    redis_client.hset(MARK_PRICE_KEY, mapping={"BTCUSDT": "100", "ETHUSDT": "10"})

    body = api_client.get("/api/market/open-interest/market").json()

    assert body["symbols"] == 3
    totals = body["totalOpenInterestUsd"]
    assert len(totals) == 13 and totals[-1]["ts"] == "2025-12-01T12:00:00Z"
    # now: 110 × 100 + 200 × 10 (SOL has no price); 5 min ago: 100 × 100 + 250 × 10
    assert (totals[-1]["openInterestUsd"], totals[-1]["symbols"]) == ("13000", 2)
    assert (totals[-2]["openInterestUsd"], totals[-2]["symbols"]) == ("12500", 2)
    # 1 h ago: the samples of 61 min ago are within the 2 minutes a sample counts for
    assert (totals[0]["openInterestUsd"], totals[0]["symbols"]) == ("11500", 2)
    # like for like over the hour: (110 × 100 + 200 × 10) / (90 × 100 + 250 × 10) - 1
    assert body["totalChange1h"]["symbols"] == 2
    assert body["totalChange1h"]["pctChange"] == pytest.approx(13000 / 11500 - 1)
    assert body["breadth"]["5m"] == {"rising": 0.5, "falling": 0.5, "measured": 2}
    assert [g["symbol"] for g in body["gainers"]["5m"]] == ["BTCUSDT"]
    assert body["gainers"]["5m"][0]["pctChange"] == pytest.approx(0.10)
    assert body["gainers"]["5m"][0]["openInterestUsd"] == "11000"
    assert [(m["symbol"], m["pctChange"]) for m in body["losers"]["5m"]] == [("ETHUSDT", -0.2)]
    assert body["breadth"]["1h"] == {"rising": 0.5, "falling": 0.5, "measured": 2}
