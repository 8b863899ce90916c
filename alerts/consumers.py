"""The live feed: /ws/open-interest/?symbols=BTCUSDT,ETHUSDT&after_id=N

Server → client frames: `subscribed`, `open_interest_alert` (the §5.3 payload with its id),
`open_interest_update` (a poller batch), `volume_alert` (an hourly volume alert, upstream's
`VolumeAlert` row), `pong`, `error`. Client → server: `{"action": "subscribe", "symbols": [...]}`
(empty = all), `{"action": "catch_up", "after_id": N, "volume_after_id": M}` (either or both),
`{"action": "ping"}`. When reads need a token (API_READS_REQUIRE_AUTH), add `&token=<key>`.
On connect a client gets the alerts after `after_id`, or else the latest few, and the volume
alerts after `volume_after_id`, or else the latest few, so it never starts blank and can resume
after a dropped connection.
"""

import json
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings

from alerts.selectors import alert_list
from alerts.services import alert_payload
from common.realtime import OI_ALERTS_GROUP, OI_UPDATES_GROUP, VOLUME_ALERTS_GROUP
from common.selectors import api_token_get_active
from common.symbols import symbol_problem
from liquidity.models import LiquidSymbol
from volume_alerts.selectors import volume_alert_list
from volume_alerts.services import volume_alert_payload

CATCH_UP_MAX = 500


class OpenInterestFeedConsumer(AsyncWebsocketConsumer):
    async def connect(self) -> None:
        self.symbols: set[str] | None = None  # None: every symbol
        query = parse_qs(self.scope.get("query_string", b"").decode(errors="replace"))
        if settings.API_READS_REQUIRE_AUTH and not await _token_valid(query.get("token", [""])[0]):
            await self.close(code=4401)
            return
        await self.accept()
        await self.channel_layer.group_add(OI_ALERTS_GROUP, self.channel_name)
        await self.channel_layer.group_add(OI_UPDATES_GROUP, self.channel_name)
        await self.channel_layer.group_add(VOLUME_ALERTS_GROUP, self.channel_name)
        requested = [s for raw in query.get("symbols", []) for s in raw.split(",") if s.strip()]
        if requested:
            await self._subscribe(requested)
        else:
            await self._send_subscribed()
        after_id = query.get("after_id", [None])[0]
        if after_id is not None and not (after_id.isascii() and after_id.isdigit()):
            await self._send_error("invalid_after_id", "after_id must be a non-negative integer")
            after_id = None
        await self._send_alerts(after_id=int(after_id) if after_id is not None else None)
        volume_after_id = query.get("volume_after_id", [None])[0]
        if volume_after_id is not None and not (
            volume_after_id.isascii() and volume_after_id.isdigit()
        ):
            await self._send_error(
                "invalid_volume_after_id", "volume_after_id must be a non-negative integer"
            )
            volume_after_id = None
        await self._send_volume_alerts(
            after_id=int(volume_after_id) if volume_after_id is not None else None
        )

    async def disconnect(self, code: int) -> None:
        await self.channel_layer.group_discard(OI_ALERTS_GROUP, self.channel_name)
        await self.channel_layer.group_discard(OI_UPDATES_GROUP, self.channel_name)
        await self.channel_layer.group_discard(VOLUME_ALERTS_GROUP, self.channel_name)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        try:
            message = json.loads(text_data if text_data is not None else bytes_data or b"")
        except (ValueError, UnicodeDecodeError, RecursionError):
            await self._send_error("invalid_json", "messages must be JSON objects")
            return
        if not isinstance(message, dict):
            await self._send_error("invalid_message", "messages must be JSON objects")
            return
        action = message.get("action")
        if action == "subscribe":
            symbols = message.get("symbols", [])
            if not isinstance(symbols, list) or not all(isinstance(s, str) for s in symbols):
                await self._send_error("invalid_symbols", "symbols must be a list of strings")
                return
            if symbols:
                await self._subscribe(symbols)
            else:
                self.symbols = None
                await self._send_subscribed()
        elif action == "catch_up":
            if "volume_after_id" in message:
                volume_after_id = message["volume_after_id"]
                if (
                    isinstance(volume_after_id, bool)
                    or not isinstance(volume_after_id, int)
                    or volume_after_id < 0
                ):
                    await self._send_error(
                        "invalid_volume_after_id", "volume_after_id must be a non-negative integer"
                    )
                    return
                await self._send_volume_alerts(after_id=volume_after_id)
                if "after_id" not in message:
                    return
            after_id = message.get("after_id")
            if isinstance(after_id, bool) or not isinstance(after_id, int) or after_id < 0:
                await self._send_error(
                    "invalid_after_id", "after_id must be a non-negative integer"
                )
                return
            await self._send_alerts(after_id=after_id)
        elif action == "ping":
            await self._send_json({"type": "pong"})
        else:
            await self._send_error("unknown_action", "action must be subscribe, catch_up or ping")

    # --- channel layer events -------------------------------------------------------------

    async def oi_alert(self, event: dict) -> None:
        alert = event["alert"]
        if self._wants(alert["symbol"]):
            await self._send_json({"type": "open_interest_alert", "data": alert})

    async def volume_alert(self, event: dict) -> None:
        alert = event["alert"]
        if self._wants(alert["symbol"]):
            await self._send_json({"type": "volume_alert", "data": alert})

    async def oi_update(self, event: dict) -> None:
        rows = [row for row in event["data"] if self._wants(row["symbol"])]
        if rows:
            await self._send_json({"type": "open_interest_update", "data": rows})

    # --- helpers ----------------------------------------------------------------------------

    def _wants(self, symbol: str) -> bool:
        return self.symbols is None or symbol in self.symbols

    async def _subscribe(self, requested: list[str]) -> None:
        malformed = [s for s in requested if symbol_problem(s)]
        wellformed = [s for s in requested if not symbol_problem(s)]
        known = await _known_symbols(wellformed)
        unknown = sorted(set(wellformed) - known)
        if malformed or unknown:
            await self._send_error(
                "unknown_symbols",
                "not liquid symbols of this monitor; not subscribed",
                symbols=sorted(malformed) + unknown,
            )
        if known:
            self.symbols = known
        await self._send_subscribed()

    async def _send_subscribed(self) -> None:
        await self._send_json(
            {"type": "subscribed", "symbols": sorted(self.symbols) if self.symbols else "*"}
        )

    async def _send_alerts(self, *, after_id: int | None) -> None:
        for payload in await _alert_payloads(self.symbols, after_id):
            await self._send_json({"type": "open_interest_alert", "data": payload})

    async def _send_volume_alerts(self, *, after_id: int | None) -> None:
        for payload in await _volume_alert_payloads(self.symbols, after_id):
            await self._send_json({"type": "volume_alert", "data": payload})

    async def _send_error(self, code: str, message: str, **extra: object) -> None:
        await self._send_json({"type": "error", "error": code, "message": message, **extra})

    async def _send_json(self, frame: dict) -> None:
        await self.send(text_data=json.dumps(frame, separators=(",", ":")))


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
