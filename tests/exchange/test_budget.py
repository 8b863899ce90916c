"""The shared request budget against a real Redis (test db), including several OS processes."""

import asyncio
import multiprocessing
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
import redis as redis_lib
from django.conf import settings

from exchange.budget import BudgetConfig, RequestBudget
from exchange.errors import BudgetExhausted, ExchangeError, ExchangeUnavailable


def make_budget(redis_client: redis_lib.Redis, **overrides: object) -> RequestBudget:
    options: dict[str, object] = {
        "egress_id": "test",
        "ip_weight_limit": 660,
        "safety_margin": 0.0,
        "burst": 10,
        "consumer_budgets": {},
    }
    options.update(overrides)
    return RequestBudget(redis_client, BudgetConfig(**options))  # type: ignore[arg-type]


def drain_burst(budget: RequestBudget, consumer: str = "default", weight: int = 1) -> int:
    admitted = 0
    while True:
        try:
            budget.acquire(weight, consumer=consumer, max_wait=0)
        except BudgetExhausted:
            return admitted
        admitted += weight
        assert admitted < 10_000


def test_config_rates_leave_margin_and_burst_and_share_the_remainder():
    config = BudgetConfig(ip_weight_limit=2400, safety_margin=0.05, burst=20)
    assert config.ip_rate_per_min() == 2260
    assert config.consumer_rate_per_min("poller") == 2000
    assert config.consumer_rate_per_min("liquidity") == 260
    assert config.consumer_rate_per_min("hourly", ip_limit=6000) == 5680 - 2000
    assert config.ip_rate_per_min() + config.burst <= 2400 * 0.95
    assert config.pause_threshold() == 2340
    tight = BudgetConfig(ip_weight_limit=1000, consumer_budgets={"poller": 2000})
    assert tight.consumer_rate_per_min("hourly") == 47  # the floor, 5 % of the IP rate
    with pytest.raises(ValueError):
        BudgetConfig(consumer_budgets={"poller": 0})


def test_burst_is_small_and_then_requests_are_spaced_evenly(redis_client):
    budget = make_budget(redis_client)  # IP rate 650/min: one weight every ~92 ms
    assert drain_burst(budget) == 10
    with pytest.raises(BudgetExhausted) as refused:
        budget.acquire(1, max_wait=0)
    interval = 60 / 650
    assert refused.value.reason in {"ip", "consumer"}
    assert 0 < refused.value.wait_seconds <= interval + 0.005
    assert isinstance(refused.value, ExchangeError)

    started = time.monotonic()
    for _ in range(5):
        budget.acquire(1, max_wait=1)
    elapsed = time.monotonic() - started
    assert 5 * interval - 0.1 <= elapsed <= 5 * interval + 0.15


def test_a_request_paced_by_its_consumers_share_is_booked_in_one_call(redis_client):
    # the poller at its own rate: each request waits a little for its consumer's slot
    budget = make_budget(redis_client, ip_weight_limit=2400, consumer_budgets={"poller": 1200})
    drain_burst(budget, consumer="poller")
    calls_before = budget.stats.redis_calls

    started = time.monotonic()
    for _ in range(5):
        budget.acquire(1, consumer="poller", max_wait=1)
    elapsed = time.monotonic() - started

    assert 5 * 0.05 - 0.05 <= elapsed <= 5 * 0.05 + 0.15  # paced at 1200/min all the same
    # one booking of both levels, and one check for a back-off begun during the wait (none
    # when a busy machine woke the thread so late that the next booking needs no wait)
    assert 5 < budget.stats.redis_calls - calls_before <= 5 * 2


def test_a_request_from_a_coroutine_is_paced_and_booked_as_from_a_thread(redis_client):
    # the poller's loop: the same bookings, its waits slept by the loop
    budget = make_budget(redis_client, ip_weight_limit=2400, consumer_budgets={"poller": 1200})
    drain_burst(budget, consumer="poller")
    calls_before = budget.stats.redis_calls

    async def five():
        for _ in range(5):
            await budget.acquire_async(1, consumer="poller", max_wait=1)

    started = time.monotonic()
    asyncio.run(five())
    elapsed = time.monotonic() - started

    assert 5 * 0.05 - 0.05 <= elapsed <= 5 * 0.05 + 0.15
    # both levels in one booking, and a back-off check after each wait (a wait that a busy
    # machine's late loop has already spent needs none: 9 calls once in CI)
    assert 5 < budget.stats.redis_calls - calls_before <= 5 * 2
    budget.back_off(seconds=0.3)
    with pytest.raises(BudgetExhausted) as refused:
        asyncio.run(budget.acquire_async(1, consumer="poller", max_wait=0.1))
    assert refused.value.reason == "backoff"


