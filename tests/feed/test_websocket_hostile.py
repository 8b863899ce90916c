"""Hostile and careless WebSocket clients (issue 19), against the real uvicorn and a real client.

A client that stops reading, floods, sends huge messages or odd ids, a revoked token, another
deployment on the same Redis server, a Host the site does not serve: each is bounded, answered
or refused with a close code and reason, and the server holds nothing for a client once it is
gone (its Redis subscriptions, which carry every update to the process, are released).
"""

import base64
import json
import os
import socket
import struct
import subprocess
import sys
import time
from datetime import UTC, datetime
from decimal import Decimal
from urllib.parse import urlsplit

import pytest
import redis as redis_lib
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from common.realtime import OI_UPDATES_GROUP, GroupMessageType
from feed.consumers import FeedCloseCode
from feed.frames import ErrorCode, FrameType
from liquidity.models import LiquidSymbol
from tests.fixtures import processes
from tests.fixtures.feed import frames_until_pong
from tests.fixtures.processes import (
    ROOT,
    LogSince,
    ManagedProcess,
    asgi_server_args,
    free_port,
    wait_until,
)

pytestmark = [pytest.mark.reliability, pytest.mark.django_db(transaction=True)]

KNOWN_SYMBOL = "FZKNOWNUSDT"
FEED_PATH = "/ws/open-interest/"


def feed_url(base_url: str, query: str = "") -> str:
    return base_url.replace("http://", "ws://") + FEED_PATH + (f"?{query}" if query else "")


@pytest.fixture
def known_symbol(db) -> str:
    now = datetime.now(UTC)
    LiquidSymbol.objects.create(
        symbol=KNOWN_SYMBOL, quote_volume_24h=Decimal(5_000_000), entered_at=now, last_seen_at=now
    )
    return KNOWN_SYMBOL


def update_event(n_rows: int, tag: int = 0) -> dict:
    """An oi.update as the poller publishes it (rows of `as_json`)."""
    return {
        "type": GroupMessageType.OI_UPDATE,
        "data": [
            {"symbol": KNOWN_SYMBOL, "openInterest": f"{1000 + i}.{tag}", "markPrice": "1.5",
             "openInterestUsd": "1500", "source": "realtime", "timestamp": "2026-01-01T00:00:00Z"}
            for i in range(n_rows)
        ],
    }  # fmt: skip


def publish_updates(count: int, n_rows: int, pause_sec: float = 0.0) -> None:
    """`count` updates through this deployment's channel layer, from one event loop."""

    async def publish() -> None:
        import asyncio

        layer = get_channel_layer()
        for tag in range(count):
            await layer.group_send(OI_UPDATES_GROUP, update_event(n_rows, tag))
            if pause_sec:
                await asyncio.sleep(pause_sec)

    async_to_sync(publish)()


def feed_subscriptions(prefix: str | None = None) -> tuple[int, list[str]]:
    """What the web process holds in Redis for feed clients: subscribers of the updates group's
    channel, and the consumers' own channels."""
    prefix = prefix or settings.CHANNEL_LAYERS["default"]["CONFIG"]["prefix"]
    client = redis_lib.Redis.from_url(settings.REDIS_URL, decode_responses=True)
    try:
        [(_, group_subscribers)] = client.pubsub_numsub(f"{prefix}__group__{OI_UPDATES_GROUP}")
        return group_subscribers, client.pubsub_channels(f"{prefix}specific.*")
    finally:
        client.close()


def close_of(ws, timeout: float = 20) -> tuple[int, str]:
    """Read until the server closes; its close code and reason."""
    deadline = time.monotonic() + timeout
    with pytest.raises(ConnectionClosed) as closed:
        while time.monotonic() < deadline:
            ws.recv(timeout=deadline - time.monotonic())
    assert closed.value.rcvd is not None, f"no close frame: {closed.value!r}"
    return closed.value.rcvd.code, closed.value.rcvd.reason


def server_log(log_path: LogSince) -> str:
    return log_path.read_text(errors="replace")


def small_buffer_socket(base_url: str) -> socket.socket:
    """A TCP connection to the server whose receive buffer fills after a few KB."""
    parts = urlsplit(base_url)
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect((parts.hostname, parts.port))
    return sock


