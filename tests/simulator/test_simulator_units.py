"""Simulator internals without HTTP: settings, calendars, replay parsing, market invariants."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from pathlib import Path

import pytest

from simulator.config import load_config
from simulator.limits import RateLimiter
from simulator.market import (
    GRID_MS,
    Market,
    kline_open_times,
    load_replay_csv,
    quarterly_expiries,
)

DATA = Path(__file__).resolve().parents[3] / "shared" / "data"
NOV_24_2026 = int(datetime(2026, 11, 24, 20, 0, tzinfo=UTC).timestamp() * 1000)


def ms(*args: int) -> int:
    return int(datetime(*args, tzinfo=UTC).timestamp() * 1000)


def test_flags_override_environment_which_overrides_defaults(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SIM_WEIGHT_LIMIT", "1200")
    monkeypatch.setenv("SIM_SYMBOLS", "40")
    monkeypatch.setenv("SIM_REPLAY", "BTCUSDT=a.csv, ETHUSDT=b.csv")
    config = load_config(["--symbols", "50"])
    assert config.weight_limit == 1200
    assert config.symbols == 50
    assert config.replay == ["BTCUSDT=a.csv", "ETHUSDT=b.csv"]
    assert config.port == 8090
    assert load_config(["--replay", "X=c.csv"]).replay == ["X=c.csv"]


def test_quarterly_expiries_are_last_fridays_at_0800() -> None:
    previous, current, following = quarterly_expiries(NOV_24_2026)
    assert previous == ms(2026, 9, 25, 8)
    assert current == ms(2026, 12, 25, 8)
    assert following == ms(2027, 3, 26, 8)


def test_kline_open_times_align_like_binance() -> None:
    weekly = kline_open_times("1w", 2, None, None, NOV_24_2026)
    assert datetime.fromtimestamp(weekly[-1][0] / 1000, tz=UTC) == datetime(
        2026, 11, 23, tzinfo=UTC
    )
    assert weekly[0][1] == weekly[1][0] - 1
    monthly = kline_open_times("1M", 3, None, None, NOV_24_2026)
    assert [o for o, _ in monthly] == [ms(2026, 9, 1), ms(2026, 10, 1), ms(2026, 11, 1)]
    assert monthly[-1][1] == ms(2026, 12, 1) - 1
    ranged = kline_open_times(
        "1h", 500, ms(2026, 11, 24, 10, 30), ms(2026, 11, 24, 13), NOV_24_2026
    )
    assert [o for o, _ in ranged] == [ms(2026, 11, 24, h) for h in (11, 12, 13)]


@pytest.mark.parametrize(
    ("name", "rows", "first"),
    [
        ("imsatoshi_BTCUSDT_openInterestHist_5m_2024-05-09_full.csv", 541, 71346.129),
        ("imsatoshi_REZUSDT_5m_2024-05-09_prefix.csv", 372, 114431590.0),
        ("ETHUSDT_oi_15m_2026-04-13_to_05-13_abanghangpa-jimi.csv", 879, 2181909.315),
        ("BTCUSDT_openInterest_10s_2024-12_anmolkhullar24.csv", 294, 92711.732),
    ],
)
def test_replay_csv_formats(name: str, rows: int, first: float) -> None:
    path = DATA / name
    if not path.exists():
        pytest.fail(f"{path} is missing: this test reads real data from ../shared")
    series = load_replay_csv(str(path))
    assert len(series.times) == rows
    assert series.values[0] == pytest.approx(first)
    assert series.times == sorted(series.times)
    middle = (series.times[0] + series.times[1]) / 2
    assert series.value_at(middle) == pytest.approx((series.values[0] + series.values[1]) / 2)


def test_market_values_are_functions_of_time_not_of_call_order() -> None:
    start = NOV_24_2026
    walked = Market(seed=9, symbol_count=20, start_ms=start, event_rate_per_day=2.0)
    jumped = Market(seed=9, symbol_count=20, start_ms=start + 3_600_000, event_rate_per_day=2.0)
    times = [start - 86_400_000 + k * 777_777 for k in range(40)]
    sequential = [walked.open_interest(walked.symbols["BTCUSDT"], t) for t in times]
    backwards = [jumped.open_interest(jumped.symbols["BTCUSDT"], t) for t in reversed(times)]
    assert sequential == list(reversed(backwards))
    other_seed = Market(seed=10, symbol_count=20, start_ms=start)
    assert other_seed.open_interest(other_seed.symbols["BTCUSDT"], times[0]) != sequential[0]


def test_oi_walk_volatility_is_realistic() -> None:
    market = Market(seed=3, symbol_count=60, start_ms=NOV_24_2026, event_rate_per_day=0)
    state = market.symbols["BTCUSDT"]
    values = [market.open_interest(state, market.anchor_ms + k * GRID_MS) for k in range(2000)]
    changes = [abs(b / a - 1) for a, b in itertools.pairwise(values)]
    mean_abs = sum(changes) / len(changes)
    assert 0.0005 < mean_abs < 0.004
    assert max(values) / min(values) < 3


def test_settling_symbol_freezes_and_zeroes_volume() -> None:
    market = Market(seed=3, symbol_count=60, start_ms=NOV_24_2026)
    state = market.symbols["ETHUSDT"]
    market.set_symbol("ETHUSDT", {"status": "SETTLING"}, NOV_24_2026)
    frozen = market.open_interest(state, NOV_24_2026 + 3_600_000)
    assert frozen == market.open_interest(state, NOV_24_2026 + 7_200_000)
    assert market.quote_volume(state, NOV_24_2026 + 3_600_000) == 0.0
    assert state.info["deliveryDate"] == NOV_24_2026


def test_rate_limiter_windows_reset_at_the_minute_boundary() -> None:
    limiter = RateLimiter(10, 1000, 300, ban_after_429s=5, ban_base_sec=120, ban_max_sec=600)
    minute = 1_800_000_000_000 - 1_800_000_000_000 % 60_000
    assert limiter.check("a", 10, False, minute + 59_000).status == 200
    over = limiter.check("a", 1, False, minute + 59_500)
    assert (over.status, over.retry_after_sec, over.weight_used) == (429, 1, 11)
    assert limiter.check("a", 1, False, minute + 60_000).weight_used == 1
    assert limiter.check("b", 1, False, minute + 60_000).weight_used == 1


def test_ban_length_doubles_and_is_capped() -> None:
    limiter = RateLimiter(1, 1000, 300, ban_after_429s=1, ban_base_sec=200, ban_max_sec=600)
    now = 1_800_000_000_000
    lengths = []
    for _ in range(4):
        limiter.check("a", 5, False, now)
        banned = limiter.check("a", 5, False, now)
        assert banned.status == 418
        lengths.append(banned.banned_until - now)
        now = banned.banned_until + 60_000
    assert lengths == [200_000, 400_000, 600_000, 600_000]


def test_small_markets_keep_every_kind_and_large_ones_are_padded() -> None:
    small = Market(seed=1, symbol_count=20, start_ms=NOV_24_2026)
    kinds = {
        (s.info["contractType"], s.status, s.info["quoteAsset"]) for s in small.symbols.values()
    }
    assert len(small.symbols) == 20
    assert {"BTCUSDT", "ETHUSDT", "BTCUSDT_261225", "BTCUSDT_270326"} <= set(small.symbols)
    assert ("PERPETUAL", "TRADING", "BTC") in kinds
    assert ("PERPETUAL", "TRADING", "USDC") in kinds
    assert ("PERPETUAL", "SETTLING", "USDT") in kinds
    assert ("PERPETUAL", "PENDING_TRADING", "USDT") in kinds
    large = Market(seed=1, symbol_count=700, start_ms=NOV_24_2026)
    assert len(large.symbols) == 700
    assert "SIM0001USDT" in large.symbols
    assert large.symbols["BTCUSDT_260925"].status == "DELIVERING"


def test_some_volumes_cross_the_liquidity_thresholds_over_a_day() -> None:
    market = Market(seed=4242, symbol_count=650, start_ms=NOV_24_2026)
    usdt = [
        s
        for s in market.symbols.values()
        if s.status == "TRADING" and s.info["quoteAsset"] == "USDT"
    ]
    crossing = 0
    for state in usdt:
        volumes = [market.quote_volume(state, NOV_24_2026 + hour * 3_600_000) for hour in range(24)]
        if min(volumes) < 4e6 <= max(volumes) or min(volumes) < 2e6 <= max(volumes):
            crossing += 1
    assert crossing >= 20
