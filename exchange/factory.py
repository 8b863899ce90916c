"""Build exchange clients from Django settings (the only module of exchange/ that reads them)."""

from functools import lru_cache

import redis
from django.conf import settings

from exchange.budget import BudgetConfig, RequestBudget
from exchange.client import BinanceFuturesClient, http_pool_for


@lru_cache(maxsize=4)
def _redis(url: str) -> redis.Redis:
    """One connection pool per process and URL (redis-py re-creates pools after a fork)."""
    return redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)


def budget_config() -> BudgetConfig:
    return BudgetConfig(
        egress_id=settings.BINANCE_EGRESS_ID,
        ip_weight_limit=settings.BINANCE_IP_WEIGHT_LIMIT,
        safety_margin=settings.BINANCE_BUDGET_SAFETY_MARGIN,
        burst=settings.BINANCE_BUDGET_BURST,
        consumer_budgets=settings.BINANCE_CONSUMER_BUDGETS,
        default_max_wait_s=settings.BINANCE_MAX_BUDGET_WAIT,
    )


def build_budget() -> RequestBudget:
    """The request budget of this host's egress IP, shared through REDIS_URL."""
    return RequestBudget(_redis(settings.REDIS_URL), budget_config())


def build_client(
    consumer: str = "default",
    *,
    max_wait: float | None = None,
    max_retries: int | None = None,
    read_timeout: float | None = None,
) -> BinanceFuturesClient:
    """A client for ``consumer`` ("poller", "liquidity", "hourly", ...) on the shared budget.

    ``max_wait``, ``max_retries`` and ``read_timeout`` override the settings for callers that must fail fast
    (a poll is worth nothing once its interval has passed).
    Each call returns a new client with its own kept-alive HTTP connections (the environment's
    proxy and CA bundle read once, see ``http_pool_for``); keep one per thread and reuse it.
    """
    return BinanceFuturesClient(
        settings.BINANCE_BASE_URL,
        build_budget(),
        consumer=consumer,
        connect_timeout=settings.BINANCE_CONNECT_TIMEOUT,
        read_timeout=settings.BINANCE_READ_TIMEOUT if read_timeout is None else read_timeout,
        max_retries=settings.BINANCE_MAX_RETRIES if max_retries is None else max_retries,
        retry_base_delay=settings.BINANCE_RETRY_BASE_DELAY,
        retry_max_delay=settings.BINANCE_RETRY_MAX_DELAY,
        max_wait=settings.BINANCE_MAX_BUDGET_WAIT if max_wait is None else max_wait,
        max_time_ahead=settings.OI_MAX_CLOCK_AHEAD_SEC,
        http=http_pool_for(settings.BINANCE_BASE_URL),
    )
