from dataclasses import dataclass
from datetime import datetime

from django.db.models import QuerySet

from common.redis import get_redis
from liquidity.classifier import Member
from liquidity.models import LiquidityMembershipEvent, LiquidSymbol, UniverseRefresh
from liquidity.services import REDIS_UNIVERSE_KEY


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


def universe_symbols_published() -> set[str]:
    """The symbols of the universe last published to Redis (the set the poller polls); empty
    before the first publication."""
    return get_redis().smembers(REDIS_UNIVERSE_KEY)
