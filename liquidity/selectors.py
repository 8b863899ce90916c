from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.db.models import QuerySet

from common.redis import get_redis
from liquidity.classifier import Member
from liquidity.models import LiquidityMembershipEvent, LiquidSymbol, UniverseRefresh
from liquidity.services import REDIS_META_KEY_PREFIX, REDIS_UNIVERSE_KEY


def liquid_symbol_list() -> QuerySet[LiquidSymbol]:
    return LiquidSymbol.objects.order_by("-quote_volume_24h", "symbol")


def universe_members_for_classifier() -> list[Member]:
    return [
        Member(symbol=symbol, missing_from_ticker=missing_since is not None)
        for symbol, missing_since in LiquidSymbol.objects.values_list(
            "symbol", "missing_from_ticker_since"
        )
    ]


def membership_event_list(*, symbol: str | None = None, limit: int = 100) -> QuerySet:
    events = LiquidityMembershipEvent.objects.all()
    if symbol:
        events = events.filter(symbol=symbol)
    return events.order_by("-at", "-id")[:limit]


@dataclass(frozen=True)
class UniverseJobStatus:
    last_success: UniverseRefresh | None
    last_failure: UniverseRefresh | None
    stale_since: datetime | None
    """When the runs started failing, if none has succeeded since; None when fresh."""


_refreshed_once_seen = False


def universe_refreshed_once() -> bool:
    """Whether the universe job has ever succeeded against this database. A universe published
    in Redis without one came from another run (a shared Redis db, a dropped database): it is
    used meanwhile, but it is not this system's own. (A yes is kept by the process: asked at
    every dispatch, the query would cost the poller more than the dispatch's own Redis work.)"""
    global _refreshed_once_seen
    if not _refreshed_once_seen:
        _refreshed_once_seen = UniverseRefresh.objects.filter(ok=True).exists()
    return _refreshed_once_seen


def universe_job_status() -> UniverseJobStatus:
    last_success = UniverseRefresh.objects.filter(ok=True).order_by("-finished_at").first()
    last_failure = UniverseRefresh.objects.filter(ok=False).order_by("-finished_at").first()
    stale_since = None
    if last_failure and (not last_success or last_failure.finished_at > last_success.finished_at):
        failures_since_success = UniverseRefresh.objects.filter(ok=False)
        if last_success:
            failures_since_success = failures_since_success.filter(
                finished_at__gt=last_success.finished_at
            )
        stale_since = (
            failures_since_success.order_by("finished_at")
            .values_list("finished_at", flat=True)
            .first()
        )
    return UniverseJobStatus(last_success, last_failure, stale_since)


# --- the published universe (Redis): this module is its only reader ------------------------------


def universe_symbols_published() -> set[str]:
    """The symbols of the universe last published to Redis (the set the poller polls); empty
    before the first publication."""
    return get_redis().smembers(REDIS_UNIVERSE_KEY)


def universe_published_membership(symbols: list[str]) -> list[bool] | None:
    """For each of ``symbols``, whether it is in the published universe; None when no universe is
    published at all. One round trip."""
    if not symbols:
        return []
    with get_redis().pipeline(transaction=False) as pipe:
        pipe.exists(REDIS_UNIVERSE_KEY)
        pipe.smismember(REDIS_UNIVERSE_KEY, symbols)
        published, members = pipe.execute()
    if not published:
        return None
    return [bool(member) for member in members]


def universe_published_members_of(symbols: Iterable[str]) -> set[str]:
    """Those of ``symbols`` that are in the published universe (none when it is not published)."""
    symbols = list(dict.fromkeys(symbols))
    membership = universe_published_membership(symbols)
    if not membership:  # no symbols, or nothing is published
        return set()
    return {symbol for symbol, member in zip(symbols, membership, strict=True) if member}


def universe_quote_volumes(symbols: list[str]) -> dict[str, Decimal | None]:
    """Each symbol's published 24 h quote volume (None when not published). One round trip."""
    if not symbols:
        return {}
    with get_redis().pipeline(transaction=False) as pipe:
        for symbol in symbols:
            pipe.hget(f"{REDIS_META_KEY_PREFIX}{symbol}", "quote_volume_24h")
        volumes = pipe.execute()
    return {
        symbol: Decimal(volume) if volume is not None else None
        for symbol, volume in zip(symbols, volumes, strict=True)
    }
