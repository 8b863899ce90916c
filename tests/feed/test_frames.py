"""Every frame type of the live feed (feed.frames.FrameType), as a real client receives it from the
real ASGI server, checked as the text on the wire (compact JSON, keys in order: what clients parse
today, byte for byte).

FRAME_TESTS names the tests that assert each frame type, here or in another module of tests/feed;
`test_every_frame_type_has_a_test` fails when a frame type is added without one.
"""

import json
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from channels.consumer import get_handler_name
from websockets.sync.client import connect

from alerts.liquidation_rules import BurstRule, BurstVerdict, LiquidatedSide
from alerts.liquidation_services import liquidation_alert_store
from alerts.models import OpenInterestAlert
from common.realtime import OI_UPDATES_GROUP, GroupMessageType, broadcast
from feed.consumers import FeedCloseCode, OpenInterestFeedConsumer
from feed.frames import ClientAction, ErrorCode, FrameType
from liquidity.models import LiquidSymbol
from tests.feed import test_consumer, test_websocket_fuzz, test_websocket_hostile
from tests.fixtures.feed import frames_until_pong

KNOWN_SYMBOL = "FRKNOWNUSDT"
OTHER_SYMBOL = "FROTHERUSDT"

# The fields of an open_interest_alert's data (alerts.services.alert_payload), in order.
ALERT_FIELDS = [
    "id", "symbol", "direction", "baseline", "current", "pctChange", "absChange", "timestamp",
    "source", "rule", "windowSec", "reference", "thresholdPct", "thresholdZ", "priceChangePct",
    "markPrice",
    "fundingRate", "oiUsdBefore", "oiUsdAfter", "quoteVolume24h", "liquidationsLongUsd",
    "liquidationsShortUsd", "liquidationsBound", "alerts24h", "regime", "links",
]  # fmt: skip
# The fields of a volume_alert's data (upstream's VolumeAlert row), in order.
VOLUME_ALERT_FIELDS = [
    "id", "symbol", "asset", "currentVolume", "previousVolume", "volumeRatio", "price",
    "fundingRate", "alertType", "message", "timestamp", "hourTimestamp", "isUpdate",
    "candleDirection", "detectionTime", "oiChange", "priceChange",
]  # fmt: skip


def feed_url(base_url: str, query: str = "") -> str:
    return (
        base_url.replace("http://", "ws://") + "/ws/open-interest/" + (f"?{query}" if query else "")
    )


def wire(frame: dict) -> str:
    """A frame as the server writes it: compact separators, keys in order."""
    return json.dumps(frame, separators=(",", ":"))


@pytest.fixture
def liquid_symbols(db) -> None:
    now = datetime.now(UTC)
    for symbol in (KNOWN_SYMBOL, OTHER_SYMBOL):
        LiquidSymbol.objects.create(
            symbol=symbol, quote_volume_24h=Decimal(5_000_000), entered_at=now, last_seen_at=now
        )


def sample_row(symbol: str, open_interest: str) -> dict:
    """A row as the poller publishes it (oi.batches.SnapshotRow.as_json)."""
    return {
        "symbol": symbol, "openInterest": open_interest, "openInterestUsd": "18000.5",
        "markPrice": "1.5", "source": "realtime", "timestamp": "2026-01-01T00:00:05Z",
    }  # fmt: skip


# --- subscribed, pong, error -----------------------------------------------------------------


