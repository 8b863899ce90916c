"""The futures client against the real simulator over HTTP, on a budget in the real test Redis."""

import asyncio
import multiprocessing
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import redis as redis_lib
from django.conf import settings

from exchange.budget import BudgetConfig, RequestBudget
from exchange.client import BinanceFuturesClient, Kline, OpenInterestHistEntry
from exchange.errors import (
    BadRequest,
    BudgetExhausted,
    ExchangeUnavailable,
    InvalidResponse,
    InvalidSymbol,
    IpBanned,
    RateLimited,
)

SYMBOL = "BTCUSDT"


def budget_config(**overrides: object) -> BudgetConfig:
    options: dict[str, object] = {"egress_id": "client-test", "consumer_budgets": {}}
    options.update(overrides)
    return BudgetConfig(**options)  # type: ignore[arg-type]


def make_client(
    base_url: str, redis_client: redis_lib.Redis | str, **options: object
) -> BinanceFuturesClient:
    """A client on its own Redis connection; ``redis_client`` may be a URL (other processes)."""
    config = options.pop("config", None) or budget_config()
    redis_conn = (
        redis_lib.Redis.from_url(redis_client) if isinstance(redis_client, str) else redis_client
    )
    budget = RequestBudget(redis_conn, config)  # type: ignore[arg-type]
    options.setdefault("retry_base_delay", 0.01)
    options.setdefault("retry_max_delay", 0.05)
    return BinanceFuturesClient(base_url, budget, **options)  # type: ignore[arg-type]


def open_interest_of(client: BinanceFuturesClient, call: str):
    """One openInterest call, blocking or from a coroutine on an event loop (the poller's)."""
    if call == "loop":
        return asyncio.run(client.open_interest_async(SYMBOL))
    return client.open_interest(SYMBOL)


CALLS = ["blocking", "loop"]


def ip_stats(sim) -> dict:
    ips = sim.stats()["ips"]
    return ips.get("127.0.0.1", {"requests": 0, "count_429": 0, "count_418": 0, "endpoints": {}})


def assert_aware(moment: datetime) -> None:
    assert moment.tzinfo is not None and moment.utcoffset() == timedelta(0)


def test_every_endpoint_is_parsed_into_typed_values(sim, redis_client):
    sim.set_weight_limit(1800)
    client = make_client(sim.base_url, redis_client)
    now = datetime.now(tz=UTC)

    assert client.ping() is None
    server_time = client.server_time()
    assert_aware(server_time)
    assert abs(server_time - now) < timedelta(seconds=5)

    info = client.exchange_info()
    assert info.request_weight_per_minute == 1800
    assert client.budget.ip_limit == 1800
    assert redis_client.get(client.budget.keys["ip_limit"]) == "1800"  # shared with all processes
    assert len(info.symbols) >= 100
    btc = next(s for s in info.symbols if s.symbol == SYMBOL)
    assert btc.is_perpetual and btc.is_trading
    assert isinstance(btc.tick_size, Decimal) and btc.tick_size > 0
    assert_aware(btc.onboard_date)
    assert btc.raw["symbol"] == SYMBOL and "filters" in btc.raw
    assert len(info.raw_symbols) == len(info.symbols)

    ticker = client.ticker_24hr(SYMBOL)
    assert ticker.symbol == SYMBOL
    assert isinstance(ticker.last_price, Decimal) and ticker.last_price > 0
    assert isinstance(ticker.quote_volume, Decimal) and isinstance(ticker.count, int)
    assert_aware(ticker.close_time)
    assert ticker.open_time < ticker.close_time
    tickers = client.ticker_24hr()
    assert len(tickers) >= 100 and {t.symbol for t in tickers} >= {SYMBOL}

    oi = client.open_interest(SYMBOL)
    assert oi.symbol == SYMBOL
    assert isinstance(oi.open_interest, Decimal) and oi.open_interest > 0
    assert_aware(oi.time)
    assert abs(oi.time - now) < timedelta(seconds=10)

    mark = client.premium_index(SYMBOL)
    assert isinstance(mark.mark_price, Decimal) and isinstance(mark.last_funding_rate, Decimal)
    assert_aware(mark.time)
    assert mark.next_funding_time is None or mark.next_funding_time > now
    marks = client.premium_index()
    assert {m.symbol for m in marks} >= {SYMBOL}

    hist = client.open_interest_hist(SYMBOL, "5m", limit=12)
    assert len(hist) == 12
    assert all(isinstance(row, OpenInterestHistEntry) for row in hist)
    assert isinstance(hist[0].sum_open_interest_value, Decimal)
    assert_aware(hist[0].timestamp)
    assert [row.timestamp for row in hist] == sorted(row.timestamp for row in hist)
    assert hist[1].timestamp - hist[0].timestamp == timedelta(minutes=5)
    end = hist[-1].timestamp
    window = client.open_interest_hist(SYMBOL, "5m", start_time=end - timedelta(minutes=20),
                                       end_time=end)  # fmt: skip
    assert window[-1].timestamp == end and window[0].timestamp >= end - timedelta(minutes=20)

    candles = client.klines(SYMBOL, "1m", limit=3)
    assert len(candles) == 3 and all(isinstance(c, Kline) for c in candles)
    assert isinstance(candles[0].close, Decimal) and isinstance(candles[0].trades, int)
    assert candles[0].close_time == candles[0].open_time + timedelta(minutes=1) - timedelta(
        milliseconds=1
    )

    stats = ip_stats(sim)
    assert stats["count_429"] == 0
    assert stats["requests"] == client.attempts == client.budget.stats.acquired == 11
    assert stats["futures_data_used"] == 2
    if datetime.now(tz=UTC).replace(second=0, microsecond=0) == now.replace(
        second=0, microsecond=0
    ):
        # 1+1+1+1+40+1+1+10+0+0+1 = 57: the weight this client charged is what Binance charges
        assert stats["weight_used"] == client.last_used_weight == 57


