"""The simulator's market WebSocket streams, with a real WebSocket client: paths, frame shapes and
types (shared/binance/WS_FACTS.md §3), mark prices equal to REST premiumIndex, and the faults."""

from __future__ import annotations

import asyncio
import json
import time
from decimal import Decimal
from typing import Any

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

STREAMS = "!markPrice@arr@1s/!miniTicker@arr/!forceOrder@arr"


def ws_url(sim, path: str) -> str:
    return f"ws://{sim.host}:{sim.port}{path}"


async def collect(url: str, seconds: float, send: list[dict] | None = None) -> list[Any]:
    messages: list[Any] = []
    async with connect(url, open_timeout=5, close_timeout=1) as ws:
        for message in send or []:
            await ws.send(json.dumps(message))
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            try:
                messages.append(json.loads(await asyncio.wait_for(ws.recv(), left)))
            except TimeoutError:
                break
    return messages


def is_decimal_text(value: Any) -> bool:
    return isinstance(value, str) and Decimal(value).is_finite() and "e" not in value.lower()


def test_combined_frames_have_binances_shapes_and_types_and_rest_mark_prices(sim):
    sim.control("PATCH", "/sim/streams/faults", {"liquidation_rate": 0.3})
    messages = asyncio.run(collect(ws_url(sim, f"/market/stream?streams={STREAMS}"), 2.6))
    by_stream: dict[str, list] = {}
    for message in messages:
        assert set(message) == {"stream", "data"}
        by_stream.setdefault(message["stream"], []).append(message["data"])
    assert set(by_stream) == {"!markPrice@arr@1s", "!miniTicker@arr", "!forceOrder@arr"}

    # two partial mark-price frames per second, together the whole market
    marks = by_stream["!markPrice@arr@1s"]
    assert all(isinstance(frame, list) for frame in marks)
    first_second = marks[0][0]["E"] // 1000
    rows = [row for frame in marks for row in frame if row["E"] // 1000 == first_second]
    assert len(rows) == len(sim.get("/fapi/v1/premiumIndex").json())
    for row in rows:
        assert {"e", "E", "s", "p", "ap", "P", "i", "r", "T", "st"} <= set(row)
        assert row["e"] == "markPriceUpdate"
        assert all(is_decimal_text(row[k]) for k in ("p", "ap", "P", "i", "r"))
        assert isinstance(row["E"], int) and isinstance(row["T"], int)
    btc = next(row for row in rows if row["s"] == "BTCUSDT")
    rest = sim.get("/fapi/v1/premiumIndex", {"symbol": "BTCUSDT"}).json()
    # REST answers for its own second; the walk is deterministic, so ask for the frame's one
    assert btc["T"] == rest["nextFundingTime"]
    assert abs(Decimal(btc["p"]) / Decimal(rest["markPrice"]) - 1) < Decimal("0.01")

    tickers = [row for frame in by_stream["!miniTicker@arr"] for row in frame]
    assert tickers and all(row["e"] == "24hrMiniTicker" for row in tickers)
    assert all(is_decimal_text(row[k]) for row in tickers for k in "cohlvq")

    for data in by_stream["!forceOrder@arr"]:
        assert isinstance(data, dict) and data["e"] == "forceOrder"  # one object, not a list
        order = data["o"]
        assert order["S"] in ("BUY", "SELL") and order["X"] == "FILLED"
        assert all(is_decimal_text(order[k]) for k in ("q", "p", "ap", "l", "z"))
        assert 900 <= data["E"] - order["T"] <= 1100


def test_the_stream_mark_price_equals_rest_premium_index_of_the_same_second(sim):
    async def one_frame() -> list:
        async with connect(ws_url(sim, "/market/ws/!markPrice@arr@1s")) as ws:
            return json.loads(await ws.recv())

    for _ in range(3):
        frame = asyncio.run(one_frame())
        rest = {row["symbol"]: row for row in sim.get("/fapi/v1/premiumIndex").json()}
        if rest[frame[0]["s"]]["time"] == frame[0]["E"] // 1000 * 1000:
            break
    for row in frame:  # raw framing: the bare array
        assert row["p"] == rest[row["s"]]["markPrice"]
        assert row["r"] == rest[row["s"]]["lastFundingRate"]


@pytest.mark.parametrize(
    "path", ["/ws/!markPrice@arr@1s", "/stream?streams=!markPrice@arr@1s", "/ws"]
)
def test_an_unrouted_path_connects_acks_subscribe_and_stays_silent(sim, path):
    messages = asyncio.run(
        collect(
            ws_url(sim, path),
            2.2,
            send=[{"method": "SUBSCRIBE", "params": ["!markPrice@arr@1s"], "id": 7}],
        )
    )
    assert messages == [{"result": None, "id": 7}]


def test_a_silent_stream_keeps_the_connection_and_sends_nothing(sim):
    sim.control("PATCH", "/sim/streams/faults", {"silent": ["!markPrice@arr@1s"]})
    url = ws_url(sim, "/market/stream?streams=!markPrice@arr@1s/!miniTicker@arr")
    messages = asyncio.run(collect(url, 2.2))
    assert {m["stream"] for m in messages} == {"!miniTicker@arr"}


def test_drop_refuse_and_the_compressed_24_hour_close(sim):
    async def scenario() -> tuple[str, str, int]:
        url = ws_url(sim, "/market/ws/!markPrice@arr@1s")
        async with connect(url) as ws:
            await ws.recv()
            sim.control("POST", "/sim/streams/drop")
            with pytest.raises(ConnectionClosed) as dropped:
                while True:
                    await asyncio.wait_for(ws.recv(), 3)
        sim.control("PATCH", "/sim/streams/faults", {"refuse": True})
        with pytest.raises(Exception) as refused:
            await connect(url, open_timeout=3)
        sim.control("PATCH", "/sim/streams/faults", {"refuse": False, "max_connection_sec": 1.5})
        async with connect(url) as ws:
            with pytest.raises(ConnectionClosed) as closed:
                while True:
                    await asyncio.wait_for(ws.recv(), 4)
        return str(dropped.value.rcvd), str(refused.value), closed.value.rcvd.code

    dropped, refused, close_code = asyncio.run(scenario())
    assert dropped == "None"  # no close frame: the connection vanished
    assert "503" in refused
    assert close_code == 1001
    stats = sim.control("GET", "/sim/streams")
    assert stats["connection_attempts"] == 3 and stats["handshakes_refused"] == 1


def test_more_than_ten_messages_a_second_closes_with_1008(sim):
    async def flood() -> int:
        async with connect(ws_url(sim, "/market/ws")) as ws:
            for i in range(15):
                await ws.send(json.dumps({"method": "LIST_SUBSCRIPTIONS", "id": i}))
            with pytest.raises(ConnectionClosed) as closed:
                while True:
                    await asyncio.wait_for(ws.recv(), 3)
            return closed.value.rcvd.code

    assert asyncio.run(flood()) == 1008


def test_an_injected_oi_dump_comes_with_long_liquidations(sim):
    sim.control("PATCH", "/sim/streams/faults", {"liquidation_rate": 0})
    sim.inject_event("ETHUSDT", "dump", 12, duration=5_000)
    messages = asyncio.run(collect(ws_url(sim, "/market/ws/!forceOrder@arr"), 3.2))
    orders = [m["o"] for m in messages]
    assert orders, "a dump brings liquidations"
    assert {o["s"] for o in orders} == {"ETHUSDT"}
    assert {o["S"] for o in orders} == {"SELL"}  # longs forced out
    seconds = [o["T"] // 1000 for o in orders]
    assert len(seconds) == len(set(seconds))  # at most one per symbol per second
    sent = {(r["symbol"], r["trade_time"]) for r in sim.control("GET", "/sim/streams/liquidations")}
    assert {(o["s"], o["T"]) for o in orders} <= sent  # the record the tests compare with


def test_the_1025th_stream_is_refused_and_the_connection_closed(sim):
    async def subscribe_too_many() -> tuple[list, int]:
        names = [f"sym{i}usdt@aggTrade" for i in range(1025)]
        received = []
        async with connect(ws_url(sim, "/market/ws")) as ws:
            await ws.send(json.dumps({"method": "SUBSCRIBE", "params": names, "id": 1}))
            with pytest.raises(ConnectionClosed) as closed:
                while True:
                    received.append(json.loads(await asyncio.wait_for(ws.recv(), 3)))
        return received, closed.value.rcvd.code

    received, code = asyncio.run(subscribe_too_many())
    assert received == [{"error": {"code": 4, "msg": "Too many subscriptions"}}]
    assert code == 1008
