from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import StrEnum

from django.conf import settings
from django.db import connection
from django.db.models import Q, QuerySet
from psycopg import sql

from common import timeutil
from common.redis import get_redis
from common.timeutil import datetime_from_ms
from oi.batches import stored_decimal
from oi.egress import group_plan_read, groups_live
from oi.exports import CsvExport, iso_utc, plain_numeric, select_list, time_range_where
from oi.keys import (
    CONSECUTIVE_FAILURES_KEY,
    COUNTERS_KEY,
    DISPATCH_SENT_KEY,
    LAST_FAILURE_KEY,
    MARK_PRICE_TIME_KEY,
    STATUS_KEY,
    WEIGHT_BUCKET_KEY,
)
from oi.models import OpenInterestSnapshot, SnapshotSource
from oi.ring import RingSample, last_sample_times, ring_read


def snapshot_list_latest(
    *, symbol: str, limit: int, source: str | None = None
) -> QuerySet[OpenInterestSnapshot]:
    """The newest `limit` stored samples of a symbol, newest first (ties on ts by source, the
    unique index's order, so a cursor can go on from the last one: sample_list_page)."""
    snapshots = OpenInterestSnapshot.objects.filter(symbol=symbol)
    if source is not None:
        snapshots = snapshots.filter(source=source)
    return snapshots.order_by("-ts", "-source")[:limit]


def ring_samples_if_fresh(*, symbol: str, limit: int) -> list[RingSample] | None:
    """The newest `limit` ring-buffer samples when the poller sampled the symbol recently and the
    buffer holds at least `limit` samples; None means "ask Postgres"."""
    redis = get_redis()
    last_ms = last_sample_times(redis, [symbol]).get(symbol)
    if last_ms is None:
        return None
    status = poller_status_raw()
    interval_sec = float(status.get("interval_sec") or settings.OI_MAX_INTERVAL_SEC)
    if timeutil.now_ms() - last_ms > 3 * interval_sec * 1000:
        return None
    samples = ring_read(redis, symbol, newest_first=True, limit=limit)
    return samples if len(samples) >= limit else None


class ServedFrom(StrEnum):
    RING = "ring"
    POSTGRES = "postgres"


RING_BACKFILL_SOURCE = "backfill"  # a ring sample from openInterestHist (never stored in Postgres)


@dataclass(frozen=True, slots=True)
class Sample:
    """One sample as the samples API answers it, whichever store it came from."""

    ts: datetime
    open_interest: Decimal
    open_interest_usd: Decimal | None
    mark_price: Decimal | None
    source: str


@dataclass(frozen=True)
class SampleList:
    served_from: ServedFrom
    samples: Sequence[Sample]


def sample_list_latest(*, symbol: str, limit: int, source: str | None = None) -> SampleList:
    """The newest `limit` samples of a symbol, newest first: from the ring buffer when it is
    fresh and holds enough (and the stored hourly snapshots are not asked for), else Postgres.
    The same fields either way."""
    ring = None
    if source != SnapshotSource.SNAPSHOT:
        ring = ring_samples_if_fresh(symbol=symbol, limit=limit)
    if ring is not None:
        return SampleList(ServedFrom.RING, [sample_from_ring(sample) for sample in ring])
    stored = snapshot_list_latest(symbol=symbol, limit=limit, source=source)
    return SampleList(
        ServedFrom.POSTGRES,
        [
            Sample(row.ts, row.open_interest, row.open_interest_usd, row.mark_price, row.source)
            for row in stored
        ],
    )


def sample_from_ring(sample: RingSample) -> Sample:
    """A ring member as Postgres holds the same sample: values rounded as numeric(30, 12) stores
    them, and OI in USD derived as the poller and the ingest API derive it (OI × mark price)."""
    mark = sample.mark_price
    return Sample(
        ts=datetime_from_ms(sample.time_ms),
        open_interest=stored_decimal(sample.open_interest),
        open_interest_usd=None if mark is None else stored_decimal(sample.open_interest * mark),
        mark_price=None if mark is None else stored_decimal(mark),
        source=RING_BACKFILL_SOURCE if sample.backfilled else SnapshotSource.REALTIME.value,
    )


