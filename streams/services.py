"""Writes of the market-stream stores: Redis (latest values, one pipeline per frame batch) and
Postgres (liquidations, batched inserts; retention)."""

import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from enum import StrEnum

from django.conf import settings
from django.utils import timezone

from common.locks import redis_lease
from common.redis import get_redis
from common.retention import rows_delete_in_batches
from common.timeutil import datetime_from_ms
from exchange.streams import Liquidation as LiquidationValue
from exchange.streams import MarkPriceUpdate, MiniTicker, Outage, StreamCounters
from streams.keys import (
    FRAMES_KEY,
    FUNDING_RATE_KEY,
    INDEX_PRICE_KEY,
    LAST_FRAME_KEY,
    MARK_PRICE_KEY,
    MARK_PRICE_SOURCE_KEY,
    MARK_PRICE_TIME_KEY,
    NEXT_FUNDING_TIME_KEY,
    OUTAGES_KEPT,
    OUTAGES_KEY,
    QUOTE_VOLUME_KEY,
    QUOTE_VOLUME_TIME_KEY,
    STATUS_KEY,
)
from streams.models import Liquidation

logger = logging.getLogger(__name__)

MAX_PRICE = Decimal("1e12")
PRUNE_LEASE_KEY = "lock:streams:liquidations_prune"


class MarkPriceSource(StrEnum):
    STREAM = "stream"
    REST = "rest"


def _price_ok(update: MarkPriceUpdate) -> bool:
    if 0 < update.mark_price < MAX_PRICE:
        return True
    logger.warning(
        "mark price dropped", extra={"symbol": update.symbol, "cause": "not in (0, 1e12)"}
    )
    return False


def _mark_prices_queue(
    pipe, updates: Iterable[MarkPriceUpdate], source: MarkPriceSource
) -> int | None:
    """Queue the mark-price writes on `pipe`; the newest event time, None when nothing."""
    updates = [update for update in updates if _price_ok(update)]
    if not updates:
        return None
    pipe.hset(MARK_PRICE_KEY, mapping={u.symbol: str(u.mark_price) for u in updates})
    pipe.hset(INDEX_PRICE_KEY, mapping={u.symbol: str(u.index_price) for u in updates})
    funding = {u.symbol: str(u.funding_rate) for u in updates if u.funding_rate is not None}
    if funding:
        pipe.hset(FUNDING_RATE_KEY, mapping=funding)
    next_funding = {
        u.symbol: u.next_funding_time_ms for u in updates if u.next_funding_time_ms is not None
    }
    if next_funding:
        pipe.hset(NEXT_FUNDING_TIME_KEY, mapping=next_funding)
    newest = max(u.event_time_ms for u in updates)
    pipe.set(MARK_PRICE_TIME_KEY, newest)
    pipe.set(MARK_PRICE_SOURCE_KEY, source)
    return newest


def mark_prices_store(updates: Iterable[MarkPriceUpdate], *, source: MarkPriceSource) -> None:
    """Mark price, index price, funding rate and next funding time of each symbol (the poller's
    REST fallback comes through here too: one store, one owner)."""
    redis = get_redis()
    with redis.pipeline(transaction=True) as pipe:
        if _mark_prices_queue(pipe, updates, source) is not None:
            pipe.execute()


@dataclass
class FrameBatch:
    """What the streams process received since its last write, merged per symbol."""

    mark_prices: dict[str, MarkPriceUpdate] = field(default_factory=dict)
    tickers: dict[str, MiniTicker] = field(default_factory=dict)
    last_frame_ms: dict[str, int] = field(default_factory=dict)
    frames: dict[str, int] = field(default_factory=dict)


def stream_batch_store(
    batch: FrameBatch, counters: StreamCounters, *, run_since_ms: int | None, dropped: int = 0
) -> None:
    """One Redis pipeline for a batch of frames: latest values, frame times and counters."""
    now = int(time.time() * 1000)
    redis = get_redis()
    with redis.pipeline(transaction=False) as pipe:
        _mark_prices_queue(pipe, batch.mark_prices.values(), MarkPriceSource.STREAM)
        if batch.tickers:
            pipe.hset(
                QUOTE_VOLUME_KEY,
                mapping={s: str(t.quote_volume) for s, t in batch.tickers.items()},
            )
            pipe.set(QUOTE_VOLUME_TIME_KEY, max(t.event_time_ms for t in batch.tickers.values()))
        if batch.last_frame_ms:
            pipe.hset(LAST_FRAME_KEY, mapping=batch.last_frame_ms)
        for stream, count in batch.frames.items():
            pipe.hincrby(FRAMES_KEY, stream, count)
        pipe.hset(
            STATUS_KEY,
            mapping={
                "connects": counters.connects,
                "connection_attempts": counters.connection_attempts,
                "messages": counters.messages,
                "bad_frames": counters.bad_frames,
                "bad_rows": counters.bad_rows,
                "dropped_frames": dropped,
                "run_since_ms": run_since_ms or "",
                "updated_ms": now,
            },
        )
        pipe.execute()


def stream_outage_record(outage: Outage) -> None:
    """Keep what the stores missed after a reconnect (the newest OUTAGES_KEPT)."""
    redis = get_redis()
    member = f"{outage.started_ms}:{outage.ended_ms}:{outage.cause[:120]}"
    with redis.pipeline(transaction=False) as pipe:
        pipe.zadd(OUTAGES_KEY, {member: outage.ended_ms})
        pipe.zremrangebyrank(OUTAGES_KEY, 0, -OUTAGES_KEPT - 1)
        pipe.execute()
    logger.warning(
        "market stream outage",
        extra={"channel": "market", "cause": outage.cause, "seconds": outage.seconds},
    )


def liquidations_store(values: list[LiquidationValue]) -> int:
    """One INSERT for a batch of liquidations; returns the rows stored."""
    if not values:
        return 0
    received_at = timezone.now()
    Liquidation.objects.bulk_create(
        [
            Liquidation(
                symbol=value.symbol,
                side=value.side.value,
                price=value.average_price or value.price,
                quantity=value.quantity,
                usd=value.usd,
                time=datetime_from_ms(value.trade_time_ms),
                received_at=received_at,
            )
            for value in values
        ],
        batch_size=1000,
    )
    return len(values)


_DELETE_BATCH_SQL = """
DELETE FROM stream_liquidations
WHERE id IN (SELECT id FROM stream_liquidations WHERE time < %s LIMIT %s)
"""


def liquidations_prune(*, batch_size: int = 10_000, time_budget_sec: float = 120.0) -> int | None:
    """Delete liquidations older than STREAMS_LIQUIDATION_RETENTION_DAYS, in short batches (as
    oi.retention); None when another run holds the lease."""
    cutoff = timezone.now() - timedelta(days=settings.STREAMS_LIQUIDATION_RETENTION_DAYS)
    with redis_lease(get_redis(), PRUNE_LEASE_KEY, ttl_sec=time_budget_sec + 60) as held:
        if not held:
            return None
        deleted, _finished = rows_delete_in_batches(
            _DELETE_BATCH_SQL, cutoff, batch_size=batch_size, time_budget_sec=time_budget_sec
        )
    logger.info("liquidation retention", extra={"deleted": deleted, "cutoff": cutoff.isoformat()})
    return deleted
