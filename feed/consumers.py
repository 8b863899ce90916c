"""The live feed: /ws/open-interest/?symbols=BTCUSDT,ETHUSDT&after_id=N

Server → client frames (built in feed/frames.py, named by FrameType): `subscribed`,
`open_interest_alert` (the §5.3 payload with its id), `open_interest_update` (a poller batch),
`volume_alert` (an hourly volume alert, upstream's `VolumeAlert` row), `pong`, `error`.
Client → server (ClientAction): `{"action": "subscribe", "symbols": [...]}`
(empty = all), `{"action": "catch_up", "after_id": N, "volume_after_id": M}` (either or both),
`{"action": "ping"}`. On connect a client gets the alerts after `after_id`, or else the latest
few, and the volume alerts after `volume_after_id`, or else the latest few, so it never starts
blank and can resume after a dropped connection.

When reads need a token (API_READS_REQUIRE_AUTH), offer the subprotocols `volspike.feed,
volspike.token.<key>` (or send `Authorization: Token <key>`; `?token=<key>` still works but
ends up in proxies' logs). The token is checked again every WS_TOKEN_RECHECK_SEC.

Every connection is bounded (settings WS_*; the close codes are FeedCloseCode): frames go out
through a bounded outbox drained by a writer task, so a client that stops reading costs at most
WS_MAX_PENDING_FRAMES frames and is closed; whatever ends the connection, the consumer leaves
its groups and releases its channel (`disconnect` always runs).
"""

import asyncio
import json
import logging
from contextlib import suppress
from enum import IntEnum
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings

from alerts.selectors import alert_list
from alerts.services import alert_payload
from common.realtime import OI_ALERTS_GROUP, OI_UPDATES_GROUP, VOLUME_ALERTS_GROUP, channel_release
from common.selectors import api_token_get_active
from common.symbols import symbol_problem
from feed import frames
from feed.frames import ClientAction, ErrorCode
from feed.websocket import FEED_SUBPROTOCOL, token_from_scope
from liquidity.models import LiquidSymbol
from volume_alerts.selectors import volume_alert_list
from volume_alerts.services import volume_alert_payload

logger = logging.getLogger(__name__)

CATCH_UP_MAX = 500
AFTER_ID_MAX = 2**63 - 1  # ids are Postgres bigints
# An error frame names at most this many of the symbols it refuses, each cut to this length.
ECHO_MAX_SYMBOLS = 20
ECHO_MAX_CHARS = 32
FEED_GROUPS = (OI_ALERTS_GROUP, OI_UPDATES_GROUP, VOLUME_ALERTS_GROUP)
# The error of a bad id, by the query parameter or message field that carried it.
AFTER_ID_ERRORS = {
    "after_id": ErrorCode.INVALID_AFTER_ID,
    "volume_after_id": ErrorCode.INVALID_VOLUME_AFTER_ID,
}


class FeedCloseCode(IntEnum):
    MESSAGE_TOO_BIG = 1009  # a message over WS_MAX_MESSAGE_BYTES
    UNAUTHORIZED = 4401  # no valid token (at the handshake: HTTP 403), or revoked since
    TOO_SLOW = 4408  # WS_MAX_PENDING_FRAMES behind, or no frame taken for WS_SEND_TIMEOUT_SEC
    RATE_LIMITED = 4429  # more than WS_MAX_MESSAGES_PER_SEC (beyond WS_MESSAGE_BURST)


