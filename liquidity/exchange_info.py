"""exchangeInfo through one Redis cache shared by every process (the design's binance-proxy).

Many callers cost one upstream request per TTL: a stale copy is refreshed by one caller holding
a lease while the others keep serving the copy they have. When the exchange fails, the last good
copy is served with its age; only a cache that never held a good copy is an error.
"""

import json
import logging
import time
from dataclasses import dataclass

import requests
from django.conf import settings

from common.errors import ApplicationError
from common.locks import redis_lease
from common.redis import get_redis
from exchange.errors import ExchangeError
from exchange.factory import build_client

logger = logging.getLogger(__name__)

DOCUMENT_KEY = "exchange:info:document"
FETCHED_AT_KEY = "exchange:info:fetched_at"
REFRESH_LEASE_KEY = "exchange:info:refresh"
REFRESH_LEASE_SEC = 30
WAIT_FOR_FIRST_COPY_SEC = 10


class ExchangeInfoUnavailable(ApplicationError):
    code = "exchange_unavailable"
    http_status = 503


@dataclass(frozen=True)
class ExchangeInfoCopy:
    document: str
    fetched_at: float
    refreshed_now: bool
    refresh_error: str | None = None

    def age_sec(self, now: float | None = None) -> float:
        return max(0.0, (now or time.time()) - self.fetched_at)

    @property
    def symbols(self) -> list[dict]:
        return json.loads(self.document)["symbols"]


def exchange_info_get() -> ExchangeInfoCopy:
    """The cached exchangeInfo, refreshed from the exchange when older than the TTL."""
    redis = get_redis()
    cached = _cached_copy()
    if cached and cached.age_sec() < settings.EXCHANGE_INFO_CACHE_TTL_SEC:
        return cached
    with redis_lease(redis, REFRESH_LEASE_KEY, ttl_sec=REFRESH_LEASE_SEC) as leader:
        if leader:
            return _refresh(previous=cached)
    if cached:
        return cached
    return _wait_for_first_copy()


def _refresh(*, previous: ExchangeInfoCopy | None) -> ExchangeInfoCopy:
    try:
        document = _fetch_upstream()
    except (ExchangeError, requests.RequestException, ValueError) as exc:
        cause = f"{type(exc).__name__}: {exc}"
        logger.warning("exchangeInfo refresh failed", extra={"cause": cause})
        if previous:
            return ExchangeInfoCopy(
                previous.document, previous.fetched_at, refreshed_now=False, refresh_error=cause
            )
        raise ExchangeInfoUnavailable(
            f"exchangeInfo is unavailable and no earlier copy exists ({cause})"
        ) from exc
    fetched_at = time.time()
    get_redis().mset({DOCUMENT_KEY: document, FETCHED_AT_KEY: repr(fetched_at)})
    return ExchangeInfoCopy(document, fetched_at, refreshed_now=True)


def _fetch_upstream() -> str:
    """The exchangeInfo JSON document, checked to hold a symbols list."""
    if settings.EXCHANGE_INFO_PROXY_URL:
        response = requests.get(settings.EXCHANGE_INFO_PROXY_URL, timeout=(3, 15))
        response.raise_for_status()
        document = response.json()
    else:
        with build_client("liquidity") as client:
            document = client.exchange_info_document()
    if not isinstance(document, dict) or not isinstance(document.get("symbols"), list):
        raise ValueError("exchangeInfo has no symbols list")
    return json.dumps(document, separators=(",", ":"))


def _cached_copy() -> ExchangeInfoCopy | None:
    document, fetched_at = get_redis().mget(DOCUMENT_KEY, FETCHED_AT_KEY)
    if document is None or fetched_at is None:
        return None
    return ExchangeInfoCopy(document, float(fetched_at), refreshed_now=False)


def _wait_for_first_copy() -> ExchangeInfoCopy:
    """Another process is fetching the very first copy: wait for it rather than fetch again."""
    deadline = time.monotonic() + WAIT_FOR_FIRST_COPY_SEC
    while time.monotonic() < deadline:
        time.sleep(0.1)
        cached = _cached_copy()
        if cached:
            return cached
    raise ExchangeInfoUnavailable("exchangeInfo is being fetched by another process; try again")
