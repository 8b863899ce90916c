"""The live feed's consumer on the real ASGI server: catching up after a reconnect, error frames
on a connection that stays usable, and a client that stops reading (moved from
tests/alerts/test_alert_flow.py)."""

import asyncio
import json
import time

import pytest
from channels.layers import get_channel_layer
from websockets.sync.client import connect

from alerts.models import OpenInterestAlert
from common.realtime import OI_UPDATES_GROUP, GroupMessageType
from feed.frames import ClientAction, ErrorCode, FrameType
from tests.fixtures.feed import frames_until

pytestmark = pytest.mark.integration


def frames_for(ws, seconds: float) -> list[dict]:
    """Every frame within `seconds`."""
    return frames_until(ws, lambda got: False, seconds)


def test_a_reconnecting_client_catches_up_and_bad_messages_get_error_frames(
    asgi_server, writer_client, redis_client
):
    # given two alerts stored while the client was away (no cooldown left by an earlier test)
    base = asgi_server.replace("http://", "ws://") + "/ws/open-interest/"
    for symbol in ("BTCUSDT", "ETHUSDT"):
        writer_client.post(
            "/api/open-interest-alerts/ingest",
            {
                "symbol": symbol, "direction": "UP", "baseline": 100, "current": 110,
                "pctChange": 0.1, "absChange": 10, "timestamp": "2025-12-01T12:00:00Z",
                "source": "ingest",
            },
            format="json",
        )  # fmt: skip
    first_id, second_id = OpenInterestAlert.objects.order_by("id").values_list("id", flat=True)

    # a new client starts with the latest alerts; a reconnecting one gets what it missed
    with connect(base) as ws:
        received = frames_for(ws, 1.5)
        assert [
            f["data"]["id"] for f in received if f["type"] == FrameType.OPEN_INTEREST_ALERT
        ] == [first_id, second_id]
    with connect(f"{base}?after_id={first_id}") as ws:
        received = frames_for(ws, 1.5)
        assert [
            f["data"]["id"] for f in received if f["type"] == FrameType.OPEN_INTEREST_ALERT
        ] == [second_id]

        # bad input gets an error frame, and the connection stays usable
        ws.send("{not json")
        assert json.loads(ws.recv(timeout=5))["error"] == ErrorCode.INVALID_JSON
        ws.send(
            json.dumps({"action": ClientAction.SUBSCRIBE, "symbols": ["NOSUCHUSDT", "bad symbol"]})
        )
        error = json.loads(ws.recv(timeout=5))
        assert error["error"] == ErrorCode.UNKNOWN_SYMBOLS
        assert error["symbols"] == ["bad symbol", "NOSUCHUSDT"]
        assert json.loads(ws.recv(timeout=5)) == {"type": "subscribed", "symbols": "*"}  # unchanged
        ws.send(json.dumps({"action": ClientAction.CATCH_UP, "after_id": -1}))
        assert json.loads(ws.recv(timeout=5))["error"] == ErrorCode.INVALID_AFTER_ID
        ws.send(json.dumps({"action": ClientAction.PING}))
        assert [f for f in frames_for(ws, 1) if f["type"] == FrameType.PONG]


def test_a_slow_client_never_holds_up_the_others(asgi_server):
    """One client stops reading (its socket fills up); another still gets every update at once."""
    updates = 2000
    row = {"symbol": "BTCUSDT", "openInterest": "1" * 2000, "timestamp": "2025-12-01T12:00:00Z"}

    async def publish() -> None:
        layer = get_channel_layer()
        for _ in range(updates):
            await layer.group_send(
                OI_UPDATES_GROUP, {"type": GroupMessageType.OI_UPDATE, "data": [row]}
            )

    url = asgi_server.replace("http://", "ws://") + "/ws/open-interest/"
    with connect(url, max_queue=1) as slow, connect(url) as fast:
        slow.recv(timeout=5)  # subscribed; then it never reads again
        assert json.loads(fast.recv(timeout=5))["type"] == FrameType.SUBSCRIBED
        started = time.monotonic()
        asyncio.run(publish())
        got = frames_until(
            fast,
            lambda got: sum(f["type"] == FrameType.OPEN_INTEREST_UPDATE for f in got) >= updates,
            30,
        )
        elapsed = time.monotonic() - started
    assert sum(f["type"] == FrameType.OPEN_INTEREST_UPDATE for f in got) == updates
    assert elapsed < 30
