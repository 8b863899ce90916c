"""Binance USDⓈ-M futures REST client (public market data) on the shared request budget.

Every attempt, retries included, is admitted by ``RequestBudget.acquire`` with the endpoint's
weight from ``exchange.weights`` before it leaves. Responses are parsed into frozen
dataclasses: decimals as ``Decimal``, times as aware UTC ``datetime``. Transient failures (5xx,
408, timeouts, connection errors, garbage bodies) are retried with capped exponential backoff
and jitter; 4xx answers are not. A 429 or 418 sets the shared back-off every process obeys.

HTTP goes through urllib3's connection pools directly (kept-alive connections, the
environment's proxy and CA bundle read once in ``http_pool_for``): requests' per-call
preparation cost more CPU than the rest of a poll's HTTP work.
"""

import asyncio
import email.utils
import json
import logging
import math
import os
import random
import re
import ssl
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any, TypeVar, overload
from urllib.parse import urlencode

import requests.utils
import urllib3
from urllib3.exceptions import HTTPError as Urllib3Error
from urllib3.exceptions import NewConnectionError
from urllib3.exceptions import TimeoutError as Urllib3Timeout

from common.timeutil import ms_from_datetime
from exchange.async_http import AsyncHttpPool, BodyTooLarge, HttpFailure, HttpTimeout
from exchange.budget import MAX_BACKOFF_SECONDS, Booking, RequestBudget
from exchange.errors import (
    BINANCE_INVALID_SYMBOL,
    BadRequest,
    ExchangeError,
    ExchangeUnavailable,
    ImplausibleAnswer,
    InvalidResponse,
    InvalidSymbol,
    IpBanned,
    RateLimited,
)
from exchange.weights import is_futures_data, request_weight

logger = logging.getLogger(__name__)

T = TypeVar("T")

USED_WEIGHT_HEADER = "X-MBX-USED-WEIGHT-1M"
OPEN_INTEREST_PATH = "/fapi/v1/openInterest"
USER_AGENT = "volspike-oi/0.1"
# What requests sent by default before, so the exchange sees the same request.
REQUEST_HEADERS = {
    "User-Agent": USER_AGENT,
    "Accept-Encoding": "gzip, deflate",
    "Accept": "*/*",
    "Connection": "keep-alive",
}
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
BAN_UNTIL_RE = re.compile(r"banned until (\d{10,16})")
DEFAULT_BAN_SECONDS = 120.0  # Binance's shortest ban; used when a 418 says nothing else
OI_HIST_PERIODS = frozenset({"5m", "15m", "30m", "1h", "2h", "4h", "6h", "12h", "1d"})
KLINE_INTERVALS = frozenset(
    {"1m", "3m", "5m", "15m", "30m", "1h", "2h", "4h", "6h", "8h", "12h", "1d", "3d", "1w", "1M"}
)
PARSE_ERRORS = (KeyError, IndexError, TypeError, ValueError, InvalidOperation, OverflowError)
# A sample time may lead the exchange's Date header by this much (the header is truncated to the
# second) before it is refused as impossible.
DEFAULT_MAX_TIME_AHEAD_SEC = 10.0
# The exchange's Date header is believed only this far ahead of our own clock, so a hostile Date
# cannot vouch for a sample dated a day ahead.
MAX_CLOCK_DISAGREEMENT_SEC = 60.0


def _decimal(value: Any) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, str | int | Decimal):
        raise TypeError(f"expected a decimal string, got {type(value).__name__}")
    number = Decimal(value)
    if not number.is_finite():
        raise ValueError(f"not a finite number: {value!r}")
    return number


def _optional_decimal(value: Any) -> Decimal | None:
    return None if value is None or value == "" else _decimal(value)


def _int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"expected an integer, got {type(value).__name__}")
    return value


def _time(value: Any) -> datetime:
    """Epoch milliseconds (a JSON number; old payloads sent digit strings) to aware UTC."""
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    return EPOCH + timedelta(milliseconds=_int(value))


def _optional_time(value: Any) -> datetime | None:
    """Binance sends 0 for "no such time" (e.g. nextFundingTime of delivery contracts)."""
    return None if value in (0, None) else _time(value)


