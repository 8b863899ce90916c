"""The liquidity job: exchangeInfo + 24h ticker → classifier → Postgres and Redis."""

import logging

from django.conf import settings
from django.utils import timezone

from common.locks import redis_lease
from common.redis import get_redis
from exchange.errors import ExchangeError
from liquidity.classifier import Contract, Thresholds, classify_universe
from liquidity.exchange_info import ExchangeInfoUnavailable, exchange_info_get
from liquidity.models import UniverseRefresh
from liquidity.selectors import universe_members_for_classifier
from liquidity.services import quote_volumes_24h, universe_apply, universe_refresh_failed

logger = logging.getLogger(__name__)

RUN_LEASE_KEY = "lock:liquidity:universe_refresh"


class UnusableExchangeData(ValueError):
    """The exchange answered, but with data that cannot be a market (garbage, empty lists)."""


def universe_refresh() -> UniverseRefresh | None:
    """One run of the job; None when another run holds the lease (runs never overlap).

    On any exchange failure or unusable answer the previous universe is kept untouched and the
    failed run is recorded, so the API can say "stale since ...".
    """
    with redis_lease(get_redis(), RUN_LEASE_KEY, ttl_sec=settings.LIQUIDITY_REFRESH_SEC) as held:
        if not held:
            logger.info("liquidity run skipped: another run is in progress")
            return None
        started_at = timezone.now()
        try:
            refresh = _refresh_once(started_at)
        except (ExchangeError, ExchangeInfoUnavailable, UnusableExchangeData) as exc:
            cause = f"{type(exc).__name__}: {exc}"
            logger.warning("liquidity run failed; universe kept", extra={"cause": cause})
            return universe_refresh_failed(started_at=started_at, error=cause)
        logger.info(
            "liquidity run done",
            extra={
                "members": refresh.members,
                "entered": refresh.entered,
                "exited": refresh.exited,
            },
        )
        return refresh


def _refresh_once(started_at) -> UniverseRefresh:
    thresholds = Thresholds(
        enter=settings.LIQUIDITY_ENTER_QUOTE_VOLUME, exit=settings.LIQUIDITY_EXIT_QUOTE_VOLUME
    )
    exchange_info = exchange_info_get(max_retries=None)
    if exchange_info.refresh_error and exchange_info.age_sec() > settings.LIQUIDITY_REFRESH_SEC:
        raise UnusableExchangeData(
            f"exchangeInfo is {exchange_info.age_sec():.0f}s old: {exchange_info.refresh_error}"
        )
    contracts = [Contract.from_exchange_info(entry) for entry in exchange_info.symbols]
    eligible = sum(contract.is_eligible for contract in contracts)
    if eligible == 0:
        raise UnusableExchangeData("exchangeInfo lists no TRADING USDT perpetual")

    quote_volumes = quote_volumes_24h()
    if not quote_volumes:
        raise UnusableExchangeData("the 24h ticker is empty")

    current = universe_members_for_classifier()
    classification = classify_universe(
        contracts=contracts, quote_volumes=quote_volumes, current=current, thresholds=thresholds
    )
    if current and not classification.members:
        raise UnusableExchangeData(
            f"the answer would empty the universe of {len(current)} symbols; keeping it"
        )
    for symbol, reason in classification.held.items():
        logger.warning("liquid symbol held", extra={"symbol": symbol, "cause": reason})
    for change in classification.changes:
        logger.info(
            f"liquid symbol {change.change}",
            extra={"symbol": change.symbol, "cause": change.reason},
        )
    return universe_apply(
        classification=classification, eligible=eligible, started_at=started_at, now=timezone.now()
    )
