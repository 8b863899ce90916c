"""Binance's USDⓈ-M market WebSocket streams: one combined connection, parsed to typed values.

No Django: the `streams` process (streams/runner.py) drives it. Facts it follows
(shared/binance/WS_FACTS.md): every stream here lives on the `/market` path (a wrong path
connects, ACKs and then sends nothing, so liveness is judged by frames, never by the handshake);
the server pings every 3 min (websockets answers each ping with its payload); a connection lives
24 h at most, so the client reconnects on its own before (`max_connection_sec`); reconnects wait
a jittered exponential backoff, reset only once a connection has delivered a frame (a server
that accepts and drops at once cannot cause a storm); frames are merged per symbol by the
caller (array streams carry changed or partial sets); `T` of a mark price is the next funding
time, `E` the event time; liquidation sums are lower bounds (one per symbol per second).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Any

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

logger = logging.getLogger(__name__)

DEFAULT_BASE_URL = "wss://fstream.binance.com"
DEFAULT_PATH = "/market"


class MarketStream(StrEnum):
    MARK_PRICE = "!markPrice@arr@1s"
    MINI_TICKER = "!miniTicker@arr"
    LIQUIDATIONS = "!forceOrder@arr"


class LiquidationSide(StrEnum):
    """The side of the liquidation *order*: a SELL closes a long, a BUY closes a short."""

    BUY = "BUY"
    SELL = "SELL"


class FrameError(ValueError):
    """A frame that is not what Binance documents (kept out of the stores, counted, logged)."""


@dataclass(frozen=True, slots=True)
class MarkPriceUpdate:
    symbol: str
    mark_price: Decimal
    index_price: Decimal
    estimated_settle_price: Decimal
    funding_rate: Decimal | None
    """None when no funding applies (`""` on delivery contracts)."""
    next_funding_time_ms: int | None
    """`T`: the next funding time (0 on the wire when none is scheduled)."""
    event_time_ms: int


@dataclass(frozen=True, slots=True)
class MiniTicker:
    symbol: str
    close: Decimal
    open: Decimal
    high: Decimal
    low: Decimal
    base_volume: Decimal
    quote_volume: Decimal
    """24 h rolling quote volume (USDT for USDT-quoted symbols)."""
    event_time_ms: int


@dataclass(frozen=True, slots=True)
class Liquidation:
    symbol: str
    side: LiquidationSide
    price: Decimal
    average_price: Decimal
    quantity: Decimal
    """`z`: the accumulated filled quantity (the order's whole fill; `l` is its last fill)."""
    trade_time_ms: int
    event_time_ms: int

    @property
    def usd(self) -> Decimal:
        """Filled quantity × average fill price (the order's price when no average is given)."""
        return self.quantity * (self.average_price or self.price)


StreamValue = MarkPriceUpdate | MiniTicker | Liquidation


def _decimal(data: dict, key: str) -> Decimal:
    raw = data.get(key)
    if not isinstance(raw, str):
        raise FrameError(f"field {key!r}: expected a decimal string, got {type(raw).__name__}")
    try:
        value = Decimal(raw)
    except InvalidOperation as exc:
        raise FrameError(f"field {key!r}: not a decimal: {raw[:40]!r}") from exc
    if not value.is_finite():
        raise FrameError(f"field {key!r}: not finite")
    return value


def _int(data: dict, key: str) -> int:
    raw = data.get(key)
    if not isinstance(raw, int) or isinstance(raw, bool):
        raise FrameError(f"field {key!r}: expected an integer, got {type(raw).__name__}")
    return raw


def _symbol(data: dict, key: str = "s") -> str:
    raw = data.get(key)
    if not isinstance(raw, str) or not raw or len(raw) > 50:
        raise FrameError(f"field {key!r}: expected a symbol")
    return raw


def mark_price_from(data: dict) -> MarkPriceUpdate:
    funding = data.get("r")
    next_funding = _int(data, "T")
    return MarkPriceUpdate(
        symbol=_symbol(data),
        mark_price=_decimal(data, "p"),
        index_price=_decimal(data, "i"),
        estimated_settle_price=_decimal(data, "P"),
        funding_rate=None if funding in ("", None) else _decimal(data, "r"),
        next_funding_time_ms=next_funding or None,
        event_time_ms=_int(data, "E"),
    )


def mini_ticker_from(data: dict) -> MiniTicker:
    return MiniTicker(
        symbol=_symbol(data),
        close=_decimal(data, "c"),
        open=_decimal(data, "o"),
        high=_decimal(data, "h"),
        low=_decimal(data, "l"),
        base_volume=_decimal(data, "v"),
        quote_volume=_decimal(data, "q"),
        event_time_ms=_int(data, "E"),
    )


def liquidation_from(data: dict) -> Liquidation:
    order = data.get("o")
    if not isinstance(order, dict):
        raise FrameError("field 'o': expected the order object")
    side = order.get("S")
    if side not in LiquidationSide.__members__.values():
        raise FrameError(f"field 'o.S': unknown side {str(side)[:10]!r}")
    return Liquidation(
        symbol=_symbol(order),
        side=LiquidationSide(side),
        price=_decimal(order, "p"),
        average_price=_decimal(order, "ap"),
        quantity=_decimal(order, "z"),
        trade_time_ms=_int(order, "T"),
        event_time_ms=_int(data, "E"),
    )


_PARSERS: dict[str, Callable[[dict], StreamValue]] = {
    "markPriceUpdate": mark_price_from,
    "24hrMiniTicker": mini_ticker_from,
    "forceOrder": liquidation_from,
}


def frame_values(data: Any, errors: list[str] | None = None) -> list[StreamValue]:
    """One frame's payload (an array, or one object as `!forceOrder@arr` sends) as typed values.
    Rows of an unknown event type are skipped. A malformed row raises FrameError, or, when an
    `errors` list is given, is left out and its cause (with the symbol) appended to it, so one
    odd row never costs the other symbols of the frame."""
    rows = data if isinstance(data, list) else [data]
    values: list[StreamValue] = []
    for row in rows:
        try:
            if not isinstance(row, dict):
                raise FrameError(f"expected an object, got {type(row).__name__}")
            parser = _PARSERS.get(row.get("e"))  # type: ignore[arg-type]
            if parser is not None:
                values.append(parser(row))
        except FrameError as exc:
            if errors is None:
                raise
            symbol = row.get("s") if isinstance(row, dict) else None
            errors.append(f"{symbol}: {exc}")
    return values


@dataclass(frozen=True)
class Outage:
    """A stretch without frames: from the last frame before the connection ended to the first
    frame after a new one delivered (what the stores missed)."""

    started_ms: int
    ended_ms: int
    cause: str

    @property
    def seconds(self) -> float:
        return (self.ended_ms - self.started_ms) / 1000


@dataclass
class StreamCounters:
    connects: int = 0
    connection_attempts: int = 0
    messages: int = 0
    bad_frames: int = 0
    bad_rows: int = 0
    frames: dict[str, int] = field(default_factory=dict)
    outages: list[Outage] = field(default_factory=list)


def backoff_delay(attempt: int, *, base_sec: float, max_sec: float, rng: random.Random) -> float:
    """Full-jitter exponential backoff: uniform in [0.5, 1] × min(max, base × 2^attempt)."""
    ceiling = min(max_sec, base_sec * 2 ** min(attempt, 30))
    return ceiling * (0.5 + 0.5 * rng.random())


@dataclass
class StreamClientSettings:
    base_url: str = DEFAULT_BASE_URL
    path: str = DEFAULT_PATH
    streams: Sequence[str] = tuple(MarketStream)
    backoff_base_sec: float = 1.0
    backoff_max_sec: float = 60.0
    max_connection_sec: float = 23 * 3600.0
    """Reconnect before Binance's 24 h close (its own SDK does at 23 h)."""
    silence_reconnect_sec: float = 30.0
    """No message at all for this long: the connection is presumed dead and replaced."""
    open_timeout_sec: float = 10.0

    def url(self) -> str:
        return f"{self.base_url.rstrip('/')}{self.path.rstrip('/')}/stream?streams=" + "/".join(
            self.streams
        )


FrameHandler = Callable[[str, list[StreamValue], int], None]
"""(stream name, the frame's values, local receive time in ms)."""
OutageHandler = Callable[[Outage], None]


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


class MarketStreamClient:
    """Holds one combined-stream connection until `stop` is set; calls `on_frame` per frame."""

    def __init__(
        self,
        settings: StreamClientSettings,
        on_frame: FrameHandler,
        on_outage: OutageHandler | None = None,
        *,
        rng: random.Random | None = None,
    ) -> None:
        self.settings = settings
        self.on_frame = on_frame
        self.on_outage = on_outage
        self.rng = rng or random.Random()
        self.counters = StreamCounters()
        self.last_frame_ms: int | None = None
        self._outage_started_ms: int | None = None
        self._outage_cause = ""

    async def run(self, stop: asyncio.Event) -> None:
        attempt = 0
        while not stop.is_set():
            self.counters.connection_attempts += 1
            delivered, cause = await self._connection(stop)
            if stop.is_set():
                return
            if self._outage_started_ms is None:
                self._outage_started_ms = self.last_frame_ms or _now_ms()
                self._outage_cause = cause
            if cause == "lifetime":
                attempt = 0
                continue  # a planned rotation: reconnect at once
            attempt = 0 if delivered else attempt + 1
            delay = backoff_delay(
                attempt,
                base_sec=self.settings.backoff_base_sec,
                max_sec=self.settings.backoff_max_sec,
                rng=self.rng,
            )
            logger.warning(
                "market stream disconnected; reconnecting",
                extra={"channel": self.settings.path, "cause": cause, "delay_sec": round(delay, 2)},
            )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), delay)

    async def _connection(self, stop: asyncio.Event) -> tuple[bool, str]:
        """One connection's life: (did it deliver a frame, why it ended)."""
        settings = self.settings
        delivered = False
        try:
            async with connect(
                settings.url(),
                open_timeout=settings.open_timeout_sec,
                close_timeout=2,
                ping_interval=None,  # the server pings; a silent socket is caught by frames
                max_size=16 * 1024 * 1024,
                compression=None,
            ) as websocket:
                self.counters.connects += 1
                opened = time.monotonic()
                while not stop.is_set():
                    left = settings.max_connection_sec - (time.monotonic() - opened)
                    if left <= 0:
                        return delivered, "lifetime"
                    timeout = min(left, 1.0)  # wake each second to see `stop`
                    try:
                        raw = await asyncio.wait_for(websocket.recv(), timeout)
                    except TimeoutError:
                        quiet_ms = _now_ms() - (self.last_frame_ms or 0)
                        if delivered and quiet_ms > settings.silence_reconnect_sec * 1000:
                            return delivered, "silent"
                        if not delivered and time.monotonic() - opened > (
                            settings.silence_reconnect_sec
                        ):
                            return delivered, "silent"
                        continue
                    if self._message(raw):
                        delivered = True
                return delivered, "stopped"
        except ConnectionClosed as exc:
            rcvd = exc.rcvd
            return delivered, f"closed {rcvd.code} {rcvd.reason}" if rcvd else "dropped"
        except (OSError, TimeoutError, InvalidHandshake, InvalidURI) as exc:
            return delivered, f"{type(exc).__name__}: {exc}"[:200]

    def _message(self, raw: str | bytes) -> bool:
        """Handle one message; True when it was a data frame."""
        received_ms = _now_ms()
        self.counters.messages += 1
        message: Any = None
        errors: list[str] = []
        try:
            message = json.loads(raw)
            stream = message["stream"]
            values = frame_values(message["data"], errors)
        except (ValueError, KeyError, TypeError) as exc:
            if isinstance(message, dict) and "result" in message:
                return False  # a control answer (SUBSCRIBE ACK)
            self.counters.bad_frames += 1
            logger.warning(
                "market stream frame dropped",
                extra={"channel": self.settings.path, "cause": str(exc)[:200]},
            )
            return False
        self.counters.frames[stream] = self.counters.frames.get(stream, 0) + 1
        if errors:
            self.counters.bad_rows += len(errors)
            logger.warning(
                "market stream rows dropped",
                extra={"channel": stream, "rows": len(errors), "cause": errors[0][:200]},
            )
        if self._outage_started_ms is not None:
            outage = Outage(self._outage_started_ms, received_ms, self._outage_cause)
            self.counters.outages.append(outage)
            del self.counters.outages[:-100]
            self._outage_started_ms = None
            if self.on_outage is not None:
                self.on_outage(outage)
        self.last_frame_ms = received_ms
        self.on_frame(stream, values, received_ms)
        return True
