"""Writes for relative rules: each symbol's change statistics, refreshed from the stored samples
and, on a fresh install, bootstrapped from openInterestHist.

Refresh (a beat job, alerts.tasks.change_stats_refresh_task): the realtime snapshots of the last
OI_CHANGE_STATS_DAYS days, downsampled to the coarse ring's samples (the first of each 5-minute
bucket, oi.coarse), through ``alerts.relative.change_stats`` per window of the relative rules;
CHANGE_STATS_SYMBOLS_PER_READ symbols per read, one batched upsert per read. A symbol whose
stored history is too short keeps the row it had (a bootstrap's), and a row whose newest sample
is older than the period is deleted (no statistics: no verdict).

Bootstrap: symbols of the liquid universe still without a row for every window get
OI_CHANGE_STATS_BOOTSTRAP_PAGES pages of openInterestHist 5m (500 entries, ~41.7 h each), every
request through the exchange client (which asks the shared budget, including openInterestHist's
own 1000 requests / 5 min). At most OI_CHANGE_STATS_BOOTSTRAP_MAX_REQUESTS a run: 400 symbols
× 2 pages take three runs, leaving room for the ring backfills within that limit. A budget that
cannot admit a request ends the run; the next run goes on.
"""

import logging
import time
from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone

from alerts.backtest import coarse_indices
from alerts.backtest_selectors import snapshot_series
from alerts.models import ChangeStatsSource, OpenInterestChangeStats
from alerts.relative import ChangeStats, change_stats
from alerts.relative_selectors import CHANGE_STATS_VERSION_KEY, relative_windows, symbols_with_stats
from common.redis import get_redis
from common.timeutil import datetime_from_ms, ms_from_datetime
from exchange.errors import BudgetExhausted, ExchangeError
from exchange.factory import build_client
from liquidity.selectors import liquid_symbol_list

logger = logging.getLogger(__name__)

CHANGE_STATS_SYMBOLS_PER_READ = 50
HIST_PAGE = 500
HIST_PERIOD_MS = 300_000


def _row(symbol: str, stats: ChangeStats, source: str, now: datetime) -> OpenInterestChangeStats:
    return OpenInterestChangeStats(
        symbol=symbol,
        window_sec=stats.window_sec,
        median=stats.median,
        scale=stats.scale,
        count=stats.count,
        first_ts=datetime_from_ms(stats.first_ms),
        last_ts=datetime_from_ms(stats.last_ms),
        source=source,
        computed_at=now,
    )


def _upsert(rows: list[OpenInterestChangeStats]) -> None:
    if rows:
        OpenInterestChangeStats.objects.bulk_create(
            rows,
            update_conflicts=True,
            unique_fields=["symbol", "window_sec"],
            update_fields=["median", "scale", "count", "first_ts", "last_ts", "source",
                           "computed_at"],
        )  # fmt: skip


def _version_bump() -> None:
    get_redis().set(CHANGE_STATS_VERSION_KEY, str(time.time_ns()))


def change_stats_of_samples(
    times_ms: list[int], values: list[float], windows: list[int]
) -> list[ChangeStats]:
    """The statistics of each window that the coarse samples are enough for."""
    return [stats for w in windows if (stats := change_stats(times_ms, values, w)) is not None]


def change_stats_from_snapshots(
    symbols: list[str], windows: list[int], *, until: datetime
) -> dict[str, list[ChangeStats]]:
    """Per symbol, its statistics from the realtime snapshots of the OI_CHANGE_STATS_DAYS days
    before ``until`` (the refresh's, and the backtest's as of its period's start)."""
    since = until - timedelta(days=settings.OI_CHANGE_STATS_DAYS)
    found: dict[str, list[ChangeStats]] = {}
    for start in range(0, len(symbols), CHANGE_STATS_SYMBOLS_PER_READ):
        chunk = symbols[start : start + CHANGE_STATS_SYMBOLS_PER_READ]
        for symbol, series in snapshot_series(chunk, since=since, until=until).items():
            coarse = coarse_indices(series.t_ms)
            stats = change_stats_of_samples(
                series.t_ms[coarse].tolist(), series.oi[coarse].tolist(), windows
            )
            if stats:
                found[symbol] = stats
    return found


