"""The liquidity job end to end: simulator, real Celery worker (and beat), Postgres and Redis."""

import itertools
import time
from decimal import Decimal

import pytest

from common.redis import get_redis
from liquidity.models import LiquidityMembershipEvent, LiquidSymbol, UniverseRefresh
from liquidity.services import (
    REDIS_META_KEY_PREFIX,
    REDIS_UNIVERSE_KEY,
    REDIS_UNIVERSE_VERSION_KEY,
)
from liquidity.tasks import universe_refresh_task

pytestmark = pytest.mark.integration


def job_env(sim, **extra: str) -> dict[str, str]:
    """Worker settings: the simulator, and a liquidity share that makes ticker/24hr (weight 40)
    cost ~2 s of budget instead of ~9 s, so back-to-back runs stay quick."""
    return {
        "BINANCE_BASE_URL": sim.base_url,
        "BINANCE_CONSUMER_BUDGETS": "poller=1000,liquidity=1000",
        "BINANCE_MAX_RETRIES": "1",
        **extra,
    }


def usdt_perpetual(sim) -> str:
    info = sim.get("/fapi/v1/exchangeInfo").json()
    return next(
        s["symbol"]
        for s in info["symbols"]
        if s["contractType"] == "PERPETUAL"
        and s["quoteAsset"] == "USDT"
        and s["status"] == "TRADING"
    )


def run_job_and_wait(timeout: float = 20.0) -> UniverseRefresh:
    """Queue one run for the real worker and wait for its record and, for a run that succeeded,
    for its publication to Redis (which follows the commit of the record)."""
    before = UniverseRefresh.objects.count()
    version_before = int(get_redis().get(REDIS_UNIVERSE_VERSION_KEY) or 0)
    universe_refresh_task.delay()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if UniverseRefresh.objects.count() > before:
            run = UniverseRefresh.objects.order_by("-id").first()
            if not run.ok or int(get_redis().get(REDIS_UNIVERSE_VERSION_KEY) or 0) > version_before:
                return run
        time.sleep(0.1)
    raise TimeoutError("the worker did not record (and publish) a run")


def redis_universe(redis_client) -> set[str]:
    return redis_client.smembers(REDIS_UNIVERSE_KEY)


def test_a_symbol_enters_above_enter_stays_in_the_band_and_leaves_below_exit(
    sim, celery_processes, redis_client, api_client
):
    # given a worker on the simulator, and a symbol below EXIT
    celery_processes.start_worker(**job_env(sim))
    symbol = usdt_perpetual(sim)
    sim.set_symbol(symbol, quoteVolume="1000000")
    first = run_job_and_wait()
    assert first.ok, first.error
    assert not LiquidSymbol.objects.filter(symbol=symbol).exists()
    members = set(LiquidSymbol.objects.values_list("symbol", flat=True))
    assert len(members) == first.members > 0
    assert redis_universe(redis_client) == members

    # when its volume crosses ENTER
    sim.set_symbol(symbol, quoteVolume="5000000")
    assert run_job_and_wait().ok
    # then it enters, with a history row saying why, in Postgres and Redis
    member = LiquidSymbol.objects.get(symbol=symbol)
    assert member.quote_volume_24h == Decimal(5_000_000)
    assert symbol in redis_universe(redis_client)
    assert redis_client.hget(f"{REDIS_META_KEY_PREFIX}{symbol}", "quote_volume_24h") == "5000000"
    entered = LiquidityMembershipEvent.objects.get(symbol=symbol, change="entered")
    assert entered.reason == "24h quote volume 5,000,000 USDT >= ENTER 4,000,000 USDT"

    # when it falls into the band it stays
    sim.set_symbol(symbol, quoteVolume="3000000")
    assert run_job_and_wait().ok
    assert LiquidSymbol.objects.get(symbol=symbol).quote_volume_24h == Decimal(3_000_000)

    # when it falls below EXIT it leaves
    sim.set_symbol(symbol, quoteVolume="1500000")
    assert run_job_and_wait().ok
    assert not LiquidSymbol.objects.filter(symbol=symbol).exists()
    assert symbol not in redis_universe(redis_client)
    assert not redis_client.exists(f"{REDIS_META_KEY_PREFIX}{symbol}")
    exited = LiquidityMembershipEvent.objects.get(symbol=symbol, change="exited")
    assert exited.reason == "24h quote volume 1,500,000 USDT < EXIT 2,000,000 USDT"

    # and the API shows it all
    body = api_client.get("/api/market/open-interest/liquid-universe").json()
    assert {row["symbol"] for row in body["symbols"]} == set(redis_universe(redis_client))
    assert body["thresholds"] == {"enterQuoteVolume": "4000000", "exitQuoteVolume": "2000000"}
    assert body["stale"] is False
    assert [c["change"] for c in body["recentChanges"] if c["symbol"] == symbol] == [
        "exited",
        "entered",
    ]


