"""Reads of the market-stream stores: freshness (the watchdog's view), latest values, outages
and liquidation sums."""

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.db import connection
from django.db.models import Count, Q, Sum

from common import timeutil
from common.redis import get_redis
from exchange.streams import LiquidationSide, MarketStream
from streams.keys import (
    FRAMES_KEY,
    LAST_FRAME_KEY,
    MARK_PRICE_KEY,
    MARK_PRICE_SOURCE_KEY,
    OUTAGES_KEY,
    QUOTE_VOLUME_KEY,
    STATUS_KEY,
)
from streams.models import Liquidation
from streams.watchdog import StreamHealth, StreamState, stream_health


def streams_health(*, now_ms: int | None = None) -> dict[MarketStream, StreamHealth]:
    raw = get_redis().hgetall(LAST_FRAME_KEY)
    return stream_health(
        {stream: int(ms) for stream, ms in raw.items()},
        now_ms=now_ms if now_ms is not None else timeutil.now_ms(),
        stale_factor=settings.STREAMS_STALE_FACTOR,
        enabled=settings.STREAMS_ENABLED,
    )


def mark_price_stream_fresh() -> bool:
    """True while the poller may take mark prices and funding from the stream."""
    return streams_health()[MarketStream.MARK_PRICE].fresh


def mark_price_source() -> str | None:
    return get_redis().get(MARK_PRICE_SOURCE_KEY)


def mark_prices_of(symbols: list[str]) -> dict[str, Decimal]:
    """The latest mark price of each of ``symbols`` that has one (stream or REST fallback)."""
    if not symbols:
        return {}
    raw = get_redis().hmget(MARK_PRICE_KEY, symbols)
    return {symbol: Decimal(price) for symbol, price in zip(symbols, raw, strict=True) if price}


def quote_volumes_from_stream() -> dict[str, Decimal] | None:
    """Every symbol's 24 h quote volume from the mini tickers, or None when the stream cannot be
    trusted for it: stale, or not yet running unbroken for STREAMS_TICKER_WARMUP_SEC (the
    stream sends changed symbols only, so a fresh start has not seen every symbol yet)."""
    health = streams_health()[MarketStream.MINI_TICKER]
    if not health.fresh:
        return None
    redis = get_redis()
    run_since = redis.hget(STATUS_KEY, "run_since_ms")
    if not run_since:
        return None
    if timeutil.now_ms() - int(run_since) < settings.STREAMS_TICKER_WARMUP_SEC * 1000:
        return None
    volumes = redis.hgetall(QUOTE_VOLUME_KEY)
    return {symbol: Decimal(volume) for symbol, volume in volumes.items()} or None


STATUS_COUNTERS = (
    "connects", "connection_attempts", "messages", "bad_frames", "bad_rows", "dropped_frames",
)  # fmt: skip


@dataclass(frozen=True)
class StreamOutage:
    started_ms: int
    ended_ms: int
    cause: str


@dataclass(frozen=True)
class StreamsStatus:
    health: dict[MarketStream, StreamHealth]
    frames: dict[str, int]
    counters: dict[str, int]
    mark_price_source: str | None
    outages: list[StreamOutage]


def streams_status(*, outages: int = 10) -> StreamsStatus:
    redis = get_redis()
    status = redis.hgetall(STATUS_KEY)
    recent = redis.zrevrange(OUTAGES_KEY, 0, outages - 1) if outages > 0 else []
    parsed = []
    for member in recent:
        started, ended, cause = member.split(":", 2)
        parsed.append(StreamOutage(int(started), int(ended), cause))
    return StreamsStatus(
        health=streams_health(),
        frames={k: int(v) for k, v in redis.hgetall(FRAMES_KEY).items()},
        counters={k: int(v) for k, v in status.items() if k in STATUS_COUNTERS and v},
        mark_price_source=redis.get(MARK_PRICE_SOURCE_KEY),
        outages=parsed,
    )


@dataclass(frozen=True)
class LiquidationSums:
    """Liquidation USD over a window: a lower bound (at most one per symbol per second)."""

    long_usd: Decimal
    short_usd: Decimal
    count: int