def stalled_client(base_url: str) -> socket.socket:
    """A WebSocket client that completes the handshake and then never reads (a laptop asleep
    with the page open): a raw socket with a small receive buffer."""
    parts = urlsplit(base_url)
    sock = small_buffer_socket(base_url)
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        f"GET {FEED_PATH} HTTP/1.1\r\nHost: {parts.netloc}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        .encode()
    )  # fmt: skip
    response = b""
    while not response.endswith(b"\r\n\r\n"):
        response += sock.recv(1)  # byte by byte: leave the frames that follow unread
    assert response.startswith(b"HTTP/1.1 101"), response
    return sock


def read_until_close(sock: socket.socket, timeout: float = 60) -> tuple[int, str]:
    """Read a raw client's (unmasked) server frames up to the close frame; its code, reason."""
    sock.settimeout(timeout)
    buffer = b""

    def take(n: int) -> bytes:
        nonlocal buffer
        while len(buffer) < n:
            chunk = sock.recv(1 << 16)
            if not chunk:
                raise AssertionError("the connection ended without a close frame")
            buffer += chunk
        taken, buffer = buffer[:n], buffer[n:]
        return taken

    while True:
        opcode, length = take(2)
        opcode, length = opcode & 0x0F, length & 0x7F
        if length == 126:
            length = struct.unpack("!H", take(2))[0]
        elif length == 127:
            length = struct.unpack("!Q", take(8))[0]
        payload = take(length)
        if opcode == 0x8:
            return struct.unpack("!H", payload[:2])[0], payload[2:].decode()


def hang_up(sock: socket.socket) -> None:
    """Close with unread data and no closing handshake: the server sees a reset."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


# --- #1: a stalled client ---------------------------------------------------------------------


@pytest.fixture
def asgi_server_env(request) -> dict[str, str]:
    return getattr(request, "param", {})


def test_a_stalled_client_that_hangs_up_leaves_nothing_subscribed(
    asgi_server, known_symbol, asgi_server_log
):
    """Issue 19 #1: the stalled consumer's queue stayed in the group, fed by every update."""
    sock = stalled_client(asgi_server)
    wait_until(lambda: feed_subscriptions()[0] == 1, 10, "the client never joined the feed")
    publish_updates(count=100, n_rows=500)  # ~7 MB: more than the socket buffers hold
    time.sleep(1)
    hang_up(sock)
    wait_until(
        lambda: feed_subscriptions() == (0, []),
        20,
        f"the web process still holds the gone client's subscriptions: {feed_subscriptions()}",
    )
    # the server is healthy: a new client gets the feed
    with connect(feed_url(asgi_server)) as ws:
        frames_until_pong(ws)
        publish_updates(count=1, n_rows=1)
        assert json.loads(ws.recv(timeout=10))["type"] == FrameType.OPEN_INTEREST_UPDATE
    assert "Traceback" not in server_log(asgi_server_log)


@pytest.mark.parametrize("asgi_server_env", [{"WS_MAX_PENDING_FRAMES": "20"}], indirect=True)
def test_a_client_that_falls_behind_is_closed_with_a_reason(asgi_server, known_symbol):
    """Issue 19 #1: a client that stays connected without reading is closed (4408) once it is
    WS_MAX_PENDING_FRAMES frames behind; it gets what was already sent, then the close."""
    sock = stalled_client(asgi_server)
    wait_until(lambda: feed_subscriptions()[0] == 1, 10, "the client never joined the feed")
    publish_updates(count=100, n_rows=500)  # the client reads nothing meanwhile
    wait_until(lambda: feed_subscriptions() == (0, []), 30, "the slow client was kept")
    code, reason = read_until_close(sock)  # the client wakes up
    assert code == FeedCloseCode.TOO_SLOW, (code, reason)
    assert "frames behind" in reason


# --- #7: huge messages, many symbols, floods, echoes ------------------------------------------


def test_a_15_mb_message_is_refused_with_1009_and_other_clients_are_served(
    asgi_server, known_symbol, asgi_server_log
):
    """Issue 19 #7: a 15 MB subscribe stalled the loop, became a 400,000-symbol IN and an
    error frame echoing 5.5 MB."""
    symbols = [f"ZZ{i:07d}USDT" for i in range(400_000)]  # well-formed, unknown
    huge = json.dumps({"action": "subscribe", "symbols": symbols, "pad": "x" * 9_000_000})
    assert 15_000_000 < len(huge) < 16 * 2**20  # under uvicorn's default --ws-max-size
    with (
        connect(feed_url(asgi_server)) as bystander,
        connect(feed_url(asgi_server), max_size=None) as hostile,  # it would take any answer
    ):
        frames_until_pong(bystander)
        frames_until_pong(hostile)
        with pytest.raises(ConnectionClosed) as closed:  # while sending, or on the next read
            hostile.send(huge)
            hostile.recv(timeout=20)
        started = time.monotonic()
        frames_until_pong(bystander)
        assert time.monotonic() - started < 2.0
    # the close frame, unless the reset of the refused upload overtook it
    assert closed.value.rcvd is None or closed.value.rcvd.code == FeedCloseCode.MESSAGE_TOO_BIG, (
        closed.value
    )
    assert "Traceback" not in server_log(asgi_server_log)