def test_bad_requests_are_raised_with_binance_code_and_never_retried(sim, redis_client):
    client = make_client(sim.base_url, redis_client, max_retries=3)
    with pytest.raises(InvalidSymbol) as invalid:
        client.open_interest("NOSUCHUSDT")
    assert (invalid.value.status, invalid.value.code) == (400, -1121)
    assert invalid.value.message == "Invalid symbol."

    start = datetime.now(tz=UTC)
    with pytest.raises(BadRequest) as bad:
        client.klines(SYMBOL, "1m", limit=5, start_time=start, end_time=start - timedelta(hours=1))
    assert bad.value.code == -1023 and not isinstance(bad.value, InvalidSymbol)

    assert client.attempts == 2
    assert ip_stats(sim)["requests"] == 2
    with pytest.raises(ValueError):
        client.klines(SYMBOL, "7m")


FAULTS = [
    ("error_503", {"error_rate": 1.0, "error_status": 503}, ExchangeUnavailable, 503),
    ("error_500", {"error_rate": 1.0, "error_status": 500}, ExchangeUnavailable, 500),
    ("timeout", {"timeout_rate": 1.0}, ExchangeUnavailable, None),
    ("truncated", {"truncate_rate": 1.0}, InvalidResponse, 200),
    ("non_json", {"nonjson_rate": 1.0}, InvalidResponse, 200),
    ("html", {"html_rate": 1.0}, ExchangeUnavailable, 502),
]


@pytest.mark.parametrize("call", CALLS)
@pytest.mark.parametrize(
    ("fault", "settings_", "error", "status"), FAULTS, ids=[f[0] for f in FAULTS]
)
def test_each_fault_gives_its_error_after_bounded_retries(
    sim, redis_client, fault, settings_, error, status, call
):
    sim.set_faults(**settings_)
    client = make_client(sim.base_url, redis_client, max_retries=2, read_timeout=0.4)
    started = time.monotonic()
    with pytest.raises(error) as raised:
        open_interest_of(client, call)
    elapsed = time.monotonic() - started

    assert raised.value.status == status
    assert client.attempts == 3
    assert client.budget.stats.acquired == 3  # every retry is charged to the budget
    assert ip_stats(sim)["endpoints"]["/fapi/v1/openInterest"] == 3
    assert elapsed < (3 * 0.4 + 0.5 if fault == "timeout" else 0.5)
    if fault == "html":
        assert "<" not in raised.value.message  # the reason phrase, not the page


@pytest.mark.parametrize("call", CALLS)
def test_transient_faults_are_retried_until_an_answer_arrives(sim, redis_client, call):
    sim.set_faults(error_rate=0.5, truncate_rate=0.25, nonjson_rate=0.25, remaining=3)
    client = make_client(sim.base_url, redis_client, max_retries=3)
    oi = open_interest_of(client, call)
    assert oi.symbol == SYMBOL
    assert client.attempts == 4
    assert ip_stats(sim)["endpoints"]["/fapi/v1/openInterest"] == 4


