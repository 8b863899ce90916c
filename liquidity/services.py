import logging
from datetime import datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from common.formatting import plain_decimal
from common.redis import get_redis
from exchange.factory import build_client
from liquidity.classifier import Classification
from liquidity.models import LiquidityMembershipEvent, LiquidSymbol, UniverseRefresh
from streams.selectors import quote_volumes_from_stream

logger = logging.getLogger(__name__)

REDIS_UNIVERSE_KEY = "oi:liquid_universe"
REDIS_META_KEY_PREFIX = "oi:liquid_meta:"
REDIS_UNIVERSE_VERSION_KEY = "oi:liquid_universe:version"

# Stayers get their volume and last_seen_at; a member missing from the ticker keeps its last
# volume and gets missing_from_ticker_since (the first miss), cleared when it is seen again.
_UPDATE_STAYERS_SQL = """
UPDATE open_interest_liquid_symbols AS member
SET quote_volume_24h = COALESCE(seen.volume, member.quote_volume_24h),
    last_seen_at = CASE WHEN seen.volume IS NULL THEN member.last_seen_at ELSE %s END,
    missing_from_ticker_since = CASE
        WHEN seen.volume IS NULL THEN COALESCE(member.missing_from_ticker_since, %s)
        ELSE NULL END
FROM unnest(%s::text[], %s::numeric[]) AS seen(symbol, volume)
WHERE member.symbol = seen.symbol
"""


def quote_volumes_24h() -> dict[str, Decimal]:
    """Each symbol's 24 h quote volume: from the mini-ticker stream while it is fresh (no request
    weight), from REST ticker/24hr (weight 40) otherwise."""
    from_stream = quote_volumes_from_stream()
    if from_stream is not None:
        logger.info("24h volumes from the mini-ticker stream", extra={"symbols": len(from_stream)})
        return from_stream
    with build_client("liquidity") as client:
        tickers = client.ticker_24hr()
    return {ticker.symbol: ticker.quote_volume for ticker in tickers}


@transaction.atomic
def universe_apply(
    *, classification: Classification, eligible: int, started_at: datetime, now: datetime
) -> UniverseRefresh:
    """Make Postgres hold the new universe, its history rows and the run record, in one
    transaction; after commit, replace the Redis copy atomically."""
    exited = [change.symbol for change in classification.exited]
    LiquidSymbol.objects.filter(symbol__in=exited).delete()
    entered_symbols = {change.symbol for change in classification.entered}
    LiquidSymbol.objects.bulk_create(
        [
            LiquidSymbol(
                symbol=change.symbol,
                quote_volume_24h=change.quote_volume,
                entered_at=now,
                last_seen_at=now,
            )
            for change in classification.entered
        ]
    )
    stayers = [symbol for symbol in classification.members if symbol not in entered_symbols]
    if stayers:
        with connection.cursor() as cursor:
            cursor.execute(
                _UPDATE_STAYERS_SQL,
                [now, now, stayers, [classification.members[symbol] for symbol in stayers]],
            )
    LiquidityMembershipEvent.objects.bulk_create(
        [
            LiquidityMembershipEvent(
                symbol=change.symbol,
                change=change.change,
                quote_volume_24h=change.quote_volume,
                reason=change.reason,
                at=now,
            )
            for change in classification.changes
        ]
    )
    refresh = UniverseRefresh.objects.create(
        started_at=started_at,
        finished_at=now,
        ok=True,
        members=len(classification.members),
        entered=len(entered_symbols),
        exited=len(exited),
        eligible=eligible,
    )
    _refresh_history_trim(now=now)
    transaction.on_commit(universe_publish_to_redis)
    return refresh


def universe_refresh_failed(*, started_at: datetime, error: str) -> UniverseRefresh:
    """Record a failed run; the universe itself is left exactly as it was."""
    now = timezone.now()
    return UniverseRefresh.objects.create(
        started_at=started_at, finished_at=now, ok=False, error=error[:2000]
    )


def universe_publish_to_redis() -> int:
    """Replace `oi:liquid_universe` and every `oi:liquid_meta:<symbol>` in one MULTI/EXEC, so a
    reader sees either the old universe or the new one, never a mix. Returns the member count.
    """
    members = list(
        LiquidSymbol.objects.values_list("symbol", "quote_volume_24h", "entered_at", "last_seen_at")
    )
    client = get_redis()
    previous = client.smembers(REDIS_UNIVERSE_KEY)
    current = {symbol for symbol, *_ in members}
    staging_key = f"{REDIS_UNIVERSE_KEY}:staging"
    updated_at = timezone.now().isoformat()
    with client.pipeline(transaction=True) as pipe:
        pipe.delete(staging_key)
        if current:
            pipe.sadd(staging_key, *current)
            pipe.rename(staging_key, REDIS_UNIVERSE_KEY)
        else:
            pipe.delete(REDIS_UNIVERSE_KEY)
        for symbol in previous - current:
            pipe.delete(f"{REDIS_META_KEY_PREFIX}{symbol}")
        for symbol, volume, entered_at, last_seen_at in members:
            pipe.hset(
                f"{REDIS_META_KEY_PREFIX}{symbol}",
                mapping={
                    "quote_volume_24h": plain_decimal(volume),
                    "entered_at": entered_at.isoformat(),
                    "last_seen_at": last_seen_at.isoformat(),
                    "last_updated": updated_at,
                },
            )
        pipe.incr(REDIS_UNIVERSE_VERSION_KEY)
        pipe.execute()
    return len(current)


def _refresh_history_trim(*, now: datetime) -> None:
    cutoff = now - timedelta(days=settings.LIQUIDITY_REFRESH_HISTORY_DAYS)
    UniverseRefresh.objects.filter(finished_at__lt=cutoff).delete()