@pytest.mark.integration
def test_subscribed_error_and_pong_frames_are_compact_json_in_key_order(
    asgi_server, liquid_symbols
):
    with connect(feed_url(asgi_server, f"symbols={KNOWN_SYMBOL}")) as ws:
        assert ws.recv(timeout=10) == '{"type":"subscribed","symbols":["FRKNOWNUSDT"]}'
        ws.send(json.dumps({"action": ClientAction.SUBSCRIBE, "symbols": []}))
        assert ws.recv(timeout=10) == '{"type":"subscribed","symbols":"*"}'
        ws.send(json.dumps({"action": ClientAction.SUBSCRIBE, "symbols": ["ZZNOPEUSDT", "b b"]}))
        assert ws.recv(timeout=10) == (
            '{"type":"error","error":"unknown_symbols","message":"not liquid symbols of this '
            'monitor; not subscribed","symbols":["b b","ZZNOPEUSDT"]}'
        )
        assert ws.recv(timeout=10) == '{"type":"subscribed","symbols":"*"}'
        ws.send("[]")
        assert ws.recv(timeout=10) == (
            '{"type":"error","error":"invalid_message","message":"messages must be JSON objects"}'
        )
        ws.send(json.dumps({"action": ClientAction.PING}))
        assert ws.recv(timeout=10) == '{"type":"pong"}'


# --- open_interest_update ----------------------------------------------------------------------


@pytest.mark.integration
def test_an_open_interest_update_frame_carries_the_published_rows_of_the_subscribed_symbols(
    asgi_server, liquid_symbols
):
    with connect(feed_url(asgi_server, f"symbols={KNOWN_SYMBOL}")) as ws:
        frames_until_pong(ws)
        known, other = sample_row(KNOWN_SYMBOL, "12000.25"), sample_row(OTHER_SYMBOL, "7.5")
        broadcast(OI_UPDATES_GROUP, {"type": GroupMessageType.OI_UPDATE, "data": [known, other]})
        broadcast(OI_UPDATES_GROUP, {"type": GroupMessageType.OI_UPDATE, "data": [other]})
        later = sample_row(KNOWN_SYMBOL, "12001")
        broadcast(OI_UPDATES_GROUP, {"type": GroupMessageType.OI_UPDATE, "data": [later]})

        # the subscribed symbol's rows, as published; a batch without them sends nothing
        assert ws.recv(timeout=10) == wire({"type": "open_interest_update", "data": [known]})
        assert ws.recv(timeout=10) == wire({"type": "open_interest_update", "data": [later]})
        assert frames_until_pong(ws) == []


# --- open_interest_alert -----------------------------------------------------------------------


@pytest.mark.integration
def test_an_open_interest_alert_frame_is_the_stored_alert_live_and_on_catch_up(
    asgi_server, writer_client, redis_client
):
    """(redis_client: no alert cooldown left by an earlier test.)"""
    with connect(feed_url(asgi_server)) as ws:
        assert frames_until_pong(ws) == [{"type": "subscribed", "symbols": "*"}]
        answer = writer_client.post(
            "/api/open-interest-alerts/ingest",
            {
                "symbol": "BTCUSDT", "direction": "UP", "baseline": 100, "current": 110,
                "pctChange": 0.1, "absChange": 10, "timestamp": "2025-12-01T12:00:00Z",
                "source": "ingest",
            },
            format="json",
        )  # fmt: skip
        assert answer.status_code == 200, answer.content
        live = ws.recv(timeout=10)

    alert = OpenInterestAlert.objects.get()
    frame = json.loads(live)
    assert list(frame) == ["type", "data"] and frame["type"] == "open_interest_alert"
    assert list(frame["data"]) == ALERT_FIELDS
    data = frame["data"]
    assert (data["id"], data["symbol"], data["direction"]) == (alert.id, "BTCUSDT", "UP")
    assert (data["baseline"], data["current"], data["pctChange"]) == (100.0, 110.0, 0.1)
    assert (data["timestamp"], data["source"]) == ("2025-12-01T12:00:00Z", "ingest")
    assert live == wire(frame)
    # a client that catches up gets the same bytes
    with connect(feed_url(asgi_server, f"after_id={alert.id - 1}")) as ws:
        ws.recv(timeout=10)  # subscribed
        assert ws.recv(timeout=10) == live


# --- volume_alert ------------------------------------------------------------------------------


