"""exchangeInfo through one Redis cache shared by every process (the design's binance-proxy).

Many callers cost one upstream request per TTL: a stale copy is refreshed by one caller holding
a lease while the others keep serving the copy they have. When the exchange fails, the last good
copy is served with its age; only a cache that never held a good copy is an error.

An outage is not amplified: a refresh on a request's path makes at most one retry (2 upstream
calls) and waits at most a few seconds for the request budget, and after a failure no caller
refreshes again for a back-off (negative cache: 15 s, doubling per consecutive failure up to
5 min). Callers are told only "unavailable"; the upstream error (which names hosts and ports)
goes to the log.
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
FAILURES_KEY = "exchange:info:refresh_failures"
RETRY_AFTER_KEY = "exchange:info:refresh_retry_after"
REFRESH_LEASE_SEC = 30
WAIT_FOR_FIRST_COPY_SEC = 10
FAILURE_BACKOFF_SEC = 15
FAILURE_BACKOFF_MAX_SEC = 300
# On a request's path: one retry at most, and no long wait for the request budget.
REQUEST_PATH_RETRIES = 1
REQUEST_PATH_BUDGET_WAIT_SEC = 3.0
UNAVAILABLE_MESSAGE = "exchangeInfo is unavailable from the exchange; try again later"


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


def exchange_info_get(*, max_retries: int | None = REQUEST_PATH_RETRIES) -> ExchangeInfoCopy:
    """The cached exchangeInfo, refreshed from the exchange when older than the TTL (by one
    caller at a time, and not while a failed refresh's back-off lasts). ``max_retries=None``
    (the background job) uses the client's configured retries and budget wait."""
    redis = get_redis()
    cached = _cached_copy()
    if cached and cached.age_sec() < settings.EXCHANGE_INFO_CACHE_TTL_SEC:
        return cached
    backing_off = redis.pttl(RETRY_AFTER_KEY)
    if backing_off > 0:
        if cached:
            return _stale(cached, "the last refresh failed; backing off")
        raise ExchangeInfoUnavailable(UNAVAILABLE_MESSAGE)
    with redis_lease(redis, REFRESH_LEASE_KEY, ttl_sec=REFRESH_LEASE_SEC) as leader:
        if leader:
            return _refresh(previous=cached, max_retries=max_retries)
    if cached:
        return cached
    return _wait_for_first_copy()


def _stale(copy: ExchangeInfoCopy, cause: str) -> ExchangeInfoCopy:
    return ExchangeInfoCopy(
        copy.document, copy.fetched_at, refreshed_now=False, refresh_error=cause
    )


def _refresh(*, previous: ExchangeInfoCopy | None, max_retries: int | None) -> ExchangeInfoCopy:
    try:
        document = _fetch_upstream(max_retries=max_retries)
    except (ExchangeError, requests.RequestException, ValueError) as exc:
        cause = f"{type(exc).__name__}: {exc}"
        backoff = _failure_record()
        logger.warning(
            "exchangeInfo refresh failed", extra={"cause": cause, "backoff_sec": backoff}
        )
        if previous:
            return _stale(previous, cause)
        raise ExchangeInfoUnavailable(UNAVAILABLE_MESSAGE) from exc
    fetched_at = time.time()
    redis = get_redis()
    redis.mset({DOCUMENT_KEY: document, FETCHED_AT_KEY: repr(fetched_at)})
    redis.delete(FAILURES_KEY, RETRY_AFTER_KEY)
    return ExchangeInfoCopy(document, fetched_at, refreshed_now=True)


def _failure_record() -> int:
    """Count a failed refresh and start its back-off; returns the back-off in seconds."""
    redis = get_redis()
    failures = redis.incr(FAILURES_KEY)
    redis.expire(FAILURES_KEY, 3600)
    backoff = min(FAILURE_BACKOFF_SEC * 2 ** min(failures - 1, 10), FAILURE_BACKOFF_MAX_SEC)
    redis.set(RETRY_AFTER_KEY, failures, ex=backoff)
    return backoff


def _fetch_upstream(*, max_retries: int | None) -> str:
    """The exchangeInfo JSON document, checked to hold a symbols list."""
    if settings.EXCHANGE_INFO_PROXY_URL:
        response = requests.get(settings.EXCHANGE_INFO_PROXY_URL, timeout=(3, 15))
        response.raise_for_status()
        document = response.json()
    else:
        limits = {}
        if max_retries is not None:
            limits = {"max_retries": max_retries, "max_wait": REQUEST_PATH_BUDGET_WAIT_SEC}
        with build_client("liquidity", **limits) as client:
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
    raise ExchangeInfoUnavailable(UNAVAILABLE_MESSAGE)