def change_stats_refresh(
    *, symbols: list[str] | None = None, now: datetime | None = None, deadline: float | None = None
) -> dict[str, int]:
    """Recompute every symbol's statistics from the stored snapshots, then bootstrap the
    symbols still without any (bounded); returns counts. Idempotent."""
    now = now or timezone.now()
    windows = relative_windows()
    if not windows:
        return {"windows": 0, "refreshed": 0, "bootstrapped": 0, "deleted": 0}
    symbols = symbols if symbols is not None else list(
        liquid_symbol_list().values_list("symbol", flat=True)
    )  # fmt: skip
    refreshed = 0
    for start in range(0, len(symbols), CHANGE_STATS_SYMBOLS_PER_READ):
        chunk = symbols[start : start + CHANGE_STATS_SYMBOLS_PER_READ]
        found = change_stats_from_snapshots(chunk, windows, until=now)
        rows = [
            _row(symbol, stats, ChangeStatsSource.SNAPSHOTS, now)
            for symbol, all_stats in found.items()
            for stats in all_stats
        ]
        _upsert(rows)
        refreshed += len(rows)
        if deadline is not None and time.monotonic() > deadline:
            logger.warning("change statistics refresh stopped at its deadline",
                           extra={"cause": f"{start + len(chunk)} of {len(symbols)} symbols"})  # fmt: skip
            break
    stale_before = now - timedelta(days=settings.OI_CHANGE_STATS_DAYS)
    deleted, _ = OpenInterestChangeStats.objects.filter(last_ts__lt=stale_before).delete()
    have = symbols_with_stats(windows)
    missing = [symbol for symbol in symbols if symbol not in have]
    bootstrapped = change_stats_bootstrap(missing, windows, now=now, deadline=deadline)
    _version_bump()
    return {
        "windows": len(windows),
        "refreshed": refreshed,
        "bootstrapped": bootstrapped,
        "deleted": deleted,
    }


def change_stats_bootstrap(
    symbols: list[str], windows: list[int], *, now: datetime | None = None,
    deadline: float | None = None,
) -> int:  # fmt: skip
    """Statistics from openInterestHist 5m for ``symbols`` (history ending now), at most
    OI_CHANGE_STATS_BOOTSTRAP_MAX_REQUESTS requests; returns the rows written."""
    if not symbols or not windows:
        return 0
    now = now or timezone.now()
    client = build_client("change_stats", max_wait=5.0, max_retries=1)
    budget = settings.OI_CHANGE_STATS_BOOTSTRAP_MAX_REQUESTS
    pages = settings.OI_CHANGE_STATS_BOOTSTRAP_PAGES
    written = 0
    for symbol in symbols:
        if budget < pages or (deadline is not None and time.monotonic() > deadline):
            break
        try:
            entries = _hist_pages(client, symbol, pages, end_ms=ms_from_datetime(now))
        except BudgetExhausted as exc:
            logger.warning("change statistics bootstrap paused: budget",
                           extra={"symbol": symbol, "cause": str(exc)})  # fmt: skip
            break
        except ExchangeError as exc:
            logger.warning("change statistics bootstrap skipped a symbol",
                           extra={"symbol": symbol, "cause": f"{type(exc).__name__}: {exc}"})  # fmt: skip
            budget -= pages
            continue
        budget -= pages
        times = [ms_from_datetime(e.timestamp) for e in entries]
        values = [float(e.sum_open_interest) for e in entries]
        rows = [
            _row(symbol, stats, ChangeStatsSource.OPEN_INTEREST_HIST, now)
            for stats in change_stats_of_samples(times, values, windows)
        ]
        _upsert(rows)
        written += len(rows)
        if not rows:
            logger.info("change statistics: not enough history for a verdict",
                        extra={"symbol": symbol, "cause": f"{len(entries)} 5m entries"})  # fmt: skip
    return written


def _hist_pages(client, symbol: str, pages: int, *, end_ms: int) -> list:
    """Up to ``pages`` × 500 openInterestHist 5m entries ending at ``end_ms``, oldest first,
    each time once (entries of another symbol or not positive dropped)."""
    entries: dict[int, object] = {}
    for _ in range(pages):
        page = client.open_interest_hist(symbol, "5m", limit=HIST_PAGE, end_time=end_ms)
        page = [e for e in page if e.symbol == symbol and e.sum_open_interest > 0]
        if not page:
            break
        for entry in page:
            entries.setdefault(ms_from_datetime(entry.timestamp), entry)
        end_ms = ms_from_datetime(page[0].timestamp) - 1
        if len(page) < HIST_PAGE:
            break
    return [entries[t] for t in sorted(entries)]
