"""Frames captured off the real exchange (shared/binance/WS_FACTS.md §3, byte for byte) through
the client's parser: what the streams process will see from fstream.binance.com."""

import json
from decimal import Decimal

import pytest

from exchange.streams import (
    FrameError,
    Liquidation,
    LiquidationSide,
    MarkPriceUpdate,
    MiniTicker,
    frame_values,
)

# [CAP-0909A] one row of !markPrice@arr@1s, 2026-09-09
MARK_ROW = '{"e":"markPriceUpdate","E":1788936948001,"s":"BTCUSDT","p":"79107.36658171","ap":"79107.36658171","P":"79176.63756423","i":"79139.09565217","r":"0.00008359","T":1788940800000,"st":1}'
# [CAP-0909B] !forceOrder@arr, 2026-09-09 (note l != z)
FORCE_ARR = '{"stream":"!forceOrder@arr","data":{"e":"forceOrder","E":1788965417449,"o":{"s":"RAYSOLUSDT","S":"SELL","o":"LIMIT","f":"IOC","q":"70.5","p":"1.3810000","ap":"1.3911902","X":"FILLED","l":"6.9","z":"70.5","T":1788965416437}}}'
# [CAP-0808] <s>@forceOrder, ps/st inside o
FORCE_ONE = '{"stream":"stgusdt@forceOrder","data":{"e":"forceOrder","E":1786172557615,"o":{"s":"STGUSDT","S":"SELL","o":"LIMIT","f":"IOC","q":"5","p":"0.1336000","ap":"0.1355000","X":"FILLED","l":"5","z":"5","T":1786172556607,"ps":"STGUSDT","st":1}}}'
# [WS-MT] the documentation's mini-ticker example (no captured USDⓈ-M frame exists)
MINI_DOC = '[{"e": "24hrMiniTicker", "E": 123456789, "s": "BTCUSDT", "c": "0.0025", "o": "0.0010", "h": "0.0025", "l": "0.0010", "v": "10000", "q": "18"}]'


def test_a_captured_mark_price_row():
    (value,) = frame_values([json.loads(MARK_ROW)])
    assert value == MarkPriceUpdate(
        symbol="BTCUSDT",
        mark_price=Decimal("79107.36658171"),
        index_price=Decimal("79139.09565217"),
        estimated_settle_price=Decimal("79176.63756423"),
        funding_rate=Decimal("0.00008359"),
        next_funding_time_ms=1788940800000,  # T is the next funding time
        event_time_ms=1788936948001,
    )


def test_captured_liquidations_as_one_object_with_or_without_ps_st():
    (arr,) = frame_values(json.loads(FORCE_ARR)["data"])
    assert arr == Liquidation(
        symbol="RAYSOLUSDT",
        side=LiquidationSide.SELL,
        price=Decimal("1.3810000"),
        average_price=Decimal("1.3911902"),
        quantity=Decimal("70.5"),  # z, the whole fill, not l
        trade_time_ms=1788965416437,
        event_time_ms=1788965417449,
    )
    assert arr.usd == Decimal("70.5") * Decimal("1.3911902")
    (one,) = frame_values(json.loads(FORCE_ONE)["data"])
    assert one.symbol == "STGUSDT" and one.usd == Decimal("0.6775")


def test_the_documented_mini_ticker_and_what_is_refused():
    (ticker,) = frame_values(json.loads(MINI_DOC))
    assert isinstance(ticker, MiniTicker) and ticker.quote_volume == Decimal("18")
    no_funding = json.loads(MARK_ROW) | {"r": "", "T": 0}
    (delivery,) = frame_values([no_funding])
    assert delivery.funding_rate is None and delivery.next_funding_time_ms is None
    assert frame_values([{"e": "24hrTicker", "s": "BTCUSDT"}]) == []  # another stream's rows
    for broken in ({"p": 79107.3}, {"p": "NaN"}, {"E": "1788936948001"}, {"s": ""}):
        with pytest.raises(FrameError):
            frame_values([json.loads(MARK_ROW) | broken])


def test_one_malformed_row_costs_only_itself_when_errors_are_collected():
    rows = [json.loads(MARK_ROW), json.loads(MARK_ROW) | {"s": "ETHUSDT", "p": ""}]
    errors: list[str] = []
    (kept,) = frame_values(rows, errors)
    assert kept.symbol == "BTCUSDT"
    assert errors == ["ETHUSDT: field 'p': not a decimal: ''"]
