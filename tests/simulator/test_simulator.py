"""The simulator over real HTTP: shapes and types against real captures, errors, weights, 429/418,
the /futures/data limit, determinism, injected events, history consistency, replay and faults."""

from __future__ import annotations

import itertools
import json
import socket
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import requests
from requests.adapters import HTTPAdapter

from tests.fixtures.simulator import DEFAULT_ARGS, SimulatorHandle, start_simulator

SHARED = Path(__file__).resolve().parents[3] / "shared"
SAMPLES = SHARED / "binance" / "samples"
PERIOD_5M = 300_000


def load_sample(name: str) -> Any:
    return json.loads((SAMPLES / name).read_text())


def is_decimal_string(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    try:
        Decimal(value)
    except ArithmeticError:
        return False
    return "e" not in value.lower()


class SourceAddressAdapter(HTTPAdapter):
    """Binds outgoing connections to a loopback address, so the simulator sees another client IP."""

    def __init__(self, source_ip: str) -> None:
        self.source_ip = source_ip
        super().__init__()

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        kwargs["source_address"] = (self.source_ip, 0)
        super().init_poolmanager(*args, **kwargs)


def client_from(source_ip: str) -> requests.Session:
    session = requests.Session()
    session.mount("http://", SourceAddressAdapter(source_ip))
    return session


def wait_for_fresh_minute(min_seconds_left: float = 12.0) -> None:
    seconds_into_minute = time.time() % 60
    if 60 - seconds_into_minute < min_seconds_left:
        time.sleep(60 - seconds_into_minute + 0.05)


# --------------------------------------------------------------------------- shapes and types


def test_ping_and_time(sim: SimulatorHandle) -> None:
    ping = sim.get("/fapi/v1/ping")
    assert ping.status_code == 200
    assert ping.json() == {}
    served = sim.get("/fapi/v1/time").json()
    assert list(served) == ["serverTime"]
    assert isinstance(served["serverTime"], int)
    assert abs(served["serverTime"] - time.time() * 1000) < 2000


def test_exchange_info_matches_real_capture_structure(sim: SimulatorHandle) -> None:
    real = json.loads(
        (SHARED / "data" / "exchangeInfo_fapi_2025-12-24_AlphaDogsResearch.json").read_text()
    )
    info = sim.get("/fapi/v1/exchangeInfo").json()
    assert list(info) == list(real)
    assert info["rateLimits"][0] == {
        "rateLimitType": "REQUEST_WEIGHT",
        "interval": "MINUTE",
        "intervalNum": 1,
        "limit": 2400,
    }
    assert isinstance(info["serverTime"], int)
    symbols = info["symbols"]
    assert len(symbols) == 120
    real_keys = set(real["symbols"][0])
    for entry in symbols:
        assert set(entry) == real_keys
        for key in ("deliveryDate", "onboardDate", "pricePrecision", "quantityPrecision"):
            assert isinstance(entry[key], int)
        for key in ("maintMarginPercent", "requiredMarginPercent", "triggerProtect"):
            assert is_decimal_string(entry[key])
        for rule in entry["filters"]:
            for key, value in rule.items():
                if key == "limit":
                    assert isinstance(value, int)
                else:
                    assert isinstance(value, str), (entry["symbol"], rule)
    by_kind = {(s["contractType"], s["status"], s["quoteAsset"]) for s in symbols}
    assert ("PERPETUAL", "TRADING", "USDT") in by_kind
    assert ("PERPETUAL", "TRADING", "USDC") in by_kind
    assert ("PERPETUAL", "TRADING", "BTC") in by_kind
    assert ("PERPETUAL", "SETTLING", "USDT") in by_kind
    assert any(status == "PENDING_TRADING" for _, status, _ in by_kind)
    now_ms = info["serverTime"]
    quarters = {s["contractType"]: s for s in symbols if s["symbol"].startswith("BTCUSDT_")}
    assert {"CURRENT_QUARTER", "NEXT_QUARTER"} <= set(quarters)
    current, following = quarters["CURRENT_QUARTER"], quarters["NEXT_QUARTER"]
    assert now_ms < current["deliveryDate"] < following["deliveryDate"]
    assert (
        time.strftime("%y%m%d", time.gmtime(current["deliveryDate"] / 1000))
        == current["symbol"][-6:]
    )
    perpetual = next(s for s in symbols if s["symbol"] == "BTCUSDT")
    assert perpetual["deliveryDate"] > 4_000_000_000_000


def test_ticker_24hr_single_and_all(sim: SimulatorHandle) -> None:
    sample = load_sample("docexample_fapi_v1_ticker_24hr_nautilus_trader.json")
    single = sim.get("/fapi/v1/ticker/24hr", {"symbol": "BTCUSDT"})
    assert single.headers["X-MBX-USED-WEIGHT-1M"] == "1"
    ticker = single.json()
    assert list(ticker) == list(sample)
    for key, value in sample.items():
        assert type(ticker[key]) is type(value), key
        if isinstance(value, str) and key != "symbol":
            assert is_decimal_string(ticker[key]), key
    assert ticker["closeTime"] - ticker["openTime"] == 86_400_000
    assert (
        Decimal(ticker["lowPrice"]) <= Decimal(ticker["lastPrice"]) <= Decimal(ticker["highPrice"])
    )
    assert ticker["lastId"] - ticker["firstId"] + 1 == ticker["count"]
    everything = sim.get("/fapi/v1/ticker/24hr")
    assert everything.headers["X-MBX-USED-WEIGHT-1M"] == "41"
    rows = everything.json()
    assert isinstance(rows, list)
    assert all(list(row) == list(sample) for row in rows)
    names = {row["symbol"] for row in rows}
    info = sim.get("/fapi/v1/exchangeInfo").json()["symbols"]
    pending = {s["symbol"] for s in info if s["status"] == "PENDING_TRADING"}
    assert pending and not pending & names
    assert "BTCUSDT" in names


def test_quote_volumes_are_heavy_tailed_around_liquidity_thresholds() -> None:
    handle = start_simulator("--seed", "4242", "--symbols", "650")
    try:
        rows = handle.get("/fapi/v1/ticker/24hr").json()
        unicode_symbol = handle.get("/fapi/v1/openInterest", {"symbol": "币安人生USDT"})
        assert unicode_symbol.status_code == 200
        assert unicode_symbol.json()["symbol"] == "币安人生USDT"
    finally:
        handle.stop()
    volumes = sorted(
        (
            float(r["quoteVolume"])
            for r in rows
            if r["symbol"].endswith("USDT") and float(r["quoteVolume"]) > 0
        ),
        reverse=True,
    )
    above_4m = sum(v >= 4e6 for v in volumes)
    near = sum(2e6 <= v < 4e6 for v in volumes)
    assert 150 <= above_4m <= 450
    assert near >= 30
    assert volumes[0] > 100 * volumes[len(volumes) // 2]


def test_open_interest_shape(sim: SimulatorHandle) -> None:
    sample = load_sample("docexample_fapi_v1_openInterest_nautilus_trader.json")
    before = int(time.time() * 1000)
    response = sim.get("/fapi/v1/openInterest", {"symbol": "BTCUSDT"})
    body = response.json()
    assert response.headers["X-MBX-USED-WEIGHT-1M"] == "1"
    assert list(body) == ["symbol", "openInterest", "time"]
    assert set(body) == set(sample)
    assert body["symbol"] == "BTCUSDT"
    assert is_decimal_string(body["openInterest"]) and Decimal(body["openInterest"]) > 0
    assert isinstance(body["time"], int)
    assert before - 1500 <= body["time"] <= int(time.time() * 1000)
    assert len(body["openInterest"].split(".")[1]) == 3


def test_premium_index_single_and_all(sim: SimulatorHandle) -> None:
    sample = load_sample("fapi_v1_premiumIndex_all_mainnet_2024-11-27_BitVigil.json")[0]
    single = sim.get("/fapi/v1/premiumIndex", {"symbol": "ETHUSDT"})
    assert single.headers["X-MBX-USED-WEIGHT-1M"] == "1"
    body = single.json()
    assert set(body) == set(sample)
    for key, value in sample.items():
        assert type(body[key]) is type(value), key
    assert body["nextFundingTime"] % (8 * 3600 * 1000) == 0
    everything = sim.get("/fapi/v1/premiumIndex")
    assert everything.headers["X-MBX-USED-WEIGHT-1M"] == "11"
    rows = everything.json()
    assert len(rows) == 120
    assert len({row["time"] for row in rows}) == 1
    quarterly = next(r for r in rows if r["symbol"].startswith("BTCUSDT_"))
    assert quarterly["nextFundingTime"] == 0
    assert quarterly["lastFundingRate"] == "0.00000000"
    assert quarterly["interestRate"] == "0.00000000"


def test_open_interest_hist_shape_limits_and_window(sim: SimulatorHandle) -> None:
    sample = load_sample(
        "futures_data_openInterestHist_BTCUSDT_1h_mainnet_2026-08_EzequielBes-invest.json"
    )[0]
    response = sim.get("/futures/data/openInterestHist", {"symbol": "BTCUSDT", "period": "5m"})
    assert response.headers["X-MBX-USED-WEIGHT-1M"] == "0"
    rows = response.json()
    assert len(rows) == 30
    for row in rows:
        assert list(row) == list(sample)
        assert isinstance(row["timestamp"], int)
        assert all(is_decimal_string(row[k]) for k in ("sumOpenInterest", "sumOpenInterestValue"))
    stamps = [r["timestamp"] for r in rows]
    assert all(b - a == PERIOD_5M for a, b in itertools.pairwise(stamps))
    now_ms = time.time() * 1000
    assert 0 <= now_ms - stamps[-1] < PERIOD_5M + 2000

    big = sim.get(
        "/futures/data/openInterestHist", {"symbol": "BTCUSDT", "period": "1h", "limit": 1000}
    ).json()
    assert len(big) == 500
    assert big[1]["timestamp"] - big[0]["timestamp"] == 3_600_000

    start = stamps[0] - 10 * PERIOD_5M
    end = stamps[0] - 5 * PERIOD_5M
    window = sim.get(
        "/futures/data/openInterestHist",
        {"symbol": "BTCUSDT", "period": "5m", "startTime": start, "endTime": end, "limit": 100},
    ).json()
    assert [r["timestamp"] for r in window] == list(range(start, end + 1, PERIOD_5M))

    old_start = int(now_ms) - 40 * 86_400_000
    month = sim.get(
        "/futures/data/openInterestHist",
        {"symbol": "BTCUSDT", "period": "1d", "startTime": old_start, "limit": 500},
    ).json()
    assert month and month[0]["timestamp"] >= now_ms - 31 * 86_400_000
    assert len(month) <= 31


def test_open_interest_hist_is_consistent_with_live_value(sim: SimulatorHandle) -> None:
    for symbol in ("BTCUSDT", "ETHUSDT", "DOGEUSDT"):
        live = Decimal(sim.get("/fapi/v1/openInterest", {"symbol": symbol}).json()["openInterest"])
        rows = sim.get(
            "/futures/data/openInterestHist", {"symbol": symbol, "period": "5m", "limit": 3}
        ).json()
        last = Decimal(rows[-1]["sumOpenInterest"])
        assert abs(last / live - 1) < Decimal("0.03"), (symbol, last, live)
        mark = Decimal(sim.get("/fapi/v1/premiumIndex", {"symbol": symbol}).json()["markPrice"])
        implied = Decimal(rows[-1]["sumOpenInterestValue"]) / last
        assert abs(implied / mark - 1) < Decimal("0.05")


def test_klines_shape_and_weight(sim: SimulatorHandle) -> None:
    sample = load_sample("fapi_v1_klines_BTCUSDT_1h_mainnet_2026-08_EzequielBes-invest.json")[0]
    response = sim.get("/fapi/v1/klines", {"symbol": "BTCUSDT", "interval": "1h"})
    assert response.headers["X-MBX-USED-WEIGHT-1M"] == "5"
    rows = response.json()
    assert len(rows) == 500
    for row in rows[:3]:
        assert [type(v) for v in row] == [type(v) for v in sample]
        assert row[6] == row[0] + 3_600_000 - 1
        assert row[11] == "0"
        assert Decimal(row[3]) <= min(Decimal(row[1]), Decimal(row[4]))
        assert Decimal(row[2]) >= max(Decimal(row[1]), Decimal(row[4]))
    small = sim.get("/fapi/v1/klines", {"symbol": "BTCUSDT", "interval": "15m", "limit": 10})
    assert small.headers["X-MBX-USED-WEIGHT-1M"] == "6"
    assert len(small.json()) == 10
    ancient = sim.get(
        "/fapi/v1/klines", {"symbol": "BTCUSDT", "interval": "1d", "startTime": 0}
    ).json()
    assert 30 <= len(ancient) <= 33
    assert ancient[0][0] >= time.time() * 1000 - 33 * 86_400_000
    assert (
        sim.get("/fapi/v1/klines", {"symbol": "BTCUSDT", "interval": "1m", "limit": 1200}).headers[
            "X-MBX-USED-WEIGHT-1M"
        ]
        == "21"
    )


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("path", "params", "code", "msg"),
    [
        ("/fapi/v1/openInterest", {"symbol": "NOPEUSDT"}, -1121, "Invalid symbol."),
        (
            "/fapi/v1/openInterest",
            {},
            -1102,
            "Mandatory parameter 'symbol' was not sent, was empty/null, or malformed.",
        ),
        (
            "/fapi/v1/openInterest",
            {"symbol": "btcusdt"},
            -1100,
            "Illegal characters found in parameter 'symbol'; legal range is '^[\\w\\-._&&[^a-z]]{1,50}$'.",
        ),
        ("/fapi/v1/ticker/24hr", {"symbol": "NOPEUSDT"}, -1121, "Invalid symbol."),
        ("/fapi/v1/premiumIndex", {"symbol": "NOPEUSDT"}, -1121, "Invalid symbol."),
        ("/fapi/v1/klines", {"symbol": "BTCUSDT", "interval": "7m"}, -1120, "Invalid interval."),
        (
            "/fapi/v1/klines",
            {"symbol": "BTCUSDT"},
            -1102,
            "Mandatory parameter 'interval' was not sent, was empty/null, or malformed.",
        ),
        (
            "/futures/data/openInterestHist",
            {"symbol": "BTCUSDT"},
            -1102,
            "Mandatory parameter 'period' was not sent, was empty/null, or malformed.",
        ),
        (
            "/futures/data/openInterestHist",
            {"symbol": "BTCUSDT", "period": "5m", "startTime": 20, "endTime": 10},
            -1023,
            "Start time is greater than end time.",
        ),
        (
            "/futures/data/openInterestHist",
            {"symbol": "BTCUSDT", "period": "5m", "limit": "ten"},
            -1100,
            "Illegal characters found in parameter 'limit'; legal range is '^-?[0-9]{1,20}$'.",
        ),
    ],
)
def test_error_bodies(
    sim: SimulatorHandle, path: str, params: dict[str, Any], code: int, msg: str
) -> None:
    response = sim.get(path, params)
    assert response.status_code == 400
    assert response.headers["Content-Type"].startswith("application/json")
    assert response.json() == {"code": code, "msg": msg}
    assert "X-MBX-USED-WEIGHT-1M" in response.headers


def test_duplicate_and_unread_parameters(sim: SimulatorHandle) -> None:
    duplicate = sim.get("/fapi/v1/openInterest?symbol=BTCUSDT&symbol=ETHUSDT")
    assert duplicate.status_code == 400
    assert duplicate.json()["code"] == -1101
    extra = sim.get("/fapi/v1/openInterest", {"symbol": "BTCUSDT", "foo": "1"})
    assert extra.status_code == 400
    assert extra.json() == {
        "code": -1104,
        "msg": "Not all sent parameters were read; read '1' parameter(s) but was sent '2'.",
    }


def test_pipelined_keep_alive_requests_are_answered_in_order(sim: SimulatorHandle) -> None:
    sim.set_faults(latency_ms=150, paths=["/fapi/v1/time"])
    with socket.create_connection((sim.host, sim.port), timeout=5) as conn:
        conn.sendall(
            b"GET /fapi/v1/time HTTP/1.1\r\nHost: x\r\n\r\n"
            b"GET /fapi/v1/openInterest?symbol=BTCUSDT HTTP/1.1\r\nHost: x\r\n\r\n"
            b"GET /fapi/v1/ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        received = b""
        while chunk := conn.recv(65536):
            received += chunk
    bodies = [part.split(b"\r\n\r\n", 1)[1] for part in received.split(b"HTTP/1.1 200 OK")[1:]]
    assert len(bodies) == 3
    assert b"serverTime" in bodies[0]
    assert b"BTCUSDT" in bodies[1]
    assert bodies[2] == b"{}"


def test_unknown_path_and_double_slash(sim: SimulatorHandle) -> None:
    unknown = sim.get("/fapi/v1/openInterests", {"symbol": "BTCUSDT"})
    assert unknown.status_code == 404
    assert unknown.headers["Content-Type"].startswith("text/html")
    with pytest.raises(ValueError):
        unknown.json()
    assert sim.get("/fapi/v1//openInterest", {"symbol": "BTCUSDT"}).status_code == 403
    assert (
        sim.session.post(sim.base_url + "/fapi/v1/openInterest?symbol=BTCUSDT").status_code == 404
    )


# --------------------------------------------------------------------------- rate limits


def test_weight_header_accumulates_per_ip(sim: SimulatorHandle) -> None:
    wait_for_fresh_minute()
    weights = [
        int(
            sim.get("/fapi/v1/openInterest", {"symbol": "BTCUSDT"}).headers["X-MBX-USED-WEIGHT-1M"]
        ),
        int(sim.get("/fapi/v1/ticker/24hr").headers["x-mbx-used-weight-1m"]),
        int(sim.get("/fapi/v1/premiumIndex").headers["x-mbx-used-weight-1m"]),
    ]
    assert weights == [1, 41, 51]
    other = client_from("127.0.0.7").get(sim.base_url + "/fapi/v1/time", timeout=5)
    assert other.headers["X-MBX-USED-WEIGHT-1M"] == "1"
    stats = sim.stats()["ips"]
    assert stats["127.0.0.1"]["weight_used"] == 51
    assert stats["127.0.0.7"]["weight_used"] == 1


def test_429_then_escalating_418_bans(sim: SimulatorHandle) -> None:
    sim.set_settings(weight_limit=10, ban_after_429s=3, ban_base_sec=1)
    wait_for_fresh_minute(15)
    client = client_from("127.0.0.9")
    url = sim.base_url + "/fapi/v1/openInterest?symbol=BTCUSDT"
    statuses = [client.get(url, timeout=5).status_code for _ in range(10)]
    assert statuses == [200] * 10
    limited = client.get(url, timeout=5)
    assert limited.status_code == 429
    assert limited.json()["code"] == -1003
    assert limited.json()["msg"].startswith(
        "Too many requests; current limit of IP(127.0.0.9) is 10 requests"
    )
    assert limited.headers["X-MBX-USED-WEIGHT-1M"] == "11"
    assert 1 <= int(limited.headers["Retry-After"]) <= 60
    assert [client.get(url, timeout=5).status_code for _ in range(2)] == [429, 429]
    banned = client.get(url, timeout=5)
    assert banned.status_code == 418
    body = banned.json()
    assert body["code"] == -1003
    until = int(body["msg"].split("banned until ")[1].split(".")[0])
    first_ban = until - int(time.time() * 1000)
    assert 0 < first_ban <= 1000
    assert banned.headers["Retry-After"] == "1"
    assert client.get(url, timeout=5).status_code == 418
    assert sim.get("/fapi/v1/time").status_code == 200
    time.sleep(first_ban / 1000 + 0.05)
    assert [client.get(url, timeout=5).status_code for _ in range(3)] == [429, 429, 429]
    second = client.get(url, timeout=5)
    assert second.status_code == 418
    second_until = int(second.json()["msg"].split("banned until ")[1].split(".")[0])
    assert 1000 < second_until - int(time.time() * 1000) <= 2000
    stats = sim.stats(ip="127.0.0.9")["ips"]["127.0.0.9"]
    assert stats["count_429"] == 6
    assert stats["count_418"] == 3
    assert stats["ban_offences"] == 2


def test_futures_data_limit_is_separate_from_weight(sim: SimulatorHandle) -> None:
    sim.set_settings(futures_data_limit=5)
    client = client_from("127.0.0.11")
    url = sim.base_url + "/futures/data/openInterestHist"
    params = {"symbol": "BTCUSDT", "period": "5m", "limit": 2}
    answers = [client.get(url, params=params, timeout=5) for _ in range(6)]
    assert [a.status_code for a in answers] == [200] * 5 + [429]
    assert answers[-1].json()["code"] == -1003
    assert "5 minutes" in answers[-1].json()["msg"]
    assert 1 <= int(answers[-1].headers["Retry-After"]) <= 300
    assert (
        client.get(sim.base_url + "/fapi/v1/openInterest?symbol=BTCUSDT", timeout=5).status_code
        == 200
    )
    assert sim.stats(ip="127.0.0.11")["ips"]["127.0.0.11"]["futures_data_used"] == 6


def test_forced_429_and_418(sim: SimulatorHandle) -> None:
    sim.force_rate_limit(status=429, seconds=1.0, ip="127.0.0.13")
    client = client_from("127.0.0.13")
    url = sim.base_url + "/fapi/v1/ping"
    limited = client.get(url, timeout=5)
    assert limited.status_code == 429
    assert limited.headers["Retry-After"] == "1"
    assert sim.get("/fapi/v1/ping").status_code == 200
    time.sleep(1.05)
    assert client.get(url, timeout=5).status_code == 200
    until = sim.force_rate_limit(status=418, seconds=30)
    banned = sim.get("/fapi/v1/ping")
    assert banned.status_code == 418
    assert f"banned until {until}" in banned.json()["msg"]
    assert 29 <= int(banned.headers["Retry-After"]) <= 30
    sim.reset()
    assert sim.get("/fapi/v1/ping").status_code == 200


def test_weight_limit_change_shows_in_exchange_info(sim: SimulatorHandle) -> None:
    sim.set_weight_limit(1200)
    assert sim.get("/fapi/v1/exchangeInfo").json()["rateLimits"][0]["limit"] == 1200
    sim.reset()
    assert sim.get("/fapi/v1/exchangeInfo").json()["rateLimits"][0]["limit"] == 2400


# --------------------------------------------------------------------------- market behaviour


@pytest.fixture(scope="module")
def twins() -> Iterator[tuple[SimulatorHandle, SimulatorHandle, SimulatorHandle]]:
    same_a = start_simulator(*DEFAULT_ARGS)
    same_b = start_simulator(*DEFAULT_ARGS)
    other = start_simulator("--seed", "7", "--symbols", "120", "--event-rate-per-day", "0")
    yield same_a, same_b, other
    for handle in (same_a, same_b, other):
        handle.stop()


def test_same_seed_gives_same_market(
    twins: tuple[SimulatorHandle, SimulatorHandle, SimulatorHandle],
) -> None:
    same_a, same_b, _ = twins
    end = int(time.time() * 1000) - 3_600_000
    params = {"symbol": "ETHUSDT", "period": "5m", "limit": 200, "endTime": end}
    history = [h.get("/futures/data/openInterestHist", params).json() for h in twins]
    assert len(history[0]) == 200
    assert history[0] == history[1]
    assert history[0] != history[2]
    kline_params = {"symbol": "BTCUSDT", "interval": "1h", "limit": 100, "endTime": end}
    candles = [h.get("/fapi/v1/klines", kline_params).json() for h in twins]
    assert candles[0] == candles[1] != candles[2]
    symbols = [h.get("/fapi/v1/exchangeInfo").json()["symbols"] for h in (same_a, same_b)]
    assert symbols[0] == symbols[1]
    oi_a = same_a.get("/fapi/v1/openInterest", {"symbol": "BTCUSDT"}).json()
    oi_b = same_b.get("/fapi/v1/openInterest", {"symbol": "BTCUSDT"}).json()
    if oi_a["time"] == oi_b["time"]:
        assert oi_a == oi_b


def test_spike_and_dump_events_show_in_open_interest(sim: SimulatorHandle) -> None:
    before = Decimal(sim.get("/fapi/v1/openInterest", {"symbol": "ETHUSDT"}).json()["openInterest"])
    sim.inject_event("ETHUSDT", "spike", 20)
    after = Decimal(sim.get("/fapi/v1/openInterest", {"symbol": "ETHUSDT"}).json()["openInterest"])
    assert Decimal("1.17") < after / before < Decimal("1.23")
    sim.inject_event("ETHUSDT", "dump", 50)
    dumped = Decimal(sim.get("/fapi/v1/openInterest", {"symbol": "ETHUSDT"}).json()["openInterest"])
    assert Decimal("0.57") < dumped / before < Decimal("0.63")
    info = sim.symbol("ETHUSDT")
    assert [e["kind"] for e in info["events"]] == ["spike", "dump"]
    sim.reset()
    restored = Decimal(
        sim.get("/fapi/v1/openInterest", {"symbol": "ETHUSDT"}).json()["openInterest"]
    )
    assert abs(restored / before - 1) < Decimal("0.02")


def test_event_in_the_past_shows_in_history(sim: SimulatorHandle) -> None:
    now_ms = int(time.time() * 1000)
    at = now_ms - now_ms % PERIOD_5M - 6 * PERIOD_5M + 1
    plain = sim.get(
        "/futures/data/openInterestHist", {"symbol": "SOLUSDT", "period": "5m", "limit": 12}
    ).json()
    sim.inject_event("SOLUSDT", "spike", 10, at=at)
    spiked = sim.get(
        "/futures/data/openInterestHist", {"symbol": "SOLUSDT", "period": "5m", "limit": 12}
    ).json()
    for old, new in zip(plain, spiked, strict=True):
        ratio = Decimal(new["sumOpenInterest"]) / Decimal(old["sumOpenInterest"])
        expected = Decimal("1.1") if new["timestamp"] >= at else Decimal(1)
        assert abs(ratio - expected) < Decimal("0.0000001"), new["timestamp"]


def test_ramped_event_is_halfway_in_the_middle(sim: SimulatorHandle) -> None:
    now_ms = int(time.time() * 1000)
    base = Decimal(sim.get("/fapi/v1/openInterest", {"symbol": "XRPUSDT"}).json()["openInterest"])
    sim.inject_event("XRPUSDT", "spike", 40, at=now_ms - 60_000, duration=120_000)
    ramped = Decimal(sim.get("/fapi/v1/openInterest", {"symbol": "XRPUSDT"}).json()["openInterest"])
    assert Decimal("1.17") < ramped / base < Decimal("1.24")


def test_symbol_overrides_and_reset(sim: SimulatorHandle) -> None:
    sim.set_symbol("LINKUSDT", openInterest="123456.78")
    linked = sim.get("/fapi/v1/openInterest", {"symbol": "LINKUSDT"}).json()
    assert Decimal(linked["openInterest"]) == pytest.approx(
        Decimal("123456.78"), rel=Decimal("0.002")
    )
    sim.set_symbol("DOGEUSDT", quoteVolume="2500000.00")
    assert (
        sim.get("/fapi/v1/ticker/24hr", {"symbol": "DOGEUSDT"}).json()["quoteVolume"]
        == "2500000.00"
    )
    sim.set_symbol("DOGEUSDT", status="SETTLING")
    listed = {s["symbol"]: s for s in sim.get("/fapi/v1/exchangeInfo").json()["symbols"]}
    assert listed["DOGEUSDT"]["status"] == "SETTLING"
    assert abs(listed["DOGEUSDT"]["deliveryDate"] - time.time() * 1000) < 5000
    sim.set_symbol("ADAUSDT", delisted=True)
    assert sim.get("/fapi/v1/openInterest", {"symbol": "ADAUSDT"}).json()["code"] == -1121
    names = {s["symbol"] for s in sim.get("/fapi/v1/exchangeInfo").json()["symbols"]}
    assert "ADAUSDT" not in names
    assert "ADAUSDT" not in {r["symbol"] for r in sim.get("/fapi/v1/ticker/24hr").json()}
    sim.reset()
    listed = {s["symbol"]: s for s in sim.get("/fapi/v1/exchangeInfo").json()["symbols"]}
    assert listed["DOGEUSDT"]["status"] == "TRADING"
    assert "ADAUSDT" in listed
    assert (
        sim.get("/fapi/v1/ticker/24hr", {"symbol": "DOGEUSDT"}).json()["quoteVolume"]
        != "2500000.00"
    )


def test_stats_record_open_interest_request_times(sim: SimulatorHandle) -> None:
    for _ in range(3):
        sim.get("/fapi/v1/openInterest", {"symbol": "LINKUSDT"})
        time.sleep(0.1)
    times = sim.oi_request_times("LINKUSDT")
    assert len(times) == 3
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert all(90 <= gap <= 400 for gap in gaps)
    stats = sim.stats()
    assert stats["ips"]["127.0.0.1"]["endpoints"]["/fapi/v1/openInterest"] == 3
    assert sim.oi_request_times("BTCUSDT") == []


def test_replay_binds_symbol_to_recorded_series() -> None:
    source = SHARED / "data" / "imsatoshi_BTCUSDT_openInterestHist_5m_2024-05-09_full.csv"
    if not source.exists():
        pytest.fail(f"{source} is missing: this test reads real data from ../shared")
    handle = start_simulator(
        "--seed", "1", "--symbols", "30", "--replay", f"BTCUSDT={source}", "--replay-speed", "600"
    )
    try:
        first = Decimal(
            handle.get("/fapi/v1/openInterest", {"symbol": "BTCUSDT"}).json()["openInterest"]
        )
        assert Decimal("71000") < first < Decimal("71500")
        time.sleep(1.5)
        later = Decimal(
            handle.get("/fapi/v1/openInterest", {"symbol": "BTCUSDT"}).json()["openInterest"]
        )
        assert later != first
        assert Decimal("69000") < later < Decimal("74000")
        assert handle.symbol("BTCUSDT")["replay"] == str(source)
    finally:
        handle.stop()


# --------------------------------------------------------------------------- faults


def test_fault_server_error(sim: SimulatorHandle) -> None:
    sim.set_faults(error_rate=1.0, error_status=503, paths=["/fapi/v1/openInterest"])
    response = sim.get("/fapi/v1/openInterest", {"symbol": "BTCUSDT"})
    assert response.status_code == 503
    assert response.json()["code"] == -1001
    assert sim.get("/fapi/v1/time").status_code == 200


def test_fault_html_page(sim: SimulatorHandle) -> None:
    sim.set_faults(html_rate=1.0)
    response = sim.get("/fapi/v1/openInterest", {"symbol": "BTCUSDT"})
    assert response.status_code == 502
    assert response.headers["Content-Type"].startswith("text/html")
    assert "CloudFront" in response.text
    with pytest.raises(ValueError):
        response.json()


def test_fault_non_json_and_truncated_bodies(sim: SimulatorHandle) -> None:
    sim.set_faults(nonjson_rate=1.0, remaining=1)
    garbage = sim.get("/fapi/v1/openInterest", {"symbol": "BTCUSDT"})
    assert garbage.status_code == 200
    with pytest.raises(ValueError):
        garbage.json()
    assert sim.get("/fapi/v1/openInterest", {"symbol": "BTCUSDT"}).json()["symbol"] == "BTCUSDT"
    sim.set_faults(truncate_rate=1.0)
    truncated = sim.get("/fapi/v1/openInterest", {"symbol": "BTCUSDT"})
    assert truncated.status_code == 200
    assert truncated.text.startswith('{"symbol":"BTCUSDT"')
    with pytest.raises(ValueError):
        truncated.json()


def test_fault_timeout_and_latency(sim: SimulatorHandle) -> None:
    sim.set_faults(timeout_rate=1.0, paths=["/fapi/v1/ticker/24hr"])
    with pytest.raises(requests.ReadTimeout):
        requests.get(sim.base_url + "/fapi/v1/ticker/24hr?symbol=BTCUSDT", timeout=0.5)
    sim.clear_faults()
    sim.set_faults(latency_ms=300)
    started = time.monotonic()
    assert sim.get("/fapi/v1/ping").status_code == 200
    assert time.monotonic() - started >= 0.3
    sim.reset()
    started = time.monotonic()
    sim.get("/fapi/v1/ping")
    assert time.monotonic() - started < 0.2


def test_set_faults_replaces_and_update_faults_merges(sim: SimulatorHandle) -> None:
    sim.set_faults(error_rate=1.0, error_status=500)
    replaced = sim.set_faults(nonjson_rate=1.0)
    assert (replaced["error_rate"], replaced["nonjson_rate"]) == (0.0, 1.0)
    assert sim.get("/fapi/v1/time").status_code == 200
    merged = sim.update_faults(paths=["/fapi/v1/openInterest"])
    assert merged["nonjson_rate"] == 1.0
    assert sim.get("/fapi/v1/time").json()["serverTime"] > 0
    with pytest.raises(ValueError):
        sim.get("/fapi/v1/openInterest", {"symbol": "BTCUSDT"}).json()
    with pytest.raises(requests.HTTPError):
        sim.set_faults(bogus_rate=1.0)


def test_fault_shares_are_roughly_respected(sim: SimulatorHandle) -> None:
    sim.set_faults(error_rate=0.3, error_status=500, paths=["/fapi/v1/time"])
    statuses = [sim.get("/fapi/v1/time").status_code for _ in range(200)]
    assert 30 <= statuses.count(500) <= 90
    assert statuses.count(500) + statuses.count(200) == 200
    assert sim.stats()["faults"]["hits"]["error"] == statuses.count(500)


def test_weight_is_counted_per_source_address_over_any_sliding_minute(sim: SimulatorHandle) -> None:
    # given two hosts (two source addresses), like two poller IPs
    other = client_from("127.0.0.3")
    for _ in range(3):
        sim.get("/fapi/v1/openInterest", params={"symbol": "BTCUSDT"})  # weight 1 each
    other.get(f"{sim.base_url}/fapi/v1/premiumIndex", timeout=5)  # weight 10
    ips = sim.stats()["ips"]
    # then each address has its own count, this minute and over the last 60 s
    assert ips["127.0.0.3"]["weight_last_60s"] == 10
    assert ips["127.0.0.3"]["weight_max_60s"] == 10
    assert ips["127.0.0.1"]["weight_last_60s"] == 3
    assert ips["127.0.0.1"]["weight_max_60s"] == 3