def poller_status_raw() -> dict[str, str]:
    return get_redis().hgetall(STATUS_KEY)


@dataclass(frozen=True)
class GroupStatus:
    """One egress group as the poller API, /metrics and the page show it."""

    egress_id: str
    live: bool
    """Its heartbeat is fresh."""
    planned: bool
    """The latest dispatch planned for it."""
    host: str
    heartbeat_age_sec: float | None
    configured_per_min: int | None
    usable_per_min: float
    ip_limit: int | None
    ip_limit_learned: bool
    planned_weight_per_min: float
    weight_last_minute: int
    """Weight this group's pollers sent to the exchange over the last 60 s."""
    symbols: list[str]
    mark_prices: bool


@dataclass(frozen=True)
class PollerStatus:
    n_symbols: int
    interval_sec: float | None
    window_sec: float
    max_req_per_min: int
    """The sum of the planned groups' usable budgets."""
    dispatched_at_ms: int | None
    weight_last_minute: int
    counters: dict[str, int]
    last_sample_age_sec: dict[str, float | None]
    failing: dict[str, dict]
    mark_prices_age_sec: float | None
    groups: list[GroupStatus]
    overloaded: bool
    """The budgets cannot poll every symbol within OI_MAX_INTERVAL_SEC: the interval stretches."""
    wanted_interval_sec: float | None


def _groups_status(redis, now_ms: int) -> list[GroupStatus]:
    live = {group.egress_id: group for group in groups_live(at_ms=now_ms)}
    planned = group_plan_read()
    ids = sorted({*live, *planned})
    this_second = now_ms // 1000
    seconds = range(this_second - 60, this_second)
    with redis.pipeline(transaction=False) as pipe:
        for egress_id in ids:
            pipe.mget([WEIGHT_BUCKET_KEY.format(egress_id, second) for second in seconds])
        buckets = pipe.execute()
    groups = []
    for egress_id, weights in zip(ids, buckets, strict=True):
        group, plan = live.get(egress_id), planned.get(egress_id, {})
        groups.append(
            GroupStatus(
                egress_id=egress_id,
                live=group is not None,
                planned=egress_id in planned,
                host=group.host if group else "",
                heartbeat_age_sec=round((now_ms - group.seen_at_ms) / 1000, 3) if group else None,
                configured_per_min=group.budget.configured_per_min if group else None,
                usable_per_min=(
                    group.budget.usable_per_min if group else float(plan.get("usablePerMin", 0))
                ),
                ip_limit=group.budget.ip_limit if group else None,
                ip_limit_learned=group.budget.learned if group else False,
                planned_weight_per_min=float(plan.get("plannedWeightPerMin", 0.0)),
                weight_last_minute=sum(int(w) for w in weights if w),
                symbols=list(plan.get("symbols", [])),
                mark_prices=bool(plan.get("markPrices", False)),
            )
        )
    return groups