@pytest.mark.integration
def test_a_volume_alert_frame_is_the_stored_alert_live_and_on_catch_up(asgi_server, writer_client):
    body = {
        "symbol": "SOLUSDT", "asset": "SOL", "currentVolume": 12345678.9,
        "previousVolume": 3456789.1, "volumeRatio": 3.5713, "price": 187.42,
        "fundingRate": 0.0001, "candleDirection": "bullish",
        "message": "SOL hourly volume 12.35M (3.57\u00d7 prev) \u2014 VOLUME SPIKE!",
        "timestamp": "2025-12-03T14:10:02Z", "detectionTime": "2025-12-03T14:10:00Z",
        "hourTimestamp": "2025-12-03T14:00:00Z", "isUpdate": False, "alertType": "SPIKE",
        "priceChange": 0.0123, "oiChange": -0.004,
    }  # fmt: skip
    with connect(feed_url(asgi_server)) as ws:
        assert frames_until_pong(ws) == [{"type": "subscribed", "symbols": "*"}]
        answer = writer_client.post("/api/volume-alerts/ingest", body, format="json")
        assert answer.status_code == 200, answer.content
        live = ws.recv(timeout=10)

    stored = answer.json()["alert"]
    assert live == wire({"type": "volume_alert", "data": stored})
    assert list(stored) == VOLUME_ALERT_FIELDS
    assert stored["id"] == answer.json()["alertId"]
    assert {key: stored[key] for key in body} == body  # each field as sent
    # a client that catches up gets the same bytes
    with connect(feed_url(asgi_server, f"volume_after_id={stored['id'] - 1}")) as ws:
        ws.recv(timeout=10)  # subscribed
        assert ws.recv(timeout=10) == live


# --- one place for every name --------------------------------------------------------------------

# --- liquidation_alert ---------------------------------------------------------------------------

LIQUIDATION_ALERT_FIELDS = [
    "id", "kind", "symbol", "side", "rule", "windowSec", "usd", "count", "otherSideUsd",
    "thresholdUsd", "quoteVolume24h", "volumeShare", "markPrice", "timestamp", "bound", "links",
]  # fmt: skip


@pytest.mark.integration
def test_a_liquidation_alert_frame_is_the_stored_burst_for_clients_of_its_symbol(
    asgi_server, liquid_symbols, redis_client
):
    rule = BurstRule(rule_id=0, name="liq-5m", window_sec=300, threshold_usd=Decimal(100_000))
    verdict = BurstVerdict(
        rule=rule, symbol=KNOWN_SYMBOL, side=LiquidatedSide.LONG, t_ms=1_764_590_400_000,
        usd=Decimal("150000.5"), count=12, other_side_usd=Decimal(2_000),
        threshold_usd=Decimal(100_000), quote_volume_24h=Decimal(50_000_000),
    )  # fmt: skip
    with (
        connect(feed_url(asgi_server)) as every,
        connect(feed_url(asgi_server, f"symbols={OTHER_SYMBOL}")) as other,
    ):
        assert frames_until_pong(every) == [{"type": "subscribed", "symbols": "*"}]
        assert frames_until_pong(other) == [{"type": "subscribed", "symbols": [OTHER_SYMBOL]}]
        alert = liquidation_alert_store(verdict, mark_price=Decimal("2.5"))
        live = every.recv(timeout=10)
        assert frames_until_pong(other) == []  # not its symbol

    frame = json.loads(live)
    assert list(frame) == ["type", "data"] and frame["type"] == "liquidation_alert"
    assert list(frame["data"]) == LIQUIDATION_ALERT_FIELDS
    data = frame["data"]
    assert (data["id"], data["symbol"], data["side"], data["rule"]) == (
        alert.id, KNOWN_SYMBOL, "long", "liq-5m",
    )  # fmt: skip
    assert (data["usd"], data["count"], data["volumeShare"]) == (150000.5, 12, 150000.5 / 50e6)
    assert (data["timestamp"], data["bound"], data["markPrice"]) == (
        "2025-12-01T12:00:00Z", "lower", 2.5,
    )  # fmt: skip
    assert live == wire(frame)