@pytest.mark.parametrize("asgi_server_env", [{"WS_MAX_MESSAGE_BYTES": "2000"}], indirect=True)
def test_the_consumer_refuses_a_message_over_its_own_limit(asgi_server, known_symbol):
    """The consumer checks the size too (a server started without --ws-max-size)."""
    with connect(feed_url(asgi_server)) as ws:
        frames_until_pong(ws)
        ws.send(json.dumps({"action": "subscribe", "symbols": ["ZZ" + str(i) for i in range(500)]}))
        code, reason = close_of(ws)
    assert (code, reason) == (FeedCloseCode.MESSAGE_TOO_BIG, "messages are limited to 2000 bytes")


def test_too_many_symbols_get_an_error_without_a_query_and_errors_echo_little(
    asgi_server, known_symbol
):
    """Issue 19 #7: symbols per message are capped; an error frame names a few, cut short."""
    with connect(feed_url(asgi_server)) as ws:
        frames_until_pong(ws)
        ws.send(json.dumps({"action": "subscribe", "symbols": [f"ZZ{i}USDT" for i in range(1001)]}))
        [error] = frames_until_pong(ws)
        assert error["error"] == ErrorCode.TOO_MANY_SYMBOLS, error
        assert "1000" in error["message"]

        unknown = [f"ZZ{i:016d}USDT"[:20] for i in range(900)]
        ws.send(json.dumps({"action": "subscribe", "symbols": [*unknown, "Q" * 10_000]}))
        frames = frames_until_pong(ws)
        error = frames[0]
        assert error["error"] == ErrorCode.UNKNOWN_SYMBOLS, error
        assert len(json.dumps(error)) < 2_000, len(json.dumps(error))
        assert len(error["symbols"]) == 20 and error["more"] == 881
        assert max(len(s) for s in error["symbols"]) <= 32
        assert frames[1] == {"type": "subscribed", "symbols": "*"}


def test_a_flooding_client_is_closed_with_4429_and_others_are_served(
    asgi_server, known_symbol, asgi_server_log
):
    """Issue 19 #7: messages per second per connection are capped."""
    with connect(feed_url(asgi_server)) as bystander, connect(feed_url(asgi_server)) as flood:
        frames_until_pong(bystander)
        for _ in range(200):
            try:
                flood.send(json.dumps({"action": "ping"}))
            except ConnectionClosed:
                break
        code, reason = close_of(flood)
        frames_until_pong(bystander)
    assert code == FeedCloseCode.RATE_LIMITED, (code, reason)
    assert "messages a second" in reason
    assert "Traceback" not in server_log(asgi_server_log)


# --- #10: a 5,000-digit after_id ----------------------------------------------------------------


def test_a_5000_digit_after_id_gets_an_error_frame_and_the_socket_lives(
    asgi_server, known_symbol, asgi_server_log
):
    with connect(feed_url(asgi_server, "after_id=" + "9" * 5000)) as ws:
        frames = frames_until_pong(ws)
        errors = [f for f in frames if f["type"] == FrameType.ERROR]
        assert [e["error"] for e in errors] == [ErrorCode.INVALID_AFTER_ID], frames
        assert len(json.dumps(errors[0])) < 200
        ws.send(json.dumps({"action": "catch_up", "after_id": 2**63}))
        [error] = frames_until_pong(ws)
        assert error["error"] == ErrorCode.INVALID_AFTER_ID
    assert "Traceback" not in server_log(asgi_server_log)


# --- #9 and #8: tokens --------------------------------------------------------------------------

AUTH_ENV = {"API_READS_REQUIRE_AUTH": "true", "WS_TOKEN_RECHECK_SEC": "1"}