def poller_status(*, universe: list[str]) -> PollerStatus:
    redis = get_redis()
    raw = poller_status_raw()
    now_ms = int(timeutil.now_ms())
    groups = _groups_status(redis, now_ms)
    last_times = last_sample_times(redis, universe)
    consecutive = {k: int(v) for k, v in redis.hgetall(CONSECUTIVE_FAILURES_KEY).items()}
    failing_symbols = [s for s, n in consecutive.items() if n >= settings.OI_FAILING_AFTER]
    last_failures = (
        dict(zip(failing_symbols, redis.hmget(LAST_FAILURE_KEY, failing_symbols), strict=True))
        if failing_symbols
        else {}
    )
    mark_time = redis.get(MARK_PRICE_TIME_KEY)
    return PollerStatus(
        n_symbols=int(raw.get("n_symbols", 0)),
        interval_sec=float(raw["interval_sec"]) if "interval_sec" in raw else None,
        window_sec=float(raw.get("window_sec", settings.OI_WINDOW_SEC)),
        max_req_per_min=int(float(raw.get("max_req_per_min", settings.OI_MAX_REQ_PER_MIN))),
        dispatched_at_ms=int(raw["dispatched_at_ms"]) if "dispatched_at_ms" in raw else None,
        weight_last_minute=sum(group.weight_last_minute for group in groups),
        counters={k: int(v) for k, v in redis.hgetall(COUNTERS_KEY).items()},
        last_sample_age_sec={
            symbol: round((now_ms - last_times[symbol]) / 1000, 3) if symbol in last_times else None
            for symbol in universe
        },
        failing={
            symbol: {
                "consecutiveFailures": consecutive[symbol],
                "lastFailure": (last_failures.get(symbol) or "").partition(" ")[2],
            }
            for symbol in failing_symbols
        },
        mark_prices_age_sec=round((now_ms - int(mark_time)) / 1000, 3) if mark_time else None,
        groups=groups,
        overloaded=raw.get("overloaded") == "1",
        wanted_interval_sec=(
            float(raw["wanted_interval_sec"]) if "wanted_interval_sec" in raw else None
        ),
    )


def snapshot_at_or_before_queryset(*, symbol: str, ts) -> QuerySet[OpenInterestSnapshot]:
    """One backward scan of the (symbol, ts, source) unique index, stopping at the first row."""
    return OpenInterestSnapshot.objects.filter(symbol=symbol, ts__lte=ts).order_by("-ts")[:1]


def snapshot_at_or_before(*, symbol: str, ts) -> OpenInterestSnapshot | None:
    """The stored sample of `symbol` nearest at or before `ts` (any source)."""
    return next(iter(snapshot_at_or_before_queryset(symbol=symbol, ts=ts)), None)


# Distinct symbols by skipping through the (symbol, ts, source) index (a "loose index scan"),
# then each one's newest sample: two index probes per symbol, however many rows the table holds.
# A symbol whose newest sample has no USD value (no mark price then) is left out.
_LATEST_USD_SQL = """
WITH RECURSIVE symbols AS (
    (SELECT symbol FROM open_interest_snapshots ORDER BY symbol LIMIT 1)
    UNION ALL
    SELECT (SELECT s.symbol FROM open_interest_snapshots s
            WHERE s.symbol > symbols.symbol ORDER BY s.symbol LIMIT 1)
    FROM symbols WHERE symbols.symbol IS NOT NULL
)
SELECT latest.symbol, latest.ts, latest.open_interest_usd
FROM symbols
CROSS JOIN LATERAL (
    SELECT o.symbol, o.ts, o.open_interest_usd FROM open_interest_snapshots o
    WHERE o.symbol = symbols.symbol AND o.ts >= %s
    ORDER BY o.ts DESC LIMIT 1
) AS latest
WHERE symbols.symbol IS NOT NULL AND latest.open_interest_usd IS NOT NULL
"""


def open_interest_usd_latest(*, since) -> list[tuple[str, object, object]]:
    """(symbol, ts, open interest in USD) of every symbol's newest sample since `since`, when it
    has a USD value."""
    with connection.cursor() as cursor:
        cursor.execute(_LATEST_USD_SQL, [since])
        return cursor.fetchall()


def poll_dispatch_sent_at_ms() -> int | None:
    """When beat (or anyone) last sent a poll dispatch; None if never (or over a day ago)."""
    raw = get_redis().get(DISPATCH_SENT_KEY)
    return int(raw) if raw else None


# --- exports and pages beyond the newest samples (issue 20) ------------------------------------

SNAPSHOT_EXPORT_COLUMNS = (
    ("symbol", None),
    ("ts", iso_utc("ts")),
    ("source", None),
    ("open_interest", plain_numeric("open_interest")),
    ("open_interest_usd", plain_numeric("open_interest_usd")),
    ("mark_price", plain_numeric("mark_price")),
)