def _str(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected a string, got {type(value).__name__}")
    return value


def _dict(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise TypeError(f"expected an object, got {type(value).__name__}")
    return value


def _list(value: Any) -> list[Any]:
    if not isinstance(value, list):
        raise TypeError(f"expected an array, got {type(value).__name__}")
    return value


def _ms(moment: datetime | int | None) -> int | None:
    if moment is None or isinstance(moment, int):
        return moment
    if moment.tzinfo is None:
        raise ValueError("naive datetime; pass an aware UTC datetime")
    return ms_from_datetime(moment)


@dataclass(frozen=True, slots=True)
class RateLimit:
    rate_limit_type: str
    interval: str
    interval_num: int
    limit: int

    @classmethod
    def from_json(cls, data: Any) -> "RateLimit":
        data = _dict(data)
        return cls(
            rate_limit_type=_str(data["rateLimitType"]),
            interval=_str(data["interval"]),
            interval_num=_int(data["intervalNum"]),
            limit=_int(data["limit"]),
        )


@dataclass(frozen=True, slots=True)
class SymbolInfo:
    """One exchangeInfo symbol; ``raw`` keeps every field, filters included."""

    symbol: str
    pair: str
    contract_type: str
    status: str
    base_asset: str
    quote_asset: str
    margin_asset: str
    onboard_date: datetime | None
    delivery_date: datetime | None
    underlying_type: str
    underlying_sub_type: tuple[str, ...]
    tick_size: Decimal | None
    step_size: Decimal | None
    min_notional: Decimal | None
    raw: dict[str, Any] = field(repr=False, compare=False)

    @property
    def is_perpetual(self) -> bool:
        return self.contract_type in ("PERPETUAL", "TRADIFI_PERPETUAL")

    @property
    def is_trading(self) -> bool:
        return self.status == "TRADING"

    @classmethod
    def from_json(cls, data: Any) -> "SymbolInfo":
        data = _dict(data)
        filters = {_dict(item).get("filterType"): item for item in _list(data.get("filters", []))}
        return cls(
            symbol=_str(data["symbol"]),
            pair=_str(data.get("pair", "")),
            contract_type=_str(data.get("contractType", "")),
            status=_str(data["status"]),
            base_asset=_str(data.get("baseAsset", "")),
            quote_asset=_str(data.get("quoteAsset", "")),
            margin_asset=_str(data.get("marginAsset", "")),
            onboard_date=_optional_time(data.get("onboardDate")),
            delivery_date=_optional_time(data.get("deliveryDate")),
            underlying_type=_str(data.get("underlyingType", "")),
            underlying_sub_type=tuple(_str(s) for s in _list(data.get("underlyingSubType", []))),
            tick_size=_optional_decimal(filters.get("PRICE_FILTER", {}).get("tickSize")),
            step_size=_optional_decimal(filters.get("LOT_SIZE", {}).get("stepSize")),
            min_notional=_optional_decimal(filters.get("MIN_NOTIONAL", {}).get("notional")),
            raw=data,
        )


@dataclass(frozen=True, slots=True)
class ExchangeInfo:
    timezone: str
    server_time: datetime
    rate_limits: tuple[RateLimit, ...]
    symbols: tuple[SymbolInfo, ...]

    @property
    def request_weight_per_minute(self) -> int | None:
        """The REQUEST_WEIGHT limit per minute, if the exchange states one."""
        for rate_limit in self.rate_limits:
            if rate_limit.rate_limit_type == "REQUEST_WEIGHT" and rate_limit.interval == "MINUTE":
                return rate_limit.limit // max(rate_limit.interval_num, 1)
        return None

    @property
    def raw_symbols(self) -> list[dict[str, Any]]:
        return [info.raw for info in self.symbols]

    @classmethod
    def from_json(cls, data: Any) -> "ExchangeInfo":
        data = _dict(data)
        return cls(
            timezone=_str(data.get("timezone", "UTC")),
            server_time=_time(data["serverTime"]),
            rate_limits=tuple(RateLimit.from_json(r) for r in _list(data.get("rateLimits", []))),
            symbols=tuple(SymbolInfo.from_json(s) for s in _list(data["symbols"])),
        )


@dataclass(frozen=True, slots=True)
class Ticker24hr:
    symbol: str
    price_change: Decimal
    price_change_percent: Decimal
    weighted_avg_price: Decimal
    last_price: Decimal
    last_qty: Decimal
    open_price: Decimal
    high_price: Decimal
    low_price: Decimal
    volume: Decimal
    quote_volume: Decimal
    open_time: datetime
    close_time: datetime
    first_id: int
    last_id: int
    count: int

    @classmethod
    def from_json(cls, data: Any) -> "Ticker24hr":
        data = _dict(data)
        return cls(
            symbol=_str(data["symbol"]),
            price_change=_decimal(data["priceChange"]),
            price_change_percent=_decimal(data["priceChangePercent"]),
            weighted_avg_price=_decimal(data["weightedAvgPrice"]),
            last_price=_decimal(data["lastPrice"]),
            last_qty=_decimal(data["lastQty"]),
            open_price=_decimal(data["openPrice"]),
            high_price=_decimal(data["highPrice"]),
            low_price=_decimal(data["lowPrice"]),
            volume=_decimal(data["volume"]),
            quote_volume=_decimal(data["quoteVolume"]),
            open_time=_time(data["openTime"]),
            close_time=_time(data["closeTime"]),
            first_id=_int(data["firstId"]),
            last_id=_int(data["lastId"]),
            count=_int(data["count"]),
        )


@dataclass(frozen=True, slots=True)
class OpenInterest:
    symbol: str
    open_interest: Decimal
    time: datetime

    @classmethod
    def from_json(cls, data: Any) -> "OpenInterest":
        data = _dict(data)
        return cls(
            symbol=_str(data["symbol"]),
            open_interest=_decimal(data["openInterest"]),
            time=_time(data["time"]),
        )


@dataclass(frozen=True, slots=True)
class PremiumIndex:
    symbol: str
    mark_price: Decimal
    index_price: Decimal
    estimated_settle_price: Decimal
    last_funding_rate: Decimal
    interest_rate: Decimal
    next_funding_time: datetime | None
    time: datetime

    @classmethod
    def from_json(cls, data: Any) -> "PremiumIndex":
        data = _dict(data)
        return cls(
            symbol=_str(data["symbol"]),
            mark_price=_decimal(data["markPrice"]),
            index_price=_decimal(data["indexPrice"]),
            estimated_settle_price=_decimal(data["estimatedSettlePrice"]),
            last_funding_rate=_decimal(data["lastFundingRate"]),
            interest_rate=_decimal(data["interestRate"]),
            next_funding_time=_optional_time(data["nextFundingTime"]),
            time=_time(data["time"]),
        )


@dataclass(frozen=True, slots=True)
class OpenInterestHistEntry:
    symbol: str
    sum_open_interest: Decimal
    sum_open_interest_value: Decimal
    cmc_circulating_supply: Decimal | None
    timestamp: datetime

    @classmethod
    def from_json(cls, data: Any) -> "OpenInterestHistEntry":
        data = _dict(data)
        return cls(
            symbol=_str(data["symbol"]),
            sum_open_interest=_decimal(data["sumOpenInterest"]),
            sum_open_interest_value=_decimal(data["sumOpenInterestValue"]),
            cmc_circulating_supply=_optional_decimal(data.get("CMCCirculatingSupply")),
            timestamp=_time(data["timestamp"]),
        )


@dataclass(frozen=True, slots=True)
class Kline:
    open_time: datetime
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal
    close_time: datetime
    quote_volume: Decimal
    trades: int
    taker_buy_base_volume: Decimal
    taker_buy_quote_volume: Decimal

    @classmethod
    def from_json(cls, row: Any) -> "Kline":
        row = _list(row)
        return cls(
            open_time=_time(row[0]),
            open=_decimal(row[1]),
            high=_decimal(row[2]),
            low=_decimal(row[3]),
            close=_decimal(row[4]),
            volume=_decimal(row[5]),
            close_time=_time(row[6]),
            quote_volume=_decimal(row[7]),
            trades=_int(row[8]),
            taker_buy_base_volume=_decimal(row[9]),
            taker_buy_quote_volume=_decimal(row[10]),
        )


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON here")


def _retry_after_seconds(headers: Mapping[str, str]) -> float | None:
    """Retry-After in seconds, at most Binance's longest ban (3 days); None if absent or garbage."""
    raw = headers.get("Retry-After")
    try:
        seconds = float(raw) if raw is not None else None
    except ValueError:
        return None
    if seconds is None or not math.isfinite(seconds) or seconds < 0:
        return None
    return min(seconds, MAX_BACKOFF_SECONDS)


def _banned_until(message: str) -> datetime | None:
    """The "banned until <epoch ms>" of a 418, at most Binance's longest ban from now."""
    match = BAN_UNTIL_RE.search(message)
    if not match:
        return None
    latest_ms = (time.time() + MAX_BACKOFF_SECONDS) * 1000
    return EPOCH + timedelta(milliseconds=min(int(match.group(1)), latest_ms))


def _exchange_now(headers: Mapping[str, str]) -> datetime:
    """The exchange's clock from its Date header (rounded up to the next second, as the header
    truncates), believed at most MAX_CLOCK_DISAGREEMENT_SEC ahead of ours; ours without one."""
    local = datetime.now(tz=UTC)
    try:
        date = email.utils.parsedate_to_datetime(headers.get("Date") or "")
    except (TypeError, ValueError, IndexError, OverflowError):
        return local
    if date.tzinfo is None:
        return local
    return min(date + timedelta(seconds=1), local + timedelta(seconds=MAX_CLOCK_DISAGREEMENT_SEC))


def http_pool_for(base_url: str, *, maxsize: int = 4) -> urllib3.PoolManager:
    """Kept-alive HTTP connections to ``base_url``, through the environment's proxy.

    HTTPS_PROXY, HTTP_PROXY, ALL_PROXY and NO_PROXY (with credentials in the proxy URL) and
    REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE apply as they did with requests; they are read once,
    here, not on every request. Without a CA bundle set, certifi's is used (as requests did).
    """
    ca_bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
    ca_bundle = ca_bundle or requests.utils.DEFAULT_CA_BUNDLE_PATH
    tls: dict[str, Any] = {"cert_reqs": "CERT_REQUIRED"}
    if os.path.isdir(ca_bundle):
        tls["ca_cert_dir"] = ca_bundle
    else:
        tls["ca_certs"] = ca_bundle
    proxies = requests.utils.get_environ_proxies(base_url)
    proxy = requests.utils.select_proxy(base_url, proxies) if proxies else None
    if proxy:
        username, password = requests.utils.get_auth_from_url(proxy)
        proxy_headers = (
            urllib3.util.make_headers(proxy_basic_auth=f"{username}:{password}")
            if username
            else None
        )
        return urllib3.ProxyManager(
            proxy, num_pools=2, maxsize=maxsize, proxy_headers=proxy_headers, **tls
        )
    return urllib3.PoolManager(num_pools=2, maxsize=maxsize, **tls)


class BinanceFuturesClient:
    """Public USDⓈ-M futures market data, every request admitted by the shared ``budget``.

    ``max_wait`` bounds how long one call may wait for the budget and between retries before
    it raises; each HTTP attempt is bounded by ``connect_timeout`` and ``read_timeout`` (the
    latter for the whole body, not per socket read).
    """

    def __init__(
        self,
        base_url: str,
        budget: RequestBudget,
        *,
        consumer: str = "default",
        connect_timeout: float = 3.0,
        read_timeout: float = 10.0,
        max_retries: int = 3,
        retry_base_delay: float = 0.2,
        retry_max_delay: float = 5.0,
        max_wait: float = 30.0,
        max_body_bytes: int = 32 * 1024 * 1024,
        max_time_ahead: float = DEFAULT_MAX_TIME_AHEAD_SEC,
        http: urllib3.PoolManager | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.budget = budget
        self.consumer = consumer
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.max_retries = max_retries
        self.retry_base_delay = retry_base_delay
        self.retry_max_delay = retry_max_delay
        self.max_wait = max_wait
        self.max_body_bytes = max_body_bytes
        self.max_time_ahead = timedelta(seconds=max_time_ahead)
        self.http = http or http_pool_for(self.base_url)
        self._timeout = urllib3.Timeout(connect=connect_timeout, read=read_timeout)
        # Without a proxy, every request goes straight to the base URL's connection pool: no
        # URL parsing and pool lookup per request. (Through a proxy, the manager routes it.)
        self._pool: urllib3.HTTPConnectionPool | None = None
        if not isinstance(self.http, urllib3.ProxyManager):
            self._pool = self.http.connection_from_url(self.base_url)
        self._path_prefix = urllib3.util.parse_url(self.base_url).path or ""
        self._sleep = sleep
        self._async_http: AsyncHttpPool | None = None
        self.last_used_weight: int | None = None
        self.attempts = 0

    def close(self) -> None:
        self.budget.flush_outcomes()
        self.http.clear()
        if self._async_http is not None:
            self._async_http.close()

    def __enter__(self) -> "BinanceFuturesClient":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # --- endpoints ---------------------------------------------------------------------------

    def ping(self) -> None:
        self._get("/fapi/v1/ping", {}, _dict)

    def server_time(self) -> datetime:
        return self._get("/fapi/v1/time", {}, lambda data: _time(_dict(data)["serverTime"]))

    def exchange_info(self) -> ExchangeInfo:
        """Symbols and limits; the REQUEST_WEIGHT limit found is shared with the budget."""
        info, _ = self._exchange_info_with_document()
        return info

    def exchange_info_document(self) -> dict[str, Any]:
        """exchangeInfo exactly as the exchange sent it (for the proxy), checked to parse."""
        _, document = self._exchange_info_with_document()
        return document

    def _exchange_info_with_document(self) -> tuple[ExchangeInfo, dict[str, Any]]:
        info, document = self._get(
            "/fapi/v1/exchangeInfo", {}, lambda data: (ExchangeInfo.from_json(data), _dict(data))
        )
        limit = info.request_weight_per_minute
        if limit and limit != self.budget.ip_limit:
            previous = self.budget.ip_limit
            accepted = self.budget.set_ip_limit(limit)
            if accepted is None:
                logger.warning(
                    "exchange weight limit %s/min ignored: below the sane band; keeping %s",
                    limit,
                    previous,
                )
            elif accepted != previous:
                logger.info("exchange weight limit %s/min: using %s (was %s)", limit, accepted,
                            previous)  # fmt: skip
        return info, document

    @overload
    def ticker_24hr(self, symbol: str) -> Ticker24hr: ...
    @overload
    def ticker_24hr(self, symbol: None = None) -> list[Ticker24hr]: ...
    def ticker_24hr(self, symbol: str | None = None) -> Ticker24hr | list[Ticker24hr]:
        """One symbol (weight 1) or all symbols (weight 40)."""
        if symbol is not None:
            return self._get(
                "/fapi/v1/ticker/24hr", {"symbol": symbol}, Ticker24hr.from_json,
                check=lambda answer, _: _check_symbol(answer.symbol, symbol),
            )  # fmt: skip
        return self._get("/fapi/v1/ticker/24hr", {}, _list_of(Ticker24hr.from_json))

    def open_interest(self, symbol: str) -> OpenInterest:
        """The symbol's open interest; an answer for another symbol, or dated ahead of the
        exchange's own clock (its Date header), raises ``ImplausibleAnswer``."""
        return self._get(
            OPEN_INTEREST_PATH, {"symbol": symbol}, OpenInterest.from_json,
            check=self._open_interest_check(symbol),
        )  # fmt: skip

    def _open_interest_check(self, symbol: str) -> Callable[[OpenInterest, datetime], None]:
        def check(answer: OpenInterest, exchange_now: datetime) -> None:
            _check_symbol(answer.symbol, symbol)
            if answer.time > exchange_now + self.max_time_ahead:
                raise ImplausibleAnswer(
                    f"{symbol} sample time {answer.time.isoformat()} is "
                    f"{(answer.time - exchange_now).total_seconds():.0f}s ahead of the exchange's "
                    f"clock (at most {self.max_time_ahead.total_seconds():.0f}s)",
                    path=OPEN_INTEREST_PATH,
                )

        return check

    @overload
    def premium_index(self, symbol: str) -> PremiumIndex: ...
    @overload
    def premium_index(self, symbol: None = None) -> list[PremiumIndex]: ...
    def premium_index(self, symbol: str | None = None) -> PremiumIndex | list[PremiumIndex]:
        """Mark price and funding of one symbol (weight 1) or all symbols (weight 10)."""
        if symbol is not None:
            return self._get(
                "/fapi/v1/premiumIndex", {"symbol": symbol}, PremiumIndex.from_json,
                check=lambda answer, _: _check_symbol(answer.symbol, symbol),
            )  # fmt: skip
        return self._get("/fapi/v1/premiumIndex", {}, _list_of(PremiumIndex.from_json))

    def open_interest_hist(
        self,
        symbol: str,
        period: str,
        limit: int | None = None,
        start_time: datetime | int | None = None,
        end_time: datetime | int | None = None,
    ) -> list[OpenInterestHistEntry]:
        """Open-interest statistics, oldest first (weight 0; its own 1000 requests / 5 min)."""
        if period not in OI_HIST_PERIODS:
            raise ValueError(f"period must be one of {sorted(OI_HIST_PERIODS)}")
        if limit is not None and not 1 <= limit <= 500:
            raise ValueError("limit must be in 1..500")
        params = _params(
            symbol=symbol, period=period, limit=limit, startTime=_ms(start_time),
            endTime=_ms(end_time),
        )  # fmt: skip
        return self._get(
            "/futures/data/openInterestHist", params, _list_of(OpenInterestHistEntry.from_json)
        )

    def klines(
        self,
        symbol: str,
        interval: str,
        limit: int | None = None,
        start_time: datetime | int | None = None,
        end_time: datetime | int | None = None,
    ) -> list[Kline]:
        """Candles, oldest first; weight 1/2/5/10 by ``limit`` (default 500, i.e. 5)."""
        if interval not in KLINE_INTERVALS:
            raise ValueError(f"interval must be one of {sorted(KLINE_INTERVALS)}")
        if limit is not None and not 1 <= limit <= 1500:
            raise ValueError("limit must be in 1..1500")
        params = _params(
            symbol=symbol, interval=interval, limit=limit, startTime=_ms(start_time),
            endTime=_ms(end_time),
        )  # fmt: skip
        return self._get("/fapi/v1/klines", params, _list_of(Kline.from_json))

    # --- transport ---------------------------------------------------------------------------

    def _get(
        self,
        path: str,
        params: dict[str, Any],
        parse: Callable[[Any], T],
        *,
        check: Callable[[T, datetime], None] | None = None,
    ) -> T:
        """One admitted, retried request; ``check(answer, exchange_now)`` may refuse the parsed
        answer (``ImplausibleAnswer``, not retried)."""
        weight = request_weight(path, params)
        futures_data = is_futures_data(path)
        deadline = time.monotonic() + self.max_wait
        failures = 0
        while True:
            self.budget.acquire(
                weight,
                consumer=self.consumer,
                futures_data=futures_data,
                max_wait=max(deadline - time.monotonic(), 0.0),
            )
            try:
                return self._attempt(path, params, parse, check)
            except ExchangeUnavailable as exc:
                failures += 1
                delay = self._retry_delay(failures)
                if failures > self.max_retries or time.monotonic() + delay > deadline:
                    raise
                logger.warning(
                    "retrying %s in %.2fs after attempt %d failed: %s", path, delay, failures, exc
                )
                self._sleep(delay)

    def _retry_delay(self, failures: int) -> float:
        """Capped exponential backoff with equal jitter: half fixed, half random."""
        ceiling = min(self.retry_max_delay, self.retry_base_delay * 2 ** (failures - 1))
        return ceiling / 2 + random.uniform(0, ceiling / 2)

    def _attempt(
        self,
        path: str,
        params: dict[str, Any],
        parse: Callable[[Any], T],
        check: Callable[[T, datetime], None] | None = None,
    ) -> T:
        self.attempts += 1
        try:
            query = "?" + urlencode(params) if params else ""
            # the base URL's own pool (a path is enough), or the pool manager (a whole URL)
            opener, url = (
                (self._pool, self._path_prefix + path + query)
                if self._pool is not None
                else (self.http, self.base_url + path + query)
            )
            response = opener.urlopen(
                "GET",
                url,
                headers=REQUEST_HEADERS,
                timeout=self._timeout,
                retries=False,
                redirect=False,
                preload_content=False,
            )
        except NewConnectionError as exc:  # a subclass of urllib3's TimeoutError, but refused
            self.budget.record_outcome("connection_error")
            raise ExchangeUnavailable(f"connection failed: {exc}", path=path) from exc
        except Urllib3Timeout as exc:
            self.budget.record_outcome("timeout")
            raise ExchangeUnavailable(f"timed out: {exc}", path=path) from exc
        except (Urllib3Error, OSError) as exc:
            self.budget.record_outcome("connection_error")
            raise ExchangeUnavailable(f"connection failed: {exc}", path=path) from exc
        self.budget.record_outcome(str(response.status))
        complete = False
        try:
            self._observe_weight(response.headers)
            body = self._read_body(response, path)
            complete = True
        finally:
            if not complete:  # a half-read connection is not reused
                response.close()
            response.release_conn()
        return self._answer(path, response.status, response.reason, response.headers, body,
                            parse, check)  # fmt: skip

    def _answer(
        self,
        path: str,
        status: int,
        reason: str | None,
        headers: Mapping[str, str],
        body: bytes,
        parse: Callable[[Any], T],
        check: Callable[[T, datetime], None] | None,
    ) -> T:
        """A complete answer, parsed (and checked), or the error it stands for (a 429 or 418
        sets the shared back-off)."""
        if 200 <= status < 300:
            try:
                answer = parse(self._decode(body, status, path))
            except InvalidResponse:
                raise
            except PARSE_ERRORS as exc:
                raise InvalidResponse(
                    f"unexpected response shape: {exc!r}", status=status, path=path
                ) from exc
            if check is not None:
                check(answer, _exchange_now(headers))
            return answer
        try:
            error = self._error(status, reason, headers, body, path)
        except (OverflowError, ValueError) as exc:  # never anything but an ExchangeError
            error = InvalidResponse(f"unreadable error answer: {exc!r}", status=status, path=path)
        raise error

    # --- the same from a coroutine (a poller process's event loop) ---------------------------

    @property
    def sends_async(self) -> bool:
        """Whether ``open_interest_async`` can be used: not through a proxy (it goes straight
        to the base URL; through a proxy only the blocking calls go)."""
        return self._pool is not None

    async def open_interest_async(
        self, symbol: str, *, booked: Booking | None = None
    ) -> OpenInterest:
        """``open_interest`` from a coroutine: the budget waited for and the answer awaited on
        the running loop (see ``sends_async``). ``booked``: its first booking, from
        ``open_interest_book_ahead``."""
        return await self._get_async(
            OPEN_INTEREST_PATH, {"symbol": symbol}, OpenInterest.from_json,
            check=self._open_interest_check(symbol), booked=booked,
        )  # fmt: skip

    def open_interest_book_ahead(self, count: int) -> list[Booking]:
        """The first budget booking of ``count`` ``open_interest_async`` calls, in one round trip
        (``RequestBudget.book_ahead``), each to be handed to its call."""
        weight = request_weight(OPEN_INTEREST_PATH, {"symbol": ""})
        return self.budget.book_ahead(count, weight, consumer=self.consumer, max_wait=self.max_wait)

    async def _get_async(
        self,
        path: str,
        params: dict[str, Any],
        parse: Callable[[Any], T],
        *,
        check: Callable[[T, datetime], None] | None = None,
        booked: Booking | None = None,
    ) -> T:
        """``_get`` on the running loop: the same admission and retries (``booked``: the first
        attempt's booking, made ahead)."""
        weight = request_weight(path, params)
        futures_data = is_futures_data(path)
        deadline = booked.deadline if booked is not None else time.monotonic() + self.max_wait
        failures = 0
        while True:
            await self.budget.acquire_async(
                weight,
                consumer=self.consumer,
                futures_data=futures_data,
                max_wait=max(deadline - time.monotonic(), 0.0),
                booked=booked,
            )
            booked = None  # a retry books again
            try:
                return await self._attempt_async(path, params, parse, check)
            except ExchangeUnavailable as exc:
                failures += 1
                delay = self._retry_delay(failures)
                if failures > self.max_retries or time.monotonic() + delay > deadline:
                    raise
                logger.warning(
                    "retrying %s in %.2fs after attempt %d failed: %s", path, delay, failures, exc
                )
                await asyncio.sleep(delay)

    async def _attempt_async(
        self,
        path: str,
        params: dict[str, Any],
        parse: Callable[[Any], T],
        check: Callable[[T, datetime], None] | None = None,
    ) -> T:
        if self._async_http is None:  # made on the loop that uses it
            self._async_http = AsyncHttpPool(
                self.base_url, connect_timeout=self.connect_timeout, ssl_context=self._tls_context()
            )
        self.attempts += 1
        query = "?" + urlencode(params) if params else ""
        try:
            answer = await self._async_http.get(
                self._path_prefix + path + query, REQUEST_HEADERS, timeout=self.read_timeout,
                max_body=self.max_body_bytes,
            )  # fmt: skip
        except HttpTimeout as exc:
            self.budget.record_outcome("timeout")
            raise ExchangeUnavailable(f"timed out: {exc}", path=path) from exc
        except HttpFailure as exc:
            self.budget.record_outcome("connection_error")
            raise ExchangeUnavailable(f"connection failed: {exc}", path=path) from exc
        except BodyTooLarge as exc:
            self.budget.record_outcome(str(exc.status))
            raise InvalidResponse(str(exc), status=exc.status, path=path) from exc
        self.budget.record_outcome(str(answer.status))
        self._observe_weight(answer.headers)
        return self._answer(
            path, answer.status, answer.reason, answer.headers, answer.body, parse, check
        )

    def _tls_context(self) -> ssl.SSLContext | None:
        """For an https base URL: the CA bundle the blocking pool verifies with."""
        pool = self._pool
        if not isinstance(pool, urllib3.HTTPSConnectionPool):
            return None
        return ssl.create_default_context(cafile=pool.ca_certs, capath=pool.ca_cert_dir)

    def _read_body(self, response: urllib3.BaseHTTPResponse, path: str) -> bytes:
        deadline = time.monotonic() + self.read_timeout
        chunks: list[bytes] = []
        size = 0
        try:
            for chunk in response.stream(65536):
                chunks.append(chunk)
                size += len(chunk)
                if size > self.max_body_bytes:
                    raise InvalidResponse(
                        f"body larger than {self.max_body_bytes} bytes",
                        status=response.status,
                        path=path,
                    )
                if time.monotonic() > deadline:
                    raise ExchangeUnavailable(
                        f"body not received within {self.read_timeout}s",
                        status=response.status,
                        path=path,
                    )
        except (Urllib3Error, OSError) as exc:
            raise ExchangeUnavailable(
                f"body broken off: {exc}", status=response.status, path=path
            ) from exc
        return b"".join(chunks)

    def _observe_weight(self, headers: Mapping[str, str]) -> None:
        raw = headers.get(USED_WEIGHT_HEADER)
        if raw is None:
            return
        try:
            used = int(raw)
        except ValueError:
            return
        self.last_used_weight = used
        if self.budget.observe_used_weight(used):
            logger.warning(
                "exchange reports %s weight used this minute; all consumers paused", used
            )

    @staticmethod
    def _decode(body: bytes, status: int, path: str) -> Any:
        try:
            return json.loads(body, parse_float=Decimal, parse_constant=_reject_constant)
        except (UnicodeDecodeError, ValueError) as exc:
            snippet = body[:80].decode("utf-8", "replace")
            raise InvalidResponse(f"not JSON: {snippet!r}", status=status, path=path) from exc

    def _error(
        self, status: int, reason: str | None, headers: Mapping[str, str], body: bytes, path: str
    ) -> ExchangeError:
        code: int | None = None
        message = reason or f"HTTP {status}"
        try:
            data = json.loads(body)
            if isinstance(data, dict) and isinstance(data.get("code"), int):
                code = data["code"]
                message = str(data.get("msg", message))
        except (UnicodeDecodeError, ValueError):
            pass
        details = {"status": status, "code": code, "path": path}

        if status == 418:
            retry_at = self._back_off_for_ban(headers, message, path)
            logger.error("IP banned until %s: %s", retry_at.isoformat(), message)
            return IpBanned(message, retry_at=retry_at, **details)
        if status == 429:
            retry_after = _retry_after_seconds(headers)
            if retry_after is not None:
                retry_at = self.budget.back_off(seconds=retry_after, reason=f"429 {path}")
            else:
                retry_at = self.budget.pause_until_next_minute(reason=f"429 {path}")
            logger.error("rate limited on %s, all consumers back off until %s", path, retry_at)
            return RateLimited(message, retry_at=retry_at, **details)
        if status == 408 or status >= 500:
            return ExchangeUnavailable(message, **details)
        if 400 <= status < 500:
            if code == BINANCE_INVALID_SYMBOL:
                return InvalidSymbol(message, **details)
            return BadRequest(message, **details)
        return InvalidResponse(f"unexpected HTTP status: {message}", **details)

    def _back_off_for_ban(self, headers: Mapping[str, str], message: str, path: str) -> datetime:
        """Back off until the later of Retry-After and the "banned until <epoch ms>" in the message.

        Retry-After is relative, so it is measured on the budget's (Redis) clock.
        """
        reason = f"418 {path}"
        retry_at = None
        retry_after = _retry_after_seconds(headers)
        if retry_after is not None:
            retry_at = self.budget.back_off(seconds=retry_after, reason=reason)
        banned_until = _banned_until(message)
        if banned_until is not None:
            retry_at = self.budget.back_off(until=banned_until, reason=reason) or retry_at
        if retry_at is None:
            retry_at = self.budget.back_off(seconds=DEFAULT_BAN_SECONDS, reason=reason)
        assert retry_at is not None
        return retry_at


def _check_symbol(answered: str, asked: str) -> None:
    if answered != asked:
        raise ImplausibleAnswer(f"asked for {asked}, the answer is for {answered!r}")


def _params(**values: Any) -> dict[str, Any]:
    return {name: value for name, value in values.items() if value is not None}


def _list_of(parse_item: Callable[[Any], T]) -> Callable[[Any], list[T]]:
    def parse(data: Any) -> list[T]:
        return [parse_item(item) for item in _list(data)]

    return parse