def _call_after_backoff(base_url: str, redis_url: str, config: BudgetConfig, out) -> None:
    """Another process: first a fail-fast call, then one that may wait for the back-off."""
    client = make_client(base_url, redis_url, config=config, max_wait=0)
    try:
        client.open_interest(SYMBOL)
        out.put(("fail-fast call was sent", None, None))
        return
    except BudgetExhausted as exc:
        fail_fast = (exc.reason, exc.retry_at.timestamp())
    except Exception as exc:  # noqa: BLE001 - reported to the test process
        out.put((f"fail-fast call raised {exc!r}", None, None))
        return
    client.max_wait = 15
    oi = client.open_interest(SYMBOL)
    out.put((fail_fast, time.time(), str(oi.open_interest)))


def run_other_process(base_url: str, config: BudgetConfig) -> tuple:
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    worker = context.Process(
        target=_call_after_backoff, args=(base_url, settings.REDIS_URL, config, queue)
    )
    worker.start()
    result = queue.get(timeout=30)
    worker.join(timeout=10)
    return result


@pytest.mark.parametrize("call", CALLS)
@pytest.mark.parametrize(("status", "seconds"), [(429, 2.0), (418, 3.0)])
def test_429_and_418_stop_every_process_until_the_time_given(
    sim, redis_client, status, seconds, call
):
    config = budget_config()
    client = make_client(sim.base_url, redis_client, config=config, max_wait=0)
    until_ms = sim.force_rate_limit(status=status, seconds=seconds)

    with pytest.raises(RateLimited) as limited:
        open_interest_of(client, call)
    assert isinstance(limited.value, IpBanned) == (status == 418)
    assert limited.value.code == -1003 and limited.value.status == status
    retry_at = limited.value.retry_at
    assert retry_at is not None and retry_at.timestamp() * 1000 >= until_ms - 1
    assert client.attempts == 1

    with pytest.raises(BudgetExhausted) as blocked:  # this process is stopped too
        client.ping()
    assert blocked.value.reason == "backoff"

    fail_fast, sent_at, open_interest = run_other_process(sim.base_url, config)
    assert fail_fast[0] == "backoff", fail_fast
    assert fail_fast[1] == pytest.approx(retry_at.timestamp(), abs=0.01)
    assert sent_at >= retry_at.timestamp()
    assert Decimal(open_interest) > 0

    stats = ip_stats(sim)
    assert stats["requests"] == 2  # the rejected request and the one after the back-off
    assert stats[f"count_{status}"] == 1
    assert stats["count_429" if status == 418 else "count_418"] == 0


def test_weight_used_by_another_program_pauses_everyone_until_the_next_minute(sim, redis_client):
    sim.set_weight_limit(300)
    config = budget_config(ip_weight_limit=300)
    client = make_client(sim.base_url, redis_client, config=config, max_wait=0)
    assert config.pause_threshold() == 292
    for _ in range(7):  # another program on the same IP spends 280 weight
        assert sim.get("/fapi/v1/ticker/24hr").status_code == 200

    if datetime.now(tz=UTC).second > 56:
        time.sleep(4)  # let the other program's weight fall into the same minute as ours
        for _ in range(7):
            sim.get("/fapi/v1/ticker/24hr")
    for _ in range(20):
        client.open_interest(SYMBOL)
        if client.budget.backoff_until():
            break
    assert client.last_used_weight == 293
    until, reason = client.budget.backoff_until()
    assert reason.startswith("used-weight 293")
    assert until.second == 0 and until > datetime.now(tz=UTC)
    with pytest.raises(BudgetExhausted) as paused:
        client.open_interest(SYMBOL)
    assert paused.value.reason == "backoff"
    assert ip_stats(sim)["count_429"] == 0


def _hammer(
    base_url: str, redis_url: str, config: BudgetConfig, start_at: float, seconds: float, out
) -> None:
    client = make_client(base_url, redis_url, config=config, consumer="poller")
    sent: list[float] = []
    time.sleep(max(start_at - time.time(), 0))
    end = start_at + seconds
    errors = []
    while time.time() < end:
        client.max_wait = max(end - time.time(), 0)
        try:
            client.open_interest(SYMBOL)
        except BudgetExhausted:
            break
        except Exception as exc:  # noqa: BLE001 - reported to the test process
            errors.append(repr(exc))
            break
        sent.append(time.time())
    out.put((sent, client.attempts, errors))


