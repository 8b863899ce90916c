"""The `streams` process: the market stream client on its own thread (asyncio), the stores on
this one. Frames cross over a bounded queue; each drain of the queue is one Redis pipeline
(latest value per symbol), liquidations go to Postgres every STREAMS_LIQUIDATION_FLUSH_SEC on
one connection kept open (replaced after an error), whatever CONN_MAX_AGE says: this is not a
request-serving process. Each stored batch of liquidations then goes to the sinks named in
STREAMS_LIQUIDATION_SINKS (the liquidation-burst rules, alerts.liquidation_evaluation), each a
callable taking the batch, which handles and logs its own failures."""

import asyncio
import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache

from django.conf import settings
from django.db import DatabaseError, connections
from django.utils.module_loading import import_string
from redis.exceptions import RedisError

from exchange.streams import (
    Liquidation,
    MarketStreamClient,
    MarkPriceUpdate,
    MiniTicker,
    Outage,
    StreamClientSettings,
    StreamValue,
)
from streams.services import (
    FrameBatch,
    liquidations_store,
    stream_batch_store,
    stream_outage_record,
)

logger = logging.getLogger(__name__)

QUEUE_MAX = 20_000
STATUS_EVERY_SEC = 1.0


@cache
def liquidation_sinks() -> tuple[Callable[[list[Liquidation]], None], ...]:
    return tuple(import_string(path) for path in settings.STREAMS_LIQUIDATION_SINKS)


def client_settings() -> StreamClientSettings:
    return StreamClientSettings(
        base_url=settings.STREAMS_BASE_URL,
        path=settings.STREAMS_PATH,
        backoff_base_sec=settings.STREAMS_RECONNECT_BASE_SEC,
        backoff_max_sec=settings.STREAMS_RECONNECT_MAX_SEC,
        max_connection_sec=settings.STREAMS_MAX_CONNECTION_SEC,
        silence_reconnect_sec=settings.STREAMS_SILENCE_RECONNECT_SEC,
    )


@dataclass
class _Frame:
    stream: str
    values: list[StreamValue]
    received_ms: int


class StreamsProcess:
    def __init__(self, client_config: StreamClientSettings | None = None) -> None:
        self.frames: queue.Queue = queue.Queue(maxsize=QUEUE_MAX)
        self.client = MarketStreamClient(
            client_config or client_settings(), self._on_frame, self._on_outage
        )
        self.dropped = 0
        self.run_since_ms: int | None = None
        self.pending_liquidations: list[Liquidation] = []
        self.last_liquidation_flush = time.monotonic()

    # --- the client's thread
    def _on_frame(self, stream: str, values: list[StreamValue], received_ms: int) -> None:
        try:
            self.frames.put_nowait(_Frame(stream, values, received_ms))
        except queue.Full:
            self.dropped += 1

    def _on_outage(self, outage: Outage) -> None:
        try:
            self.frames.put_nowait(outage)
        except queue.Full:
            self.dropped += 1

    def _client_thread(self, stop: threading.Event) -> None:
        async def main() -> None:
            async_stop = asyncio.Event()

            async def watch() -> None:
                while not stop.is_set():
                    await asyncio.sleep(0.2)
                async_stop.set()

            watcher = asyncio.create_task(watch())
            await self.client.run(async_stop)
            watcher.cancel()

        asyncio.run(main())

    # --- this thread
    def run(self, stop: threading.Event) -> None:
        thread = threading.Thread(
            target=self._client_thread, args=(stop,), name="market-streams", daemon=True
        )
        thread.start()
        logger.info(
            "market streams starting",
            extra={"channel": self.client.settings.url()},
        )
        try:
            while not stop.is_set():
                self._drain_once(timeout=STATUS_EVERY_SEC)
        finally:
            # Stop the client first, then store everything it had received: a frame read from
            # the socket is never dropped on a graceful stop.
            thread.join(timeout=5)
            while not self.frames.empty():
                self._drain_once(timeout=0)
            self._flush_liquidations(force=True)
            connections.close_all()

    def _drain_once(self, timeout: float) -> None:
        items = []
        try:
            items.append(self.frames.get(timeout=timeout))
            while len(items) < 5000:
                items.append(self.frames.get_nowait())
        except queue.Empty:
            pass
        batch = FrameBatch()
        for item in items:
            if isinstance(item, Outage):
                self.run_since_ms = None
                stream_outage_record(item)
                continue
            if self.run_since_ms is None:
                self.run_since_ms = item.received_ms
            batch.last_frame_ms[item.stream] = item.received_ms
            batch.frames[item.stream] = batch.frames.get(item.stream, 0) + 1
            for value in item.values:
                if isinstance(value, MarkPriceUpdate):
                    batch.mark_prices[value.symbol] = value
                elif isinstance(value, MiniTicker):
                    batch.tickers[value.symbol] = value
                elif isinstance(value, Liquidation):
                    self.pending_liquidations.append(value)
        try:
            stream_batch_store(
                batch, self.client.counters, run_since_ms=self.run_since_ms, dropped=self.dropped
            )
        except RedisError as exc:
            # Redis away: these values are lost (newer ones follow each second); the watchdog
            # reads the frame times from Redis, so readers see the stream as stale meanwhile.
            logger.warning(
                "stream values not stored", extra={"cause": f"{type(exc).__name__}: {exc}"[:200]}
            )
        self._flush_liquidations()

    def _flush_liquidations(self, force: bool = False) -> None:
        due = (
            time.monotonic() - self.last_liquidation_flush >= settings.STREAMS_LIQUIDATION_FLUSH_SEC
        )
        if not self.pending_liquidations or not (due or force):
            return
        rows, self.pending_liquidations = self.pending_liquidations, []
        try:
            liquidations_store(rows)
            stored = True
        except DatabaseError as exc:
            stored = False
            # Postgres away: keep the rows for the next flush (bounded), never lose the stream.
            logger.warning(
                "liquidations not stored; retrying",
                extra={"rows": len(rows), "cause": f"{type(exc).__name__}: {exc}"[:200]},
            )
            self.pending_liquidations = (rows + self.pending_liquidations)[-QUEUE_MAX:]
            connections.close_all()  # a fresh connection next time (this one may be broken)
        self.last_liquidation_flush = time.monotonic()
        if stored:
            for sink in liquidation_sinks():
                sink(rows)