def test_requests_booked_ahead_in_one_call_are_paced_as_one_after_another(redis_client):
    # the poller's tick: its polls' first bookings in one round trip, each then acquired
    budget = make_budget(redis_client, ip_weight_limit=2400, consumer_budgets={"poller": 1200})
    drain_burst(budget, consumer="poller")
    calls_before = budget.stats.redis_calls

    bookings = budget.book_ahead(5, 1, consumer="poller", max_wait=1)
    assert budget.stats.redis_calls - calls_before == 1
    waits = [booking.answer[1] / 1e6 for booking in bookings]
    assert waits == sorted(waits) and waits[-1] - waits[0] == pytest.approx(4 * 0.05, abs=0.01)

    async def five():
        await asyncio.gather(
            *(budget.acquire_async(1, consumer="poller", booked=booking) for booking in bookings)
        )

    started = time.monotonic()
    asyncio.run(five())
    elapsed = time.monotonic() - started
    assert 5 * 0.05 - 0.06 <= elapsed <= 5 * 0.05 + 0.15  # paced at 1200/min all the same
    # one booking for the five, and each a check for a back-off begun during its wait
    assert budget.stats.redis_calls - calls_before == 1 + 5


def test_a_booked_wait_runs_from_the_booking_not_from_the_acquire(redis_client):
    # the poller sleeps towards a tick's booked slots first: the acquire then waits what is left
    budget = make_budget(redis_client, ip_weight_limit=2400, consumer_budgets={"poller": 1200})
    drain_burst(budget, consumer="poller")
    bookings = budget.book_ahead(5, 1, consumer="poller", max_wait=1)
    assert bookings[-1].wait_left() == pytest.approx(0.25, abs=0.05)
    time.sleep(0.3)
    assert [booking.wait_left() for booking in bookings] == [0.0] * 5
    calls_before = budget.stats.redis_calls

    async def five():
        await asyncio.gather(
            *(budget.acquire_async(1, consumer="poller", booked=booking) for booking in bookings)
        )

    started = time.monotonic()
    asyncio.run(five())
    assert time.monotonic() - started < 0.1  # not another 0.25 s
    # a back-off begun while they waited is still looked for, once each
    assert budget.stats.redis_calls - calls_before == 5


def test_requests_booked_ahead_during_a_back_off_are_refused_or_wait_it_out(redis_client):
    budget = make_budget(redis_client, consumer_budgets={"poller": 1200})
    budget.back_off(seconds=0.3)
    refused = budget.book_ahead(2, 1, consumer="poller", max_wait=0.1)
    for booking in refused:
        with pytest.raises(BudgetExhausted) as error:
            asyncio.run(budget.acquire_async(1, consumer="poller", booked=booking))
        assert error.value.reason == "backoff"
    (waiting,) = budget.book_ahead(1, 1, consumer="poller", max_wait=2)
    started = time.monotonic()
    asyncio.run(budget.acquire_async(1, consumer="poller", booked=waiting))
    assert 0.25 <= time.monotonic() - started <= 1.0


def test_booking_ahead_survives_redis_losing_its_scripts(redis_client):
    budget = make_budget(redis_client)
    redis_client.script_flush()  # as after a Redis restart
    (booking,) = budget.book_ahead(1, 1, max_wait=1)
    assert booking.answer[0]  # granted


def test_heavy_request_costs_its_weight(redis_client):
    budget = make_budget(redis_client)
    budget.acquire(40, max_wait=0)  # heavier than the burst: admitted alone when idle
    with pytest.raises(BudgetExhausted) as refused:
        budget.acquire(1, max_wait=0)
    interval = 60 / 650
    assert refused.value.wait_seconds == pytest.approx(31 * interval, abs=0.02)


