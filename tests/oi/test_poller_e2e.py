"""The poller as it runs in production: simulator, real Celery workers and beat, Redis, Postgres."""

import itertools
import time

import pytest

from liquidity.models import LiquidSymbol
from liquidity.services import REDIS_UNIVERSE_KEY
from oi.models import OpenInterestSnapshot
from oi.ring import ring_read
from tests.fixtures.processes import wait_until, whole_universe_dispatched

pytestmark = pytest.mark.integration


def test_every_liquid_symbol_is_polled_on_time_within_budget_and_follows_the_universe(
    sim, celery_processes, redis_client, api_client
):
    # given the whole pipeline on the simulator, with two beats started by mistake, and one
    # USDT perpetual kept below EXIT for now
    info = sim.get("/fapi/v1/exchangeInfo").json()
    newcomer = next(
        s["symbol"]
        for s in info["symbols"]
        if s["contractType"] == "PERPETUAL"
        and s["quoteAsset"] == "USDT"
        and s["status"] == "TRADING"
    )
    sim.set_symbol(newcomer, quoteVolume="1000")
    env = {"BINANCE_BASE_URL": sim.base_url, "LIQUIDITY_REFRESH_SEC": "4"}
    celery_processes.start_procfile_worker("worker", **env)  # as in the Procfile
    celery_processes.start_procfile_worker("poller", **env)
    celery_processes.start_beat(**env)
    celery_processes.start_beat(**env)
    members, status = whole_universe_dispatched(api_client)
    interval_ms = status["intervalSec"] * 1000

    # when it runs for a few intervals
    t0 = time.time() * 1000 + interval_ms  # let the first cycle start
    time.sleep((interval_ms * 4.5) / 1000)
    t_end = time.time() * 1000

    # then every liquid symbol was sampled within 1.5 × the interval, never twice per cycle
    times = sim.stats(symbols=sorted(members))["open_interest_times"]
    for symbol in members:
        polled = [t for t in times.get(symbol, []) if t0 <= t <= t_end]
        assert polled, f"{symbol} was never polled"
        edges = [t0, *polled, t_end]
        gaps = [b - a for a, b in itertools.pairwise(edges)]
        assert max(gaps) <= 1.5 * interval_ms, f"{symbol} gaps {gaps}"
        inner = [b - a for a, b in itertools.pairwise(polled)]
        assert not inner or min(inner) >= 0.5 * interval_ms, f"{symbol} polled twice: {inner}"

    # and the exchange never counted more than its limit
    for ip_stats in sim.stats()["ips"].values():
        assert ip_stats["count_429"] == 0
        assert ip_stats["count_418"] == 0
    assert OpenInterestSnapshot.objects.filter(symbol__in=members).values(
        "symbol"
    ).distinct().count() == len(members)

    # and backfill gives every member a full baseline window (30-60 min back) from the start,
    # paced by openInterestHist's own limit (1000 requests / 5 min, ~3 symbols/s)
    def members_without_an_hour_of_history() -> list[str]:
        now_ms = time.time() * 1000
        return [
            symbol
            for symbol in members
            if not (ring := ring_read(redis_client, symbol))
            or now_ms - ring[0].time_ms < 60 * 60_000
        ]

    wait_until(
        lambda: not members_without_an_hour_of_history(),
        10 + len(members) / 3,
        "backfill left members without an hour of history",
    )

    # when a symbol's volume crosses ENTER and a member's falls below EXIT
    assert newcomer not in members
    assert not sim.oi_request_times(newcomer)
    leaver = sorted(members)[0]
    sim.set_symbol(newcomer, quoteVolume="900000000")
    sim.set_symbol(leaver, quoteVolume="1000")

    # then the newcomer starts being polled (and backfilled) and the leaver stops
    wait_until(
        lambda: LiquidSymbol.objects.filter(symbol=newcomer).exists(), 20, "newcomer never entered"
    )
    wait_until(
        lambda: not LiquidSymbol.objects.filter(symbol=leaver).exists(), 20, "leaver never left"
    )
    left_at = time.time() * 1000
    wait_until(
        lambda: sim.oi_request_times(newcomer), 3 * interval_ms / 1000, "newcomer never polled"
    )
    wait_until(
        lambda: len(ring_read(redis_client, newcomer)) >= 36, 20, "newcomer never backfilled"
    )
    time.sleep(2 * interval_ms / 1000)
    # shards already queued when it left may still poll it once
    late_polls = [t for t in sim.oi_request_times(leaver) if t > left_at + 2 * 2000 + 500]
    assert late_polls == []


def test_a_universe_left_in_redis_by_another_run_is_replaced_at_once(
    sim, celery_processes, redis_client
):
    """A Redis db shared with another run (or a database dropped and created again) holds a
    published universe while this database has never had one: the system refreshes its own at
    its first dispatch, not a whole LIQUIDITY_REFRESH_SEC (5 min) later."""
    redis_client.sadd(REDIS_UNIVERSE_KEY, "GONEUSDT", "OLDUSDT")
    env = {"BINANCE_BASE_URL": sim.base_url}  # the liquidity job on its default 5-minute period
    celery_processes.start_procfile_worker("worker", **env)
    celery_processes.start_procfile_worker("poller", **env)
    celery_processes.start_beat(**env)

    wait_until(lambda: LiquidSymbol.objects.exists(), 20, "the universe was never refreshed")
    members = set(LiquidSymbol.objects.values_list("symbol", flat=True))
    wait_until(
        lambda: redis_client.smembers(REDIS_UNIVERSE_KEY) == members,
        10,
        "the universe in Redis is still the other run's",
    )
    assert not members & {"GONEUSDT", "OLDUSDT"}