class OpenInterestFeedConsumer(AsyncWebsocketConsumer):
    async def __call__(self, scope, receive, send) -> None:
        """Channels' dispatch loop, run as a task this method can stop: when the writer or a
        limit ends the connection, and in every case, `disconnect` runs."""
        self._outbox: asyncio.Queue[str] = asyncio.Queue(maxsize=settings.WS_MAX_PENDING_FRAMES)
        self._tasks: list[asyncio.Task] = []
        self._stopped = asyncio.Event()
        self._close_frame: tuple[FeedCloseCode, str] | None = None
        self._left = False
        self._disconnect_code = 1006  # no close from the client (a reset, or a limit of ours)
        self._message_tokens = float(settings.WS_MESSAGE_BURST)
        self._message_tokens_at = asyncio.get_running_loop().time()
        dispatching = asyncio.ensure_future(super().__call__(scope, receive, send))
        stopping = asyncio.ensure_future(self._stopped.wait())
        try:
            await asyncio.wait([dispatching, stopping], return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (dispatching, stopping, *self._tasks):
                task.cancel()
            await asyncio.gather(dispatching, stopping, *self._tasks, return_exceptions=True)
            code = self._close_frame[0] if self._close_frame else self._disconnect_code
            await self.disconnect(code)
            if self._close_frame is not None:
                code, reason = self._close_frame
                logger.info("feed connection closed", extra={"code": int(code), "cause": reason})
                with suppress(Exception):  # the client may be gone, or not reading
                    await asyncio.wait_for(
                        self.base_send({"type": "websocket.close", "code": code, "reason": reason}),
                        settings.WS_SEND_TIMEOUT_SEC,  # a client asleep may wake up to it
                    )
        if dispatching.done() and not dispatching.cancelled() and dispatching.exception():
            raise dispatching.exception()  # a disconnect during the handshake, or a bug

    async def connect(self) -> None:
        self.symbols: set[str] | None = None  # None: every symbol
        query = parse_qs(self.scope.get("query_string", b"").decode(errors="replace"))
        self._token, _source = token_from_scope(self.scope)
        if settings.API_READS_REQUIRE_AUTH and not await _token_valid(self._token):
            await self.close(code=FeedCloseCode.UNAUTHORIZED)
            return
        offered = self.scope.get("subprotocols", [])
        await self.accept(subprotocol=FEED_SUBPROTOCOL if FEED_SUBPROTOCOL in offered else None)
        self._tasks.append(asyncio.ensure_future(self._write_frames()))
        if settings.API_READS_REQUIRE_AUTH:
            self._tasks.append(asyncio.ensure_future(self._recheck_token()))
        for group in FEED_GROUPS:
            await self.channel_layer.group_add(group, self.channel_name)
        requested = [s for raw in query.get("symbols", []) for s in raw.split(",") if s.strip()]
        if requested:
            await self._subscribe(requested)
        else:
            await self._send_subscribed()
        raw_after_id = query.get("after_id", [None])[0]
        after_id = None if raw_after_id is None else _after_id_parse(raw_after_id)
        if raw_after_id is not None and after_id is None:
            await self._send_after_id_error()
        await self._send_alerts(after_id=after_id)
        raw_volume_after_id = query.get("volume_after_id", [None])[0]
        volume_after_id = (
            None if raw_volume_after_id is None else _after_id_parse(raw_volume_after_id)
        )
        if raw_volume_after_id is not None and volume_after_id is None:
            await self._send_after_id_error("volume_after_id")
        await self._send_volume_alerts(after_id=volume_after_id)

    async def websocket_disconnect(self, message: dict) -> None:
        """The client is gone: end the dispatch loop; `__call__` then runs `disconnect` (once,
        after the loop, so that nothing can cancel it halfway)."""
        self._disconnect_code = message.get("code", 1005)
        raise StopConsumer()

    async def disconnect(self, code: int) -> None:
        """Leave the groups and release the channel: once, whatever ended the connection."""
        if self._left:
            return
        self._left = True
        channel_name = getattr(self, "channel_name", None)
        if channel_name is None:
            return
        for group in FEED_GROUPS:
            with suppress(Exception):
                await self.channel_layer.group_discard(group, channel_name)
        await channel_release(self.channel_layer, channel_name)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if not self._message_allowed():
            self._stop(
                FeedCloseCode.RATE_LIMITED,
                f"more than {settings.WS_MAX_MESSAGES_PER_SEC:g} messages a second",
            )
            return
        raw = text_data if text_data is not None else bytes_data or b""
        if len(raw) > settings.WS_MAX_MESSAGE_BYTES:
            self._stop(
                FeedCloseCode.MESSAGE_TOO_BIG,
                f"messages are limited to {settings.WS_MAX_MESSAGE_BYTES} bytes",
            )
            return
        try:
            message = json.loads(raw)
        except (ValueError, UnicodeDecodeError, RecursionError):
            await self._send_error(ErrorCode.INVALID_JSON, "messages must be JSON objects")
            return
        if not isinstance(message, dict):
            await self._send_error(ErrorCode.INVALID_MESSAGE, "messages must be JSON objects")
            return
        action = message.get("action")
        if action == ClientAction.SUBSCRIBE:
            symbols = message.get("symbols", [])
            if not isinstance(symbols, list) or not all(isinstance(s, str) for s in symbols):
                await self._send_error(
                    ErrorCode.INVALID_SYMBOLS, "symbols must be a list of strings"
                )
                return
            if symbols:
                await self._subscribe(symbols)
            else:
                self.symbols = None
                await self._send_subscribed()
        elif action == ClientAction.CATCH_UP:
            if "volume_after_id" in message:
                if not _after_id_valid(message["volume_after_id"]):
                    await self._send_after_id_error("volume_after_id")
                    return
                await self._send_volume_alerts(after_id=message["volume_after_id"])
                if "after_id" not in message:
                    return
            after_id = message.get("after_id")
            if _after_id_valid(after_id):
                await self._send_alerts(after_id=after_id)
            else:
                await self._send_after_id_error()
        elif action == ClientAction.PING:
            await self._send_json(frames.pong())
        else:
            await self._send_error(
                ErrorCode.UNKNOWN_ACTION, "action must be subscribe, catch_up or ping"
            )

    # --- channel layer events -------------------------------------------------------------
    # One handler per common.realtime.GroupMessageType (its `handler_name`): Channels calls
    # the method named by a group message's type. Broadcast frames never wait: a client too
    # far behind is closed (FeedCloseCode.TOO_SLOW).

    async def oi_alert(self, event: dict) -> None:
        alert = event["alert"]
        if self._wants(alert["symbol"]):
            await self._send_json(frames.open_interest_alert(alert), wait=False)

    async def liquidation_alert(self, event: dict) -> None:
        alert = event["alert"]
        if self._wants(alert["symbol"]):
            await self._send_json(frames.liquidation_alert(alert), wait=False)

    async def oi_update(self, event: dict) -> None:
        rows = [row for row in event["data"] if self._wants(row["symbol"])]
        if rows:
            await self._send_json(frames.open_interest_update(rows), wait=False)

    async def volume_alert(self, event: dict) -> None:
        alert = event["alert"]
        if self._wants(alert["symbol"]):
            await self._send_json(frames.volume_alert(alert), wait=False)

    # --- helpers ----------------------------------------------------------------------------

    def _wants(self, symbol: str) -> bool:
        return self.symbols is None or symbol in self.symbols

    async def _subscribe(self, requested: list[str]) -> None:
        if len(requested) > settings.WS_MAX_SYMBOLS_PER_MESSAGE:
            await self._send_error(
                ErrorCode.TOO_MANY_SYMBOLS,
                f"at most {settings.WS_MAX_SYMBOLS_PER_MESSAGE} symbols at once "
                f"(got {len(requested)}); an empty list subscribes to every symbol",
            )
            return
        malformed = [s for s in requested if symbol_problem(s)]
        wellformed = [s for s in requested if not symbol_problem(s)]
        known = await _known_symbols(wellformed)
        unknown = sorted(set(wellformed) - known)
        if malformed or unknown:
            refused = sorted(malformed) + unknown
            extra = (
                {"more": len(refused) - ECHO_MAX_SYMBOLS} if len(refused) > ECHO_MAX_SYMBOLS else {}
            )
            await self._send_error(
                ErrorCode.UNKNOWN_SYMBOLS,
                "not liquid symbols of this monitor; not subscribed",
                symbols=[s[:ECHO_MAX_CHARS] for s in refused[:ECHO_MAX_SYMBOLS]],
                **extra,
            )
        if known:
            self.symbols = known
        await self._send_subscribed()

    async def _send_subscribed(self) -> None:
        await self._send_json(frames.subscribed(self.symbols))

    async def _send_alerts(self, *, after_id: int | None) -> None:
        for payload in await _alert_payloads(self.symbols, after_id):
            await self._send_json(frames.open_interest_alert(payload))

    async def _send_volume_alerts(self, *, after_id: int | None) -> None:
        for payload in await _volume_alert_payloads(self.symbols, after_id):
            await self._send_json(frames.volume_alert(payload))

    async def _send_after_id_error(self, field: str = "after_id") -> None:
        await self._send_error(
            AFTER_ID_ERRORS[field], f"{field} must be an integer from 0 to {AFTER_ID_MAX}"
        )

    async def _send_error(self, code: ErrorCode, message: str, **extra: object) -> None:
        await self._send_json(frames.error(code, message, **extra))

    async def _send_json(self, frame: dict, *, wait: bool = True) -> None:
        """Queue a frame for the writer. Answers to the client's own requests wait for room
        (`wait`); broadcast frames do not: a full outbox closes the connection."""
        if self._stopped.is_set():
            return
        text = frames.frame_text(frame)
        if wait:
            await self._outbox.put(text)
            return
        try:
            self._outbox.put_nowait(text)
        except asyncio.QueueFull:
            self._stop(
                FeedCloseCode.TOO_SLOW,
                f"fell {settings.WS_MAX_PENDING_FRAMES} frames behind; reconnect with after_id",
            )

    async def _write_frames(self) -> None:
        """The only sender of frames after the handshake; stops the connection when a frame
        waits longer than WS_SEND_TIMEOUT_SEC, or when the client is gone."""
        while True:
            text = await self._outbox.get()
            try:
                await asyncio.wait_for(
                    self.base_send({"type": "websocket.send", "text": text}),
                    settings.WS_SEND_TIMEOUT_SEC,
                )
            except TimeoutError:
                self._stop(
                    FeedCloseCode.TOO_SLOW,
                    f"took no frame for {settings.WS_SEND_TIMEOUT_SEC:g} s; reconnect with after_id",
                )
                return
            except Exception as exc:  # noqa: BLE001 - the client is gone (ClientDisconnected)
                logger.debug("feed client gone", extra={"cause": repr(exc)})
                self._stopped.set()
                return

    async def _recheck_token(self) -> None:
        while True:
            await asyncio.sleep(settings.WS_TOKEN_RECHECK_SEC)
            if not await _token_valid(self._token):
                self._stop(FeedCloseCode.UNAUTHORIZED, "the API token was revoked")
                return

    def _message_allowed(self) -> bool:
        """A token bucket: WS_MAX_MESSAGES_PER_SEC, up to WS_MESSAGE_BURST at once."""
        now = asyncio.get_running_loop().time()
        self._message_tokens = min(
            float(settings.WS_MESSAGE_BURST),
            self._message_tokens
            + (now - self._message_tokens_at) * settings.WS_MAX_MESSAGES_PER_SEC,
        )
        self._message_tokens_at = now
        if self._message_tokens < 1:
            return False
        self._message_tokens -= 1
        return True

    def _stop(self, code: FeedCloseCode, reason: str) -> None:
        """End the connection with a close frame (code, reason), after leaving the groups."""
        if self._close_frame is None:
            self._close_frame = (code, reason)
        self._stopped.set()


def _after_id_valid(after_id: object) -> bool:
    return (
        isinstance(after_id, int)
        and not isinstance(after_id, bool)
        and 0 <= after_id <= AFTER_ID_MAX
    )


def _after_id_parse(raw: str) -> int | None:
    """A non-negative bigint from ASCII digits, else None (never int() of 5,000 digits)."""
    if not (raw.isascii() and raw.isdigit()) or len(raw.lstrip("0")) > len(str(AFTER_ID_MAX)):
        return None
    value = int(raw)
    return value if value <= AFTER_ID_MAX else None


@database_sync_to_async
def _token_valid(raw_key: str) -> bool:
    return bool(raw_key) and api_token_get_active(raw_key=raw_key) is not None


@database_sync_to_async
def _known_symbols(symbols: list[str]) -> set[str]:
    return set(LiquidSymbol.objects.filter(symbol__in=symbols).values_list("symbol", flat=True))


@database_sync_to_async
def _alert_payloads(symbols: set[str] | None, after_id: int | None) -> list[dict]:
    """Oldest first: the alerts after `after_id` (catch-up), or else the latest few."""
    alerts = alert_list(symbols=sorted(symbols) if symbols else None, after_id=after_id)
    if after_id is not None:
        chosen = list(alerts.order_by("id")[:CATCH_UP_MAX])
    else:
        chosen = list(alerts[: settings.OI_ALERT_WS_BACKLOG])[::-1]
    return [alert_payload(alert) for alert in chosen]


@database_sync_to_async
def _volume_alert_payloads(symbols: set[str] | None, after_id: int | None) -> list[dict]:
    """Oldest first: the volume alerts after `after_id` (catch-up), or else the latest few."""
    alerts = volume_alert_list(symbols=sorted(symbols) if symbols else None, after_id=after_id)
    if after_id is not None:
        chosen = list(alerts.order_by("id")[:CATCH_UP_MAX])
    else:
        chosen = list(alerts[: settings.OI_ALERT_WS_BACKLOG])[::-1]
    return [volume_alert_payload(alert) for alert in chosen]