def test_consumer_budget_caps_one_consumer_but_not_the_others(redis_client):
    budget = make_budget(redis_client, consumer_budgets={"poller": 60})
    assert budget.config.consumer_rate_per_min("liquidity") == 590
    assert drain_burst(budget, "poller") == 10
    with pytest.raises(BudgetExhausted) as refused:
        budget.acquire(1, consumer="poller", max_wait=0)
    assert refused.value.reason == "consumer"
    # 60/min: the next slot is ~1 s away, less what elapsed since the burst on a busy machine
    assert refused.value.wait_seconds == pytest.approx(1.0, abs=0.15)
    for _ in range(3):  # the IP still has room for the others, at the IP's pace
        assert budget.acquire(1, consumer="liquidity", max_wait=0.2) <= 60 / 650 + 0.01
    with pytest.raises(BudgetExhausted):
        budget.acquire(1, consumer="poller", max_wait=0.2)


def test_ip_level_caps_the_sum_of_all_consumers(redis_client):
    budget = make_budget(redis_client, consumer_budgets={"poller": 600, "liquidity": 600})
    total = drain_burst(budget, "poller") + drain_burst(budget, "liquidity")
    assert total == 10
    with pytest.raises(BudgetExhausted) as refused:
        budget.acquire(1, consumer="hourly", max_wait=0)
    assert refused.value.reason == "ip"


def test_futures_data_requests_use_their_own_limit_and_no_weight(redis_client):
    budget = make_budget(redis_client, futures_data_limit=35, futures_data_window_s=300)
    admitted = 0
    while True:
        try:
            budget.acquire(0, futures_data=True, max_wait=0)
        except BudgetExhausted as exc:
            assert exc.reason == "futures_data"
            assert exc.wait_seconds == pytest.approx(300 / 30, abs=0.1)
            break
        admitted += 1
    assert admitted == 5
    assert drain_burst(budget) == 10  # the weight budget was not touched


def test_back_off_stops_every_budget_instance_on_the_egress(redis_client):
    setter = make_budget(redis_client)
    other_connection = make_budget(redis_lib.Redis.from_url(settings.REDIS_URL))
    other_egress = make_budget(redis_client, egress_id="own-ip")

    until = setter.back_off(seconds=1.2, reason="429 from /fapi/v1/openInterest")
    assert until is not None
    active = other_connection.backoff_until()
    assert active is not None and active[1] == "429 from /fapi/v1/openInterest"

    with pytest.raises(BudgetExhausted) as refused:
        other_connection.acquire(1, max_wait=0.2)
    assert refused.value.reason == "backoff"
    assert abs(refused.value.retry_at - until) < timedelta(milliseconds=5)
    other_egress.acquire(1, max_wait=0)

    started = time.monotonic()
    waited = other_connection.acquire(1, max_wait=5)
    assert 0.9 <= time.monotonic() - started <= 1.5
    assert waited == pytest.approx(time.monotonic() - started, abs=0.1)
    assert other_connection.backoff_until() is None


def test_a_shorter_back_off_never_shortens_a_longer_one(redis_client):
    budget = make_budget(redis_client)
    ban_until = datetime.now(tz=UTC) + timedelta(seconds=120)
    assert budget.back_off(until=ban_until, reason="418") is not None
    kept = budget.back_off(seconds=1, reason="429")
    assert kept is not None and abs(kept - ban_until) < timedelta(milliseconds=2)
    assert budget.backoff_until()[1] == "418"
    assert budget.back_off(until=datetime.now(tz=UTC) - timedelta(seconds=5)) is not None
    with pytest.raises(BudgetExhausted):
        budget.acquire(1, max_wait=60)
    budget.clear_backoff()
    budget.acquire(1, max_wait=0)


def test_used_weight_over_what_the_limiter_admits_pauses_until_next_minute(redis_client):
    budget = make_budget(redis_client, ip_weight_limit=2400, safety_margin=0.05)
    assert budget.observe_used_weight(2300) is False
    assert budget.backoff_until() is None
    assert budget.observe_used_weight(2341) is True
    until, reason = budget.backoff_until()
    assert reason == "used-weight 2341/2400"
    assert until.second == 0 and until.microsecond == 250_000
    assert timedelta(0) < until - datetime.now(tz=UTC) <= timedelta(seconds=60.3)
    with pytest.raises(BudgetExhausted) as refused:
        budget.acquire(1, max_wait=0)
    assert refused.value.reason == "backoff"