def test_processes_on_one_budget_stay_under_it_and_get_no_429(sim, redis_client):
    config = budget_config(egress_id="mp-client", ip_weight_limit=600, burst=5)
    rate_per_s = config.ip_rate_per_min() / 60  # 565/min
    seconds = 5.0
    # The exchange allows barely more than the budget admits in these 5 s (47 + a burst of 5),
    # while four unthrottled processes would send hundreds of requests.
    exchange_limit = 56

    def measure() -> list:
        sim.reset()
        sim.set_weight_limit(exchange_limit)
        context = multiprocessing.get_context("spawn")
        queue = context.Queue()
        run_config = config
        start_at = time.time() + 2.0
        workers = [
            context.Process(
                target=_hammer,
                args=(sim.base_url, settings.REDIS_URL, run_config, start_at, seconds, queue),
            )
            for _ in range(4)
        ]
        for worker in workers:
            worker.start()
        results = [queue.get(timeout=60) for _ in workers]
        for worker in workers:
            worker.join(timeout=10)
        return results

    results = measure()

    assert [errors for _sent, _attempts, errors in results] == [[], [], [], []]
    sent = sorted(t for times, _attempts, _errors in results for t in times)
    assert all(times for times, _a, _e in results)
    span = sent[-1] - sent[0]
    assert len(sent) <= rate_per_s * span + config.burst + 1
    # the budget is used, not wasted (with room for a machine busy with a parallel test run)
    assert len(sent) >= 0.7 * rate_per_s * seconds
    stats = ip_stats(sim)
    assert stats["count_429"] == 0 and stats["count_418"] == 0
    assert stats["requests"] == sum(attempts for _s, attempts, _e in results) == len(sent)


def test_factory_builds_a_client_on_the_shared_budget_from_settings(sim, redis_client, settings):
    from exchange.factory import build_client

    settings.BINANCE_BASE_URL = sim.base_url
    settings.BINANCE_EGRESS_ID = "factory-test"
    settings.BINANCE_CONSUMER_BUDGETS = {"poller": 1500}
    settings.BINANCE_READ_TIMEOUT = 2.5
    poller, hourly = build_client("poller"), build_client("hourly")
    assert (poller.consumer, poller.base_url, poller.read_timeout) == ("poller", sim.base_url, 2.5)
    assert poller.budget.config.consumer_rate_per_min("poller") == 1500
    assert hourly.budget.config.consumer_rate_per_min("hourly") == 2260 - 1500
    assert poller.open_interest(SYMBOL).symbol == SYMBOL

    poller.budget.back_off(seconds=5, reason="test")
    hourly.max_wait = 0
    with pytest.raises(BudgetExhausted):  # one egress id: one budget, one back-off
        hourly.ping()
    assert redis_client.get("volspike:binance:{factory-test}:backoff_reason") == "test"


def test_exchange_info_document_is_the_raw_answer_and_teaches_the_budget(sim, redis_client):
    sim.set_weight_limit(1500)
    client = make_client(sim.base_url, redis_client)
    document = client.exchange_info_document()
    assert isinstance(document["serverTime"], int)
    assert {"symbols", "rateLimits", "assets"} <= set(document)
    assert isinstance(document["symbols"][0]["filters"], list)
    assert client.budget.ip_limit == 1500
    other = make_client(sim.base_url, settings.REDIS_URL)
    other.ping()
    assert other.budget.ip_limit == 1500


def test_calls_from_coroutines_at_once_are_each_admitted_and_answered(sim, redis_client):
    # the poller's loop: many polls in flight from one thread
    symbols = ["BTCUSDT", "ETHUSDT", "NOSUCHUSDT", "SOLUSDT", "XRPUSDT", "BNBUSDT"]
    client = make_client(sim.base_url, redis_client)

    async def at_once():
        calls = (client.open_interest_async(symbol) for symbol in symbols)
        return await asyncio.gather(*calls, return_exceptions=True)

    answers = asyncio.run(at_once())
    assert isinstance(answers.pop(2), InvalidSymbol)  # its own error; the others are answered
    assert [answer.symbol for answer in answers] == [s for s in symbols if s != "NOSUCHUSDT"]
    assert all(answer.open_interest > 0 for answer in answers)
    assert client.budget.stats.acquired == len(symbols)
    assert ip_stats(sim)["endpoints"]["/fapi/v1/openInterest"] == len(symbols)
