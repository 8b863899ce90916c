"""Reads for relative rules: the stored change statistics, and the windows that need them."""

from alerts.models import AlertRule, OpenInterestChangeStats, RuleKind
from alerts.relative import ChangeStats
from common.timeutil import ms_from_datetime

CHANGE_STATS_VERSION_KEY = "oi:alert:change_stats_version"
"""Bumped by every refresh: the rules engine reloads the statistics when it changes."""


def relative_windows() -> list[int]:
    """The windows of every relative rule, enabled or not (a disabled preset's statistics are
    ready when it is enabled, and inspectable before)."""
    return sorted(
        set(
            AlertRule.objects.filter(kind=RuleKind.RELATIVE)
            .values_list("window_sec", flat=True)
            .order_by()
        )
    )


def _pure(row: OpenInterestChangeStats) -> ChangeStats:
    return ChangeStats(
        window_sec=row.window_sec,
        median=row.median,
        scale=row.scale,
        count=row.count,
        first_ms=ms_from_datetime(row.first_ts),
        last_ms=ms_from_datetime(row.last_ts),
    )


def change_stats_all() -> dict[tuple[str, int], ChangeStats]:
    """(symbol, window_sec) -> statistics, every stored row (a few per liquid symbol)."""
    return {
        (row.symbol, row.window_sec): _pure(row) for row in OpenInterestChangeStats.objects.all()
    }


def change_stats_for(symbols: list[str]) -> dict[tuple[str, int], ChangeStats]:
    rows = OpenInterestChangeStats.objects.filter(symbol__in=symbols)
    return {(row.symbol, row.window_sec): _pure(row) for row in rows}


def change_stats_rows(symbol: str) -> list[OpenInterestChangeStats]:
    return list(OpenInterestChangeStats.objects.filter(symbol=symbol).order_by("window_sec"))


def symbols_with_stats(windows: list[int]) -> set[str]:
    """Symbols with a row for every one of ``windows``."""
    counts: dict[str, int] = {}
    rows = OpenInterestChangeStats.objects.filter(window_sec__in=windows)
    for symbol in rows.values_list("symbol", flat=True):
        counts[symbol] = counts.get(symbol, 0) + 1
    return {symbol for symbol, count in counts.items() if count >= len(windows)}