def liquidation_sums_by_symbol(
    *, since: datetime, until: datetime | None = None, symbols: list[str] | None = None
) -> dict[str, LiquidationSums]:
    """Long (SELL orders) and short (BUY orders) liquidation USD per symbol in [since, until)."""
    rows = Liquidation.objects.filter(time__gte=since)
    if until is not None:
        rows = rows.filter(time__lt=until)
    if symbols is not None:
        rows = rows.filter(symbol__in=symbols)
    zero = Decimal(0)
    return {
        row["symbol"]: LiquidationSums(
            long_usd=row["long_usd"] or zero, short_usd=row["short_usd"] or zero, count=row["n"]
        )
        for row in rows.values("symbol").annotate(
            long_usd=Sum("usd", filter=Q(side=LiquidationSide.SELL)),
            short_usd=Sum("usd", filter=Q(side=LiquidationSide.BUY)),
            n=Count("id"),
        )
    }


@dataclass(frozen=True)
class LiquidationWindow:
    """One symbol's window (since, until], e.g. an alert's: ``until`` is its sample time."""

    symbol: str
    since: datetime
    until: datetime


_WINDOW_SUMS_SQL = """
SELECT w.idx,
       COALESCE(SUM(l.usd) FILTER (WHERE l.side = %s), 0),
       COALESCE(SUM(l.usd) FILTER (WHERE l.side = %s), 0),
       COUNT(l.id)
FROM unnest(%s::int[], %s::text[], %s::timestamptz[], %s::timestamptz[])
     AS w(idx, symbol, since, until)
LEFT JOIN stream_liquidations l
       ON l.symbol = w.symbol AND l.time > w.since AND l.time <= w.until
GROUP BY w.idx
"""


def liquidation_sums_over_windows(windows: list[LiquidationWindow]) -> list[LiquidationSums]:
    """Long and short liquidation USD of each window (each its own symbol and span), in one
    query whatever the number of windows: an alert batch's liquidation context."""
    if not windows:
        return []
    with connection.cursor() as cursor:
        cursor.execute(
            _WINDOW_SUMS_SQL,
            [
                LiquidationSide.SELL.value,
                LiquidationSide.BUY.value,
                list(range(len(windows))),
                [w.symbol for w in windows],
                [w.since for w in windows],
                [w.until for w in windows],
            ],
        )
        by_index = {idx: LiquidationSums(long, short, n) for idx, long, short, n in cursor}
    return [by_index[index] for index in range(len(windows))]


def liquidations_recorded() -> bool:
    """True when the liquidation stream is or was running (so a zero sum means no liquidation
    was received, not that nothing was listening): not disabled, and a frame on its connection
    was seen at some time."""
    state = streams_health()[MarketStream.LIQUIDATIONS].state
    return state in (StreamState.FRESH, StreamState.STALE)


def liquidation_sums_by_lookback(
    lookbacks_sec: list[int], *, until: datetime
) -> dict[str, list[LiquidationSums]]:
    """Every symbol's long and short liquidation USD over each lookback (until - seconds, until],
    in one query over the longest lookback (one index range scan on time, FILTERed sums per
    lookback); symbols without any liquidation in it are absent (zero everywhere)."""
    if not lookbacks_sec:
        return {}
    sums = []
    params: list = []
    for seconds in lookbacks_sec:
        since = until - timedelta(seconds=seconds)
        for side in (LiquidationSide.SELL, LiquidationSide.BUY):
            sums.append("COALESCE(SUM(usd) FILTER (WHERE side = %s AND time > %s), 0)")
            params += [side.value, since]
        sums.append("COUNT(*) FILTER (WHERE time > %s)")
        params.append(since)
    sql = (
        f"SELECT symbol, {', '.join(sums)} FROM stream_liquidations "  # noqa: S608 (no input)
        "WHERE time > %s AND time <= %s GROUP BY symbol"
    )
    params += [until - timedelta(seconds=max(lookbacks_sec)), until]
    result: dict[str, list[LiquidationSums]] = {}
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        for symbol, *values in cursor:
            result[symbol] = [
                LiquidationSums(values[i], values[i + 1], values[i + 2])
                for i in range(0, len(values), 3)
            ]
    return result


@dataclass(frozen=True, slots=True)
class StoredLiquidation:
    symbol: str
    side: LiquidationSide
    usd: Decimal
    time_ms: int


def liquidations_since(
    since: datetime, *, symbols: set[str] | None = None
) -> list[StoredLiquidation]:
    """The stored liquidations with time >= since (of ``symbols``), oldest first (one index range
    scan on time)."""
    rows = Liquidation.objects.filter(time__gte=since)
    if symbols is not None:
        rows = rows.filter(symbol__in=symbols)
    return [
        StoredLiquidation(symbol, LiquidationSide(side), usd, timeutil.ms_from_datetime(time))
        for symbol, side, usd, time in rows.order_by("time", "id").values_list(
            "symbol", "side", "usd", "time"
        )
    ]
