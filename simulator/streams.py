"""Binance's USDⓈ-M market WebSocket streams, served on the simulator's own HTTP port.

An HTTP request asking to upgrade is handed over to a `StreamConnection` (websockets' sans-I/O
protocol driven by the simulator's asyncio transport). Paths as Binance routes them since the
2026 split (shared/binance/WS_FACTS.md §1):

- `/market/stream?streams=a/b` (combined: `{"stream": name, "data": payload}`) and
  `/market/ws/a/b` (raw payloads): the market streams below are delivered;
- unrouted `/ws/...`, `/stream?...`, and `/public/...`, `/private/...`: the handshake succeeds and
  every SUBSCRIBE is ACKed, but no market stream is ever pushed (Binance's silent wrong path).

Streams: `!markPrice@arr@1s` (every second, in two partial frames), `!markPrice@arr` (every 3 s),
`!miniTicker@arr` (every second, changed symbols only), `!forceOrder@arr` (one object per frame,
at most one per symbol per second, `E` ≈ `o.T` + 1 s). Mark prices are the REST premiumIndex
values of the same second; liquidations come with OI dumps (injected and random ones) plus a
background rate. The server pings every `ping_interval_sec` with a ms payload, closes a
connection at `max_connection_sec` (Binance's 24 h, compressible), allows 10 incoming messages
per second (close 1008 "Too many requests") and 1024 streams per connection.

Faults (`/sim/streams/faults`): `silent` (stream names, or "*": connected, no frames),
`refuse` (handshakes answered 503), `max_connection_sec`, `ping_interval_sec`,
`liquidation_rate`; `POST /sim/streams/drop` drops every connection without a close frame.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from websockets.frames import Frame, Opcode
from websockets.http11 import Request
from websockets.protocol import State
from websockets.server import ServerProtocol

from simulator.market import Market, SymbolState, fmt, unit_noise

log = logging.getLogger("simulator.streams")

MARK_PRICE_1S = "!markPrice@arr@1s"
MARK_PRICE_3S = "!markPrice@arr"
MINI_TICKER = "!miniTicker@arr"
FORCE_ORDER = "!forceOrder@arr"
MARKET_STREAMS = (MARK_PRICE_1S, MARK_PRICE_3S, MINI_TICKER, FORCE_ORDER)
ROUTED_PREFIX = "/market"
UNROUTED_PREFIXES = ("/ws", "/stream", "/public", "/private")
MAX_STREAMS = 1024
MAX_INCOMING_PER_SEC = 10
PONG_DEADLINE_SEC = 600.0
DUMP_LIQUIDATION_MIN_MS = 10_000
GRID_DUMP_LOG = math.log(0.95)
LIQUIDATIONS_KEPT = 20_000
STREAM_FAULT_KEYS = frozenset(
    {"silent", "refuse", "max_connection_sec", "ping_interval_sec", "liquidation_rate"}
)


@dataclass
class StreamSettings:
    """The connection rules and faults; `reset()` goes back to the start values."""

    max_connection_sec: float = 86_400.0
    ping_interval_sec: float = 180.0
    liquidation_rate: float = 0.0005
    silent: list[str] = field(default_factory=list)
    refuse: bool = False

    def update(self, values: dict[str, Any]) -> None:
        unknown = set(values) - STREAM_FAULT_KEYS
        if unknown:
            raise ValueError(f"unknown stream settings: {sorted(unknown)}")
        for key, value in values.items():
            if key == "silent":
                if isinstance(value, str):
                    value = [value]
                self.silent = [str(v) for v in (value or [])]
            elif key == "refuse":
                self.refuse = bool(value)
            else:
                number = float(value)
                if number < 0 or (key != "liquidation_rate" and number == 0):
                    raise ValueError(f"{key} must be positive")
                setattr(self, key, number)

    def as_dict(self) -> dict[str, Any]:
        return {
            "silent": self.silent,
            "refuse": self.refuse,
            "max_connection_sec": self.max_connection_sec,
            "ping_interval_sec": self.ping_interval_sec,
            "liquidation_rate": self.liquidation_rate,
        }

    def is_silent(self, stream: str) -> bool:
        return "*" in self.silent or stream in self.silent


@dataclass(frozen=True)
class Route:
    routed: bool
    combined: bool
    streams: tuple[str, ...]


def route_of(path: str, query: str) -> Route | None:
    """How Binance treats a handshake path: routed `/market`, unrouted (silent), or unknown."""
    routed = path == ROUTED_PREFIX or path.startswith(ROUTED_PREFIX + "/")
    rest = path[len(ROUTED_PREFIX) :] if routed else path
    if not routed and not rest.startswith(UNROUTED_PREFIXES):
        return None
    if rest.startswith(("/public", "/private")):
        rest = rest.split("/", 2)[2] if rest.count("/") >= 2 else ""
        rest = "/" + rest
        routed = False
    if rest == "/stream" or rest.startswith("/stream/"):
        names = dict(parse_qsl(query)).get("streams", "")
        return Route(routed, True, tuple(n for n in names.split("/") if n))
    if rest == "/ws" or rest.startswith("/ws/"):
        return Route(routed, False, tuple(n for n in rest[len("/ws") :].split("/") if n))
    return None


class StreamConnection:
    """One WebSocket client: its subscriptions, pings and incoming-message limit."""

    def __init__(self, hub: StreamHub, transport: asyncio.Transport, route: Route) -> None:
        self.hub = hub
        self.transport = transport
        self.route = route
        self.protocol = ServerProtocol(max_size=65_536)
        self.streams: set[str] = set(route.streams)
        self.combined = route.combined
        self.opened_at = time.monotonic()
        self.last_ping_at = self.opened_at
        self.last_pong_at = self.opened_at
        self.window_second = 0
        self.window_count = 0
        self.closed = False

    # --- handshake and I/O
    def handshake(self, path: str, query: str, raw_headers: list[tuple[bytes, bytes]]) -> bool:
        """Replay the parsed request into websockets' protocol, then answer it (101, or 503
        while the `refuse` fault is on)."""
        target = path + ("?" + query if query else "")
        lines = [f"GET {target} HTTP/1.1".encode("latin-1")]
        lines += [name + b": " + value for name, value in raw_headers]
        self.protocol.receive_data(b"\r\n".join(lines) + b"\r\n\r\n")
        events = self.protocol.events_received()
        request = events[0] if events and isinstance(events[0], Request) else None
        if request is None:
            response = self.protocol.reject(400, "Bad Request\n")
        elif self.hub.settings.refuse:
            response = self.protocol.reject(503, "Service Unavailable\n")
        else:
            response = self.protocol.accept(request)
        self.protocol.send_response(response)
        self.flush()
        if response.status_code != 101:
            self.close_transport()
            return False
        return True

    def receive(self, data: bytes) -> None:
        self.protocol.receive_data(data)
        for event in self.protocol.events_received():
            if isinstance(event, Frame):
                self._frame(event)
        self.flush()

    def _frame(self, frame: Frame) -> None:
        if frame.opcode in (Opcode.TEXT, Opcode.PING, Opcode.PONG):
            if frame.opcode == Opcode.PONG:
                self.last_pong_at = time.monotonic()
                self.hub.pongs_received += 1
            if not self._count_incoming():
                return
        if frame.opcode == Opcode.TEXT:
            self._request(frame.data)

    def _count_incoming(self) -> bool:
        second = int(time.monotonic())
        if second != self.window_second:
            self.window_second, self.window_count = second, 0
        self.window_count += 1
        if self.window_count > MAX_INCOMING_PER_SEC:
            self.close(1008, "Too many requests")
            return False
        return True

    def _request(self, raw: bytes) -> None:
        try:
            message = json.loads(raw)
        except ValueError:
            self.send_json({"error": {"code": 3, "msg": "Invalid JSON: expected value"}})
            return
        if not isinstance(message, dict) or "method" not in message:
            self.send_json({"error": {"code": 2, "msg": "Invalid request: missing field 'method'"}})
            return
        request_id = message.get("id")
        method, params = message.get("method"), message.get("params") or []
        if method == "SUBSCRIBE":
            names = [str(p) for p in params]
            if len(self.streams | set(names)) > MAX_STREAMS:
                self.send_json({"error": {"code": 4, "msg": "Too many subscriptions"}})
                self.close(1008, "Invalid request")
                return
            self.streams.update(names)
            self.send_json({"result": None, "id": request_id})
        elif method == "UNSUBSCRIBE":
            self.streams.difference_update(str(p) for p in params)
            self.send_json({"result": None, "id": request_id})
        elif method == "LIST_SUBSCRIPTIONS":
            self.send_json({"result": sorted(self.streams), "id": request_id})
        elif method == "SET_PROPERTY" and params[:1] == ["combined"]:
            self.combined = bool(params[1]) if len(params) > 1 else self.combined
            self.send_json({"result": None, "id": request_id})
        elif method == "GET_PROPERTY" and params[:1] == ["combined"]:
            self.send_json({"result": self.combined, "id": request_id})
        else:
            self.send_json(
                {"error": {"code": 2, "msg": "Invalid request: unknown method"}, "id": request_id}
            )

    def send_json(self, value: Any) -> None:
        self.send_text(json.dumps(value, separators=(",", ":")).encode())

    def send_text(self, payload: bytes) -> None:
        if self.closed or self.protocol.state is not State.OPEN:
            return
        self.protocol.send_text(payload)
        self.flush()

    def flush(self) -> None:
        if self.closed:
            return
        data = self.protocol.data_to_send()
        for chunk in data:
            if chunk:
                self.transport.write(chunk)
            else:  # the protocol asks to half-close: it is done
                self.close_transport()
                return
        if self.protocol.state is State.CLOSED:
            self.close_transport()

    def close(self, code: int, reason: str) -> None:
        if self.closed or self.protocol.state is not State.OPEN:
            return
        self.hub.closes[f"{code} {reason}"] = self.hub.closes.get(f"{code} {reason}", 0) + 1
        self.protocol.send_close(code, reason)
        self.flush()
        asyncio.get_running_loop().call_later(2.0, self.close_transport)

    def close_transport(self) -> None:
        if not self.closed:
            self.closed = True
            self.transport.close()
        self.hub.connections.discard(self)

    def drop(self) -> None:
        """The connection vanishes: no close frame (a network cut, a crashed server)."""
        self.closed = True
        self.transport.abort()
        self.hub.connections.discard(self)

    # --- timers, from the hub's tick
    def tick(self, now: float) -> None:
        if now - self.opened_at >= self.hub.settings.max_connection_sec:
            self.close(1001, "connection lifetime reached")
            return
        if now - self.last_ping_at >= self.hub.settings.ping_interval_sec:
            self.last_ping_at = now
            if self.protocol.state is State.OPEN:
                self.protocol.send_ping(str(time.time_ns() // 1_000_000).encode())
                self.flush()
        if now - self.last_pong_at > PONG_DEADLINE_SEC:
            self.close(1008, "Pong timeout")

    def wants(self, stream: str) -> bool:
        return self.route.routed and stream in self.streams


@dataclass
class LiquidationRecord:
    symbol: str
    side: str
    price: str
    average_price: str
    quantity: str
    trade_time: int


class StreamHub:
    """Every stream connection and the once-a-second emitter."""

    def __init__(self, market: Market, settings: StreamSettings) -> None:
        self.market = market
        self.start_settings = StreamSettings(**settings.as_dict())
        self.settings = settings
        self.connections: set[StreamConnection] = set()
        self.reset_stats()
        self._last_tickers: dict[str, tuple[str, ...]] = {}

    def reset_stats(self) -> None:
        self.connection_attempts = 0
        self.handshakes_refused = 0
        self.pongs_received = 0
        self.frames_sent: dict[str, int] = {}
        self.closes: dict[str, int] = {}
        self.liquidations: deque[LiquidationRecord] = deque(maxlen=LIQUIDATIONS_KEPT)

    def reset(self) -> None:
        self.settings = StreamSettings(**self.start_settings.as_dict())
        self.reset_stats()

    def accept(
        self,
        transport: asyncio.Transport,
        path: str,
        query: str,
        headers: list[tuple[bytes, bytes]],
    ) -> StreamConnection | None:
        """Take over an upgraded HTTP connection; None when the handshake was refused."""
        self.connection_attempts += 1
        route = route_of(path, query)
        if route is None:
            transport.write(
                b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            )
            transport.close()
            return None
        connection = StreamConnection(self, transport, route)
        if not connection.handshake(path, query, headers):
            self.handshakes_refused += 1
            return None
        self.connections.add(connection)
        return connection

    def drop_all(self) -> int:
        dropped = list(self.connections)
        for connection in dropped:
            connection.drop()
        return len(dropped)

    def stats(self) -> dict[str, Any]:
        return {
            "connections": len(self.connections),
            "connection_attempts": self.connection_attempts,
            "handshakes_refused": self.handshakes_refused,
            "pongs_received": self.pongs_received,
            "frames_sent": dict(self.frames_sent),
            "closes": dict(self.closes),
            "liquidations_sent": len(self.liquidations),
            "settings": self.settings.as_dict(),
        }

    def liquidations_payload(self) -> list[dict[str, Any]]:
        return [vars(record) for record in self.liquidations]

    # --- the emitter
    async def run(self) -> None:
        while True:
            now = time.time()
            await asyncio.sleep(1.0 - now % 1.0 + 0.001)
            try:
                self.tick(int(time.time()) * 1000)
            except Exception:
                log.exception("stream tick failed")

    def tick(self, second_ms: int) -> None:
        now = time.monotonic()
        for connection in list(self.connections):
            connection.tick(now)
        wanted = {s for c in self.connections for s in c.streams if c.route.routed}
        if MARK_PRICE_1S in wanted or (MARK_PRICE_3S in wanted and second_ms % 3000 == 0):
            rows = self.mark_price_rows(second_ms)
            half = (len(rows) + 1) // 2
            for chunk in (rows[:half], rows[half:]):
                if MARK_PRICE_1S in wanted:
                    self.publish(MARK_PRICE_1S, chunk)
                if MARK_PRICE_3S in wanted and second_ms % 3000 == 0:
                    self.publish(MARK_PRICE_3S, chunk)
        if MINI_TICKER in wanted:
            rows = self.mini_ticker_rows(second_ms)
            if rows:
                self.publish(MINI_TICKER, rows)
        # Liquidations happen whether anyone listens or not (the record is the test's truth).
        for payload in self.force_orders(second_ms):
            if FORCE_ORDER in wanted:
                self.publish(FORCE_ORDER, payload)

    def publish(self, stream: str, data: Any) -> None:
        raw = json.dumps(data, separators=(",", ":"))
        combined = None
        silent = self.settings.is_silent(stream)
        for connection in list(self.connections):
            if not connection.wants(stream) or silent:
                continue
            if connection.combined:
                if combined is None:
                    combined = f'{{"stream":"{stream}","data":{raw}}}'.encode()
                connection.send_text(combined)
            else:
                connection.send_text(raw.encode())
            self.frames_sent[stream] = self.frames_sent.get(stream, 0) + 1

    def mark_price_rows(self, second_ms: int) -> list[dict[str, Any]]:
        rows = []
        event_ms = second_ms + (second_ms // 1000) % 2  # on, or 1 ms after, the second
        for state in self.market.listed():
            index = self.market.premium_index_payload(state, second_ms)
            rows.append(
                {
                    "e": "markPriceUpdate",
                    "E": event_ms,
                    "s": state.name,
                    "p": index["markPrice"],
                    "ap": index["markPrice"],
                    "P": index["estimatedSettlePrice"],
                    "i": index["indexPrice"],
                    "r": index["lastFundingRate"],
                    "T": index["nextFundingTime"],
                    "st": 1,
                }
            )
        return rows

    def mini_ticker_rows(self, second_ms: int) -> list[dict[str, Any]]:
        rows = []
        for state in self.market.listed():
            if state.status != "TRADING":
                continue  # nothing trades, nothing changes: never in a changed-only frame
            ticker = self.market.ticker_payload(state, second_ms)
            values = (
                ticker["lastPrice"],
                ticker["openPrice"],
                ticker["highPrice"],
                ticker["lowPrice"],
                ticker["volume"],
                ticker["quoteVolume"],
            )
            if self._last_tickers.get(state.name) == values:
                continue  # Binance sends changed symbols only
            self._last_tickers[state.name] = values
            close, open_, high, low, volume, quote_volume = values
            rows.append(
                {
                    "e": "24hrMiniTicker",
                    "E": second_ms,
                    "s": state.name,
                    "c": close,
                    "o": open_,
                    "h": high,
                    "l": low,
                    "v": volume,
                    "q": quote_volume,
                    "ps": state.info.get("pair", state.name),
                    "st": 1,
                }
            )
        return rows

    def _dump_share(self, state: SymbolState, t_ms: int) -> float:
        """The share of seconds with a long liquidation: every second of an injected dump (and
        DUMP_LIQUIDATION_MIN_MS after it starts), 40% of those of a random dump in the OI walk."""
        for event in state.events:
            if event.kind == "dump" and (
                event.at_ms <= t_ms < event.at_ms + max(event.duration_ms, DUMP_LIQUIDATION_MIN_MS)
            ):
                return 1.0
        if state.replay is not None or state.frozen_at is not None:
            return 0.0
        step, _, _ = self.market._grid_position(state, t_ms)
        grid = state.oi_grid
        return 0.4 if grid[step + 1] - grid[step] < GRID_DUMP_LOG else 0.0

    def force_orders(self, second_ms: int) -> list[dict[str, Any]]:
        """At most one liquidation per symbol this second: longs during OI dumps, either side at
        the background rate."""
        payloads = []
        trade_ms = second_ms - 1000
        second = second_ms // 1000
        for state in self.market.listed():
            if state.status != "TRADING" or state.info["quoteAsset"] == "BTC":
                continue
            draw = (unit_noise(state.key ^ 0xF0, second) + 1) / 2
            if draw < self._dump_share(state, trade_ms):
                side = "SELL"
            elif draw < self.settings.liquidation_rate:
                side = "SELL" if unit_noise(state.key ^ 0xF1, second) < 0 else "BUY"
            else:
                continue
            mark = self.market.mark_price(state, trade_ms)
            slip = 0.003 if side == "SELL" else -0.003
            notional = 200.0 * math.exp(4.0 * (unit_noise(state.key ^ 0xF2, second) + 1) / 2)
            qp, pp = state.quantity_precision, state.price_precision
            quantity = max(10.0**-qp, round(notional / mark, qp))
            filled_last = max(10.0**-qp, round(quantity * 0.3, qp))
            offset = trade_ms + 400 + (second % 500)
            order = {
                "s": state.name,
                "S": side,
                "o": "LIMIT",
                "f": "IOC",
                "q": fmt(quantity, qp),
                "p": fmt(mark * (1 - slip), pp),
                "ap": fmt(mark * (1 - slip / 2), pp),
                "X": "FILLED",
                "l": fmt(filled_last, qp),
                "z": fmt(quantity, qp),
                "T": offset,
            }
            payloads.append({"e": "forceOrder", "E": offset + 1008, "o": order})
            self.liquidations.append(
                LiquidationRecord(state.name, side, order["p"], order["ap"], order["z"], order["T"])
            )
        return payloads