def test_a_member_that_stops_trading_leaves_at_once(sim, celery_processes, redis_client):
    celery_processes.start_worker(**job_env(sim))
    symbol = usdt_perpetual(sim)
    sim.set_symbol(symbol, quoteVolume="900000000")
    assert run_job_and_wait().ok
    assert LiquidSymbol.objects.filter(symbol=symbol).exists()

    sim.set_symbol(symbol, status="SETTLING")
    # exchangeInfo is cached for EXCHANGE_INFO_CACHE_TTL_SEC: drop the cached copy
    redis_client.delete("exchange:info:fetched_at")
    assert run_job_and_wait().ok
    assert not LiquidSymbol.objects.filter(symbol=symbol).exists()
    assert LiquidityMembershipEvent.objects.get(symbol=symbol, change="exited").reason == (
        "status is SETTLING, not TRADING"
    )


def test_an_exchange_outage_leaves_the_universe_intact_and_says_stale(
    sim, celery_processes, redis_client, api_client
):
    # given a universe
    celery_processes.start_worker(**job_env(sim))
    assert run_job_and_wait().ok
    members_before = set(LiquidSymbol.objects.values_list("symbol", flat=True))
    assert members_before

    # when the exchange answers only 5xx, then only garbage
    sim.set_faults(error_rate=1.0)
    failed = run_job_and_wait()
    sim.set_faults(nonjson_rate=1.0)
    failed_again = run_job_and_wait()

    # then the runs are recorded as failed and the universe is untouched everywhere
    assert not failed.ok and not failed_again.ok
    assert "ExchangeUnavailable" in failed.error or "InvalidResponse" in failed.error
    assert set(LiquidSymbol.objects.values_list("symbol", flat=True)) == members_before
    assert redis_universe(redis_client) == members_before
    body = api_client.get("/api/market/open-interest/liquid-universe").json()
    assert body["stale"] is True
    assert body["staleSince"] is not None
    assert body["lastFailureReason"] == failed_again.error
    assert body["counts"]["members"] == len(members_before)

    # and the next good run clears it
    sim.clear_faults()
    assert run_job_and_wait().ok
    assert api_client.get("/api/market/open-interest/liquid-universe").json()["stale"] is False


def test_beat_drives_the_job_and_runs_never_overlap_even_with_two_beats(sim, celery_processes):
    # given two workers and, by mistake, two beats firing every 2 s at the same moments
    env = job_env(sim, LIQUIDITY_REFRESH_SEC="2")
    celery_processes.start_worker(**env)
    celery_processes.start_worker(**env)
    celery_processes.start_beat(**env)
    celery_processes.start_beat(**env)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and UniverseRefresh.objects.filter(ok=True).count() < 3:
        time.sleep(0.2)
    runs = list(UniverseRefresh.objects.order_by("started_at"))
    assert len([run for run in runs if run.ok]) >= 3
    for earlier, later in itertools.pairwise(runs):
        assert later.started_at >= earlier.finished_at, "two runs overlapped"
