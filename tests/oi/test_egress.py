"""Egress groups (one per poller IP) and the dispatcher's plan for them: real Redis, the simulator
for the polls, the poller API, /metrics and /health/ready as an operator reads them."""

import json

import pytest
from django.utils import timezone

from common.redis import get_redis
from exchange.factory import build_budget
from exchange.streams import MarketStream, StreamCounters
from liquidity.models import LiquidSymbol
from liquidity.services import REDIS_UNIVERSE_KEY
from oi import egress, poller
from oi.egress import GROUPS_KEY, egress_heartbeat, groups_live, own_budget
from oi.keys import COUNTERS_KEY
from oi.poller import now_ms, poller_dispatch, shard_still_planned
from oi.schedule import MARK_PRICE_JOB
from oi.tasks import poll_shard_task
from streams.services import FrameBatch, stream_batch_store
from tests.oi.test_poller import liquid_symbols

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def on_simulator(sim, settings, redis_client):
    settings.BINANCE_BASE_URL = sim.base_url
    get_redis.cache_clear()
    poller._thread_clients.__dict__.clear()
    yield sim
    get_redis.cache_clear()


def universe_and_a_window_ahead(sim, redis_client, settings, n_symbols: int) -> tuple[int, int]:
    """`n_symbols` liquid symbols published as the universe; the window (ms), and the start of a
    window 5 ahead, where the test's dispatches happen."""
    redis_client.sadd(REDIS_UNIVERSE_KEY, *liquid_symbols(sim, n_symbols))
    window_ms = settings.OI_WINDOW_SEC * 1000
    return window_ms, (now_ms() // window_ms + 5) * window_ms


def heartbeat_of(egress_id: str, usable: int, at_ms: int) -> None:
    """Another host's heartbeat, as its worker writes it."""
    record = {"configuredPerMin": usable, "usablePerMin": usable, "ipLimit": 2400,
              "learned": False, "host": f"host-{egress_id}", "seenAtMs": at_ms}  # fmt: skip
    get_redis().hset(GROUPS_KEY, egress_id, json.dumps(record))


def test_a_group_is_live_while_its_heartbeat_is_fresh(redis_client, settings):
    settings.OI_EGRESS_HEARTBEAT_TTL_SEC = 3
    at = now_ms()
    egress_heartbeat(at_ms=at)
    heartbeat_of("b", 1000, at - 2_000)
    heartbeat_of("gone", 1000, at - 4_000)
    assert [g.egress_id for g in groups_live(at_ms=at)] == ["b", "default"]
    assert [g.egress_id for g in groups_live(at_ms=at + 1_500)] == ["default"]


def test_the_usable_budget_is_the_smaller_of_the_share_and_what_the_learned_limit_leaves(
    redis_client, settings
):
    settings.OI_MAX_REQ_PER_MIN = 2000
    settings.BINANCE_CONSUMER_BUDGETS = {"poller": 2000, "hourly": 100}
    assert own_budget().usable_per_min == 2000  # 2400 × 0.95 − 20 − 100 = 2160 leaves room
    build_budget().set_ip_limit(1500)  # exchangeInfo says 1,500/min
    budget = own_budget()
    assert budget.learned and budget.ip_limit == 1500
    assert budget.usable_per_min == 1500 * 95 // 100 - 20 - 100  # 1305


def test_a_host_that_learned_no_limit_takes_the_one_another_group_learned(redis_client, settings):
    settings.OI_MAX_REQ_PER_MIN = 2000
    settings.BINANCE_CONSUMER_BUDGETS = {"poller": 2000}
    record = {"configuredPerMin": 2000, "usablePerMin": 1405, "ipLimit": 1500, "learned": True,
              "host": "main", "seenAtMs": now_ms()}  # fmt: skip
    get_redis().hset(GROUPS_KEY, "main", json.dumps(record))
    budget = own_budget()  # this host ("default") never asked exchangeInfo
    assert budget.ip_limit == 1500 and budget.usable_per_min == 1405


def test_each_group_gets_its_share_of_the_symbols_on_its_own_queue(on_simulator, redis_client):
    symbols = liquid_symbols(on_simulator, 60)
    redis_client.sadd(REDIS_UNIVERSE_KEY, *symbols)
    at = now_ms()
    heartbeat_of("a", 300, at)
    heartbeat_of("b", 150, at)
    plan = poller_dispatch(at_ms=at)
    polled: dict[str, set[str]] = {}
    for shard in plan.shards:
        polled.setdefault(shard.egress_id, set()).update(s for _, s in shard.polls)
    assert set(polled) == {"a", "b"}
    assert not polled["a"] & polled["b"]  # each symbol on one group
    # the interval is the two budgets' (450/min, 99% of it planned), not one's
    assert plan.interval_sec == pytest.approx(60 * 70 / (450 * 0.99), abs=0.15)
    status = json.loads(redis_client.get(egress.PLAN_KEY))
    assert len(status["a"]["symbols"]) == pytest.approx(2 * len(status["b"]["symbols"]), abs=11)
    assert status["a"]["markPrices"] and MARK_PRICE_JOB not in polled.get("b", ())
    assert status["b"]["plannedWeightPerMin"] <= 150


def test_a_group_that_dies_is_planned_out_from_the_next_window(
    on_simulator, redis_client, settings
):
    settings.OI_EGRESS_HEARTBEAT_TTL_SEC = 3
    _, start = universe_and_a_window_ahead(on_simulator, redis_client, settings, 40)
    heartbeat_of("a", 1000, start)
    heartbeat_of("b", 1000, start)
    first = poller_dispatch(at_ms=start + 10)
    b_shards = [shard for shard in first.shards if shard.egress_id == "b"]
    assert b_shards
    # when b's heartbeat expires (a's is kept)
    later = start + 3_500
    heartbeat_of("a", 1000, later)
    second = poller_dispatch(at_ms=later)
    # then every window not started is planned again, on a alone
    assert {shard.egress_id for shard in second.shards} == {"a"}
    replanned = {shard.window_end_ms for shard in second.shards}
    assert {s.window_end_ms for s in b_shards if s.window_start_ms - 250 > later} <= replanned
    assert redis_client.hget(COUNTERS_KEY, "replans") == "1"
    # and b's shards of those windows are dropped unrun (a restarted b must not run them)
    for shard in b_shards:
        assert shard_still_planned(shard) == (shard.window_start_ms - 250 <= later)
    a_symbols = {s for shard in second.shards for _, s in shard.polls}
    b_symbols = {s for shard in b_shards for _, s in shard.polls}
    assert b_symbols - {MARK_PRICE_JOB} <= a_symbols | {MARK_PRICE_JOB}


def test_a_window_under_way_whose_shard_a_gone_group_never_started_is_taken_over_by_the_others(
    on_simulator, redis_client, settings
):
    """A group gone (stopped, or dead) with its shard of a window under way reserved but never
    started: the dispatch that plans it out gives those polls to the others, at once where due.
    A shard it had started is left to finish: nothing is polled twice."""
    window_ms, start = universe_and_a_window_ahead(on_simulator, redis_client, settings, 40)
    heartbeat_of("a", 1000, start)
    heartbeat_of("b", 1000, start)
    first = poller_dispatch(at_ms=start + 10)
    b_current = [
        s for s in first.shards if s.egress_id == "b" and s.window_end_ms == start + window_ms
    ]
    b_next = [
        s for s in first.shards if s.egress_id == "b" and s.window_start_ms == start + window_ms
    ]
    assert b_current and b_next
    # b ran its shard of the current window; it stops before the next one's shard started
    for shard in b_current:
        poller.shard_started_record(shard)
    egress.egress_forget("b")
    heartbeat_of("a", 1000, start + window_ms - 100)
    second = poller_dispatch(at_ms=start + window_ms - 100)  # the next window's shard was due
    taken = [s for s in second.shards if s.epoch == 0]
    # then a takes b's polls of the next window, none of the current one's
    assert {s.egress_id for s in taken} == {"a"}
    assert {s.window_end_ms for s in taken} == {start + 2 * window_ms}
    expected = sorted(
        (max(due, start + window_ms - 100), symbol)
        for shard in b_next
        for due, symbol in shard.polls
        if symbol != MARK_PRICE_JOB  # premiumIndex comes from the plan's next interval
    )
    assert sorted(poll for s in taken for poll in s.polls) == expected
    assert redis_client.hget(COUNTERS_KEY, "polls_taken_over") == str(len(expected))
    # and a's own polls of that window are other symbols: none polled twice
    a_next = {sym for s in first.shards if s.egress_id == "a" and s.window_start_ms == start + window_ms
              for _, sym in s.polls}  # fmt: skip
    assert not a_next & {symbol for _, symbol in expected}


def test_a_restarted_poller_worker_gets_the_windows_its_killed_predecessor_had_reserved(
    on_simulator, redis_client, settings
):
    """A SIGKILLed worker takes its reserved shards (every window planned ahead) with it; when a
    worker of that group starts again, the windows not started are planned again, once."""
    window_ms, start = universe_and_a_window_ahead(on_simulator, redis_client, settings, 20)
    heartbeat_of("default", 1000, start)
    egress.worker_start_record(at_ms=start - 60_000)
    first = poller_dispatch(at_ms=start + 10)
    ahead = {s.window_end_ms for s in first.shards if s.window_start_ms - 250 > start + 700}
    assert len(ahead) == poller.DISPATCH_LOOKAHEAD_WINDOWS
    # the worker dies with those shards reserved; its successor starts
    egress.worker_start_record(at_ms=start + 600)
    heartbeat_of("default", 1000, start + 600)
    second = poller_dispatch(at_ms=start + 700)
    assert {s.window_end_ms for s in second.shards} >= ahead
    assert redis_client.hget(COUNTERS_KEY, "replans") == "1"
    # the lost shards, were they ever delivered, would be dropped unrun: nothing polls twice
    assert not any(shard_still_planned(s) for s in first.shards if s.window_end_ms in ahead)
    # a later dispatch with the same worker plans only its new window
    third = poller_dispatch(at_ms=start + window_ms + 10)
    assert {s.window_end_ms for s in third.shards} == {
        start + (poller.DISPATCH_LOOKAHEAD_WINDOWS + 2) * window_ms
    }
    assert redis_client.hget(COUNTERS_KEY, "replans") == "1"


def test_the_windows_planned_ahead_follow_a_switch_to_the_mark_price_stream(
    on_simulator, redis_client, settings
):
    """While mark prices come from REST, each interval's windows hold a premiumIndex call (weight
    10); once the stream is fresh, the next dispatch plans the windows not started without it."""
    _, start = universe_and_a_window_ahead(on_simulator, redis_client, settings, 20)
    on_rest = poller_dispatch(at_ms=start + 10)  # no stream frame yet: REST
    ahead = [s for s in on_rest.shards if s.window_start_ms - 250 > start + 700]
    assert any(symbol == MARK_PRICE_JOB for s in ahead for _, symbol in s.polls)
    # the mark-price stream's first frames arrive
    stream = str(MarketStream.MARK_PRICE)
    batch = FrameBatch(last_frame_ms={stream: now_ms()}, frames={stream: 1})
    stream_batch_store(batch, StreamCounters(), run_since_ms=now_ms())
    on_stream = poller_dispatch(at_ms=start + 700)
    assert {s.window_end_ms for s in on_stream.shards} >= {s.window_end_ms for s in ahead}
    assert not any(symbol == MARK_PRICE_JOB for s in on_stream.shards for _, symbol in s.polls)
    assert not any(shard_still_planned(s) for s in ahead)  # their premiumIndex never leaves


def test_a_superseded_shard_sends_nothing(on_simulator, redis_client, settings):
    window_ms, start = universe_and_a_window_ahead(on_simulator, redis_client, settings, 10)
    heartbeat_of("a", 1000, start)
    heartbeat_of("b", 1000, start)
    planned = poller_dispatch(at_ms=start + 10).shards
    stale = next(
        s for s in planned if s.egress_id == "b" and s.window_start_ms >= start + window_ms
    )
    heartbeat_of("b", 1000, start - 60_000)
    poller_dispatch(at_ms=start + 20)
    before = on_simulator.stats()["total_requests"]
    poll_shard_task(stale.window_start_ms, stale.window_end_ms, stale.polls, "b", stale.epoch)
    assert on_simulator.stats()["total_requests"] == before
    assert redis_client.hget(COUNTERS_KEY, "shards_replanned") == "1"


def test_overload_is_stated_in_the_api_the_metrics_and_readiness(
    on_simulator, redis_client, settings, api_client
):
    settings.OI_MAX_REQ_PER_MIN = 60  # 30 symbols + premiumIndex at 99% of 60/min: 40.41 s
    symbols = liquid_symbols(on_simulator, 30)
    redis_client.sadd(REDIS_UNIVERSE_KEY, *symbols)
    now = timezone.now()
    LiquidSymbol.objects.bulk_create(
        LiquidSymbol(symbol=s, quote_volume_24h=5e6, entered_at=now, last_seen_at=now)
        for s in symbols
    )
    egress_heartbeat()
    poller_dispatch()
    body = api_client.get("/api/market/open-interest/poller").json()
    assert body["overloaded"] and body["overloadBehaviour"] == "stretch"
    assert body["intervalSec"] == pytest.approx(40.41) and body["maxIntervalSec"] == 20
    (group,) = body["groups"]
    assert group["egressId"] == "default" and group["live"] and group["budgetPerMin"] == 60
    assert group["nSymbols"] == 30 and group["plannedWeightPerMin"] <= 60
    metrics = api_client.get("/metrics").content.decode()
    assert "volspike_poller_overloaded 1.0" in metrics
    assert 'volspike_poller_group_budget_per_min{egress="default"} 60.0' in metrics
    assert 'volspike_poller_group_symbols{egress="default"} 30.0' in metrics
    components = api_client.get("/health/ready").json()["components"]
    assert components["polling"].startswith("degraded: overloaded: 30 symbols need a 40.41 s")


def test_budget_use_counts_only_the_polls_that_reached_the_exchange(
    on_simulator, redis_client, api_client
):
    """A poll the shared budget held back was counted as weight used: the API said 180% while
    the exchange counted 98%."""
    egress_heartbeat()
    poller._failures_record(
        get_redis(), ok_symbols=["AUSDT", "BUSDT"],
        failures={"CUSDT": "BudgetExhausted: the budget holds it back", "DUSDT": "ReadTimeout: x"},
        weight=4, at_ms=now_ms() - 1_000,
    )  # fmt: skip
    body = api_client.get("/api/market/open-interest/poller").json()
    assert body["weightLastMinute"] == 3
    assert body["groups"][0]["weightLastMinute"] == 3