def snapshot_export(
    *,
    since: datetime,
    until: datetime,
    symbols: Sequence[str] | None = None,
    source: str | None = None,
) -> CsvExport:
    """Stored samples with since <= ts < until (of `symbols`, of `source`), ordered by time, then
    symbol and source: the statement `oi.exports` streams as CSV."""
    where, params = time_range_where(since=since, until=until, symbols=symbols, source=source)
    select = sql.SQL("SELECT {} FROM {} WHERE {} ORDER BY ts, symbol, source").format(
        select_list(SNAPSHOT_EXPORT_COLUMNS),
        sql.Identifier(OpenInterestSnapshot._meta.db_table),
        where,
    )
    return CsvExport(
        select=select,
        params=params,
        columns=tuple(name for name, _ in SNAPSHOT_EXPORT_COLUMNS),
        filename=f"open-interest-snapshots-{since:%Y%m%dT%H%M%SZ}-{until:%Y%m%dT%H%M%SZ}.csv",
    )


@dataclass(frozen=True)
class SamplePosition:
    """Where a page of samples stopped: its last (oldest) sample's time and source, unique for a
    symbol (the (symbol, ts, source) unique key)."""

    ts: datetime
    source: str


@dataclass(frozen=True)
class SamplePage:
    samples: Sequence[Sample]
    next: SamplePosition | None


def sample_list_page(
    *,
    symbol: str,
    limit: int,
    source: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    after: SamplePosition | None = None,
) -> SamplePage:
    """Stored samples of a symbol with since <= ts < until, newest first, `limit` at a time from
    Postgres; `after` continues from the page that ended there (keyset: (ts, source) below it, one
    range scan of the unique index). `next` is set while more may remain."""
    snapshots = OpenInterestSnapshot.objects.filter(symbol=symbol)
    if source is not None:
        snapshots = snapshots.filter(source=source)
    if since is not None:
        snapshots = snapshots.filter(ts__gte=since)
    if until is not None:
        snapshots = snapshots.filter(ts__lt=until)
    if after is not None:
        snapshots = snapshots.filter(Q(ts__lt=after.ts) | Q(ts=after.ts, source__lt=after.source))
    rows = list(
        snapshots.order_by("-ts", "-source").values_list(
            "ts", "open_interest", "open_interest_usd", "mark_price", "source"
        )[: limit + 1]
    )
    more = len(rows) > limit
    samples = [Sample(*row) for row in rows[:limit]]
    last = samples[-1] if more else None
    return SamplePage(samples, SamplePosition(last.ts, last.source) if last else None)


# --- dead letters, for the ops checks (issue 20) -------------------------------------------------


@dataclass(frozen=True, slots=True)
class DeadLettersNew:
    """Snapshot dead letters after a given one: how many, their rows, the newest."""

    count: int
    rows: int
    last_id: int | None
    last_cause: str


def dead_letters_after(*, after_id: int | None, since: datetime) -> DeadLettersNew:
    """Dead letters with an id above `after_id` (or, without one, failed at or after `since`)."""
    from django.db.models import Count, Max, Sum

    from oi.models import SnapshotDeadLetter

    rows = SnapshotDeadLetter.objects.all()
    rows = (
        rows.filter(id__gt=after_id) if after_id is not None else rows.filter(failed_at__gte=since)
    )
    summary = rows.aggregate(count=Count("id"), rows=Sum("rows"), last_id=Max("id"))
    last = rows.order_by("-id").only("cause").first()
    return DeadLettersNew(
        count=summary["count"],
        rows=summary["rows"] or 0,
        last_id=summary["last_id"],
        last_cause=last.cause if last else "",
    )


def dead_letter_last_id() -> int | None:
    """The newest dead letter's id (None when there is none)."""
    from oi.models import SnapshotDeadLetter

    return SnapshotDeadLetter.objects.order_by("-id").values_list("id", flat=True).first()