def test_learned_ip_limit_is_shared_with_other_connectiones(redis_client):
    learner = make_budget(redis_client, ip_weight_limit=400, burst=2)
    assert learner.set_ip_limit(120) == 120
    fresh = make_budget(redis_client, ip_weight_limit=400, burst=2)
    fresh.acquire(1, max_wait=0)
    assert fresh.ip_limit == 120
    fresh.acquire(1, max_wait=0)
    with pytest.raises(BudgetExhausted) as refused:
        fresh.acquire(1, max_wait=0)
    assert refused.value.wait_seconds == pytest.approx(60 / 118, abs=0.02)


def _hammer(redis_url: str, config: BudgetConfig, seconds: float, weight: int, out) -> None:
    budget = RequestBudget(redis_lib.Redis.from_url(redis_url), config)
    admitted: list[tuple[float, int]] = []
    end = time.time() + seconds
    while time.time() < end:
        try:
            budget.acquire(weight, consumer="poller", max_wait=max(end - time.time(), 0))
        except BudgetExhausted:
            break
        admitted.append((time.time(), weight))
    out.put((admitted, budget.stats.us_per_acquire))


def run_hammers(config: BudgetConfig, seconds: float, weights: tuple[int, ...]) -> list:
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    workers = [
        context.Process(target=_hammer, args=(settings.REDIS_URL, config, seconds, w, queue))
        for w in weights
    ]
    for worker in workers:
        worker.start()
    results = [queue.get(timeout=30) for _ in workers]
    for worker in workers:
        worker.join(timeout=10)
        assert worker.exitcode == 0
    return results


def test_processes_sharing_a_budget_never_exceed_it(redis_client):
    config = BudgetConfig(
        egress_id="mp", ip_weight_limit=1210, safety_margin=0.0, burst=10, consumer_budgets={}
    )
    rate_per_s = config.ip_rate_per_min() / 60  # 20 weight/s
    seconds = 4.0
    results = run_hammers(config, seconds, (1, 1, 2, 3))

    admissions = sorted(a for admitted, _cost in results for a in admitted)
    assert all(admitted for admitted, _cost in results), "every process got a share"
    span = admissions[-1][0] - admissions[0][0]
    total = sum(weight for _t, weight in admissions)
    assert total <= rate_per_s * span + config.burst + 1
    assert total >= 0.9 * rate_per_s * seconds  # the budget is used, not wasted

    window = 1.0
    for index, (start, _w) in enumerate(admissions):
        in_window = sum(w for t, w in admissions[index:] if t < start + window)
        assert in_window <= rate_per_s * window + config.burst + 2


def test_unreachable_budget_store_refuses_requests_as_unavailable():
    dead = redis_lib.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2)
    budget = RequestBudget(dead, BudgetConfig(egress_id="dead"))
    with pytest.raises(ExchangeUnavailable):
        budget.acquire(1, max_wait=0)
    assert budget.stats.acquired == 0


def test_a_consumer_waiting_on_its_own_share_never_holds_back_the_others(redis_client):
    # given the real split: the poller owns 2000/min, liquidity gets the 260/min left
    config = {
        "ip_weight_limit": 2400,
        "safety_margin": 0.05,
        "burst": 20,
        "consumer_budgets": {"poller": 2000},
    }
    release = threading.Event()
    liquidity = make_budget(redis_client, **config)
    liquidity._sleep = lambda seconds: release.wait(seconds)
    poller = make_budget(redis_client, **config)
    liquidity.acquire(40, consumer="liquidity", max_wait=0)  # ticker/24hr within the burst

    # when a second ticker/24hr waits ~9 s for liquidity's own share
    waiter = threading.Thread(
        target=lambda: liquidity.acquire(40, consumer="liquidity", max_wait=30)
    )
    waiter.start()
    time.sleep(0.2)

    # then the poller is still admitted at once: the waiting request holds no IP slot yet
    try:
        started = time.monotonic()
        for _ in range(5):
            poller.acquire(1, consumer="poller", max_wait=0.5)
        # (held back behind the waiter, they would wait ~9 s, and max_wait=0.5 would refuse them;
        # the bound leaves room for a busy machine)
        assert time.monotonic() - started < 2.0
    finally:
        release.set()
        waiter.join(10)