FRAME_TESTS = {
    FrameType.SUBSCRIBED: [
        test_subscribed_error_and_pong_frames_are_compact_json_in_key_order,
        test_websocket_fuzz.test_every_bad_message_gets_an_error_frame_and_the_connection_lives_on,
        test_websocket_hostile.test_too_many_symbols_get_an_error_without_a_query_and_errors_echo_little,
    ],
    FrameType.PONG: [
        test_subscribed_error_and_pong_frames_are_compact_json_in_key_order,
        test_websocket_fuzz.test_a_malformed_query_string_gets_an_error_frame_not_a_crash,
    ],
    FrameType.ERROR: [
        test_subscribed_error_and_pong_frames_are_compact_json_in_key_order,
        test_websocket_fuzz.test_every_bad_message_gets_an_error_frame_and_the_connection_lives_on,
        test_websocket_fuzz.test_a_malformed_query_string_gets_an_error_frame_not_a_crash,
        test_websocket_hostile.test_too_many_symbols_get_an_error_without_a_query_and_errors_echo_little,
        test_consumer.test_a_reconnecting_client_catches_up_and_bad_messages_get_error_frames,
    ],
    FrameType.OPEN_INTEREST_UPDATE: [
        test_an_open_interest_update_frame_carries_the_published_rows_of_the_subscribed_symbols,
        test_consumer.test_a_slow_client_never_holds_up_the_others,
    ],
    FrameType.OPEN_INTEREST_ALERT: [
        test_an_open_interest_alert_frame_is_the_stored_alert_live_and_on_catch_up,
        test_consumer.test_a_reconnecting_client_catches_up_and_bad_messages_get_error_frames,
    ],
    FrameType.VOLUME_ALERT: [
        test_a_volume_alert_frame_is_the_stored_alert_live_and_on_catch_up,
    ],
    FrameType.LIQUIDATION_ALERT: [
        test_a_liquidation_alert_frame_is_the_stored_burst_for_clients_of_its_symbol,
    ],
}


def test_every_frame_type_has_a_test():
    assert set(FRAME_TESTS) == set(FrameType)
    for frame_type, tests in FRAME_TESTS.items():
        assert tests, frame_type
        assert all(callable(test) and test.__name__.startswith("test_") for test in tests)


def test_every_group_message_type_has_a_handler_on_the_consumer():
    for message_type in GroupMessageType:
        assert get_handler_name({"type": message_type}) == message_type.handler_name
        assert callable(getattr(OpenInterestFeedConsumer, message_type.handler_name, None))


def test_the_names_on_the_wire_never_change():
    """Clients match these values: renaming a member is fine, changing a value breaks them."""
    assert {m.name: m.value for m in FrameType} == {
        "SUBSCRIBED": "subscribed", "OPEN_INTEREST_UPDATE": "open_interest_update",
        "OPEN_INTEREST_ALERT": "open_interest_alert", "VOLUME_ALERT": "volume_alert",
        "PONG": "pong", "ERROR": "error", "LIQUIDATION_ALERT": "liquidation_alert",
    }  # fmt: skip
    assert {m.value for m in ClientAction} == {"subscribe", "catch_up", "ping"}
    assert {m.value for m in ErrorCode} == {
        "invalid_json", "invalid_message", "unknown_action", "invalid_symbols",
        "too_many_symbols", "unknown_symbols", "invalid_after_id", "invalid_volume_after_id",
    }  # fmt: skip
    assert {m.value for m in FeedCloseCode} == {1009, 4401, 4408, 4429}
    assert {m.value for m in GroupMessageType} == {
        "oi.update", "oi.alert", "volume.alert", "liquidation.alert",
    }  # fmt: skip