@pytest.mark.parametrize("asgi_server_env", [AUTH_ENV], indirect=True)
def test_a_socket_is_closed_once_its_token_is_revoked(asgi_server, known_symbol, api_key):
    from common.services import api_token_revoke

    with connect(
        feed_url(asgi_server), subprotocols=["volspike.feed", f"volspike.token.{api_key}"]
    ) as ws:
        assert ws.subprotocol == "volspike.feed"
        frames_until_pong(ws)
        assert api_token_revoke(name="test-writer")
        code, reason = close_of(ws, timeout=15)
    assert (code, reason) == (FeedCloseCode.UNAUTHORIZED, "the API token was revoked")
    with pytest.raises(InvalidStatus) as refused:
        connect(feed_url(asgi_server), subprotocols=["volspike.feed", f"volspike.token.{api_key}"])
    assert refused.value.response.status_code == 403


@pytest.mark.parametrize("asgi_server_env", [AUTH_ENV], indirect=True)
def test_the_token_can_be_passed_unlogged_and_a_query_token_is_not_logged(
    asgi_server, known_symbol, api_key, asgi_server_log
):
    with connect(feed_url(asgi_server), additional_headers={"Authorization": f"Token {api_key}"}):
        pass
    with connect(
        feed_url(asgi_server), subprotocols=["volspike.feed", f"volspike.token.{api_key}"]
    ) as ws:
        assert frames_until_pong(ws)[0] == {"type": "subscribed", "symbols": "*"}
    with connect(feed_url(asgi_server, f"token={api_key}&after_id=0")) as ws:  # deprecated
        frames_until_pong(ws)
    with pytest.raises(InvalidStatus):
        connect(feed_url(asgi_server, "token=not-a-key"))
    time.sleep(0.5)
    log = server_log(asgi_server_log)
    assert '"WebSocket /ws/open-interest/?token=[redacted]&after_id=0" [accepted]' in log, log
    assert api_key not in log


# --- #12: two deployments on one Redis server -----------------------------------------------------


def local_deployment_env(redis_db: int) -> dict[str, str]:
    """A deployment with the base settings (local), on this run's Redis server, db `redis_db`."""
    env = processes.test_process_env(
        DJANGO_SETTINGS_MODULE="volspike.settings.local", DJANGO_DEBUG="false"
    )
    env.pop("DEPLOYMENT_NAME", None)
    env["REDIS_URL"] = settings.REDIS_URL.rsplit("/", 1)[0] + f"/{redis_db}"
    return env


def publish_as(env: dict[str, str], tag: str) -> None:
    code = (
        "import django; django.setup()\n"
        "from common.realtime import OI_UPDATES_GROUP, GroupMessageType, broadcast\n"
        f"broadcast(OI_UPDATES_GROUP, {{'type': GroupMessageType.OI_UPDATE, 'data': [{{'symbol': "
        f"'{KNOWN_SYMBOL}', 'openInterest': '{tag}'}}]}})\n"
    )
    subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, check=True, timeout=60)


def test_two_deployments_on_one_redis_server_do_not_see_each_others_frames(known_symbol):
    deployments = []
    try:
        for redis_db in (1, 2):
            env = local_deployment_env(redis_db)
            port = free_port()
            server = ManagedProcess(
                f"asgi-server-deployment-{redis_db}", asgi_server_args(port), env
            )
            deployments.append((server, env, f"http://127.0.0.1:{port}"))
            server.wait_http(f"http://127.0.0.1:{port}/health")
        (_, env_1, url_1), (_, env_2, url_2) = deployments
        with connect(feed_url(url_1)) as ws_1, connect(feed_url(url_2)) as ws_2:
            frames_until_pong(ws_1)
            frames_until_pong(ws_2)
            publish_as(env_1, "111")
            assert json.loads(ws_1.recv(timeout=10))["data"][0]["openInterest"] == "111"
            publish_as(env_2, "222")
            assert json.loads(ws_2.recv(timeout=10))["data"][0]["openInterest"] == "222"
            # each saw only its own deployment's frame
            assert frames_until_pong(ws_1) == []
            assert frames_until_pong(ws_2) == []
    finally:
        for server, _, _ in deployments:
            server.stop()


# --- Low: Host -------------------------------------------------------------------------------------


def test_a_host_outside_allowed_hosts_is_refused(asgi_server, known_symbol):
    port = urlsplit(asgi_server).port
    sock = socket.create_connection(("127.0.0.1", port))
    with pytest.raises(InvalidStatus) as refused:
        connect(f"ws://rebound.example:{port}{FEED_PATH}", sock=sock)
    assert refused.value.response.status_code == 403
    with connect(feed_url(asgi_server)) as ws:  # 127.0.0.1 is allowed
        frames_until_pong(ws)
