"""The poller's pieces against the simulator, real Redis and Postgres (in this process)."""

import itertools
import os
import threading
import time

import pytest

from common.formatting import plain_decimal
from common.redis import get_redis
from exchange.factory import build_budget
from liquidity.services import REDIS_UNIVERSE_KEY
from oi import poller
from oi.keys import CONSECUTIVE_FAILURES_KEY, COUNTERS_KEY, MARK_PRICE_KEY
from oi.models import OpenInterestSnapshot
from oi.poller import ShardPlan, now_ms, poller_dispatch, poller_run_shard, ring_backfill
from oi.ring import ring_key, ring_read
from oi.schedule import MARK_PRICE_JOB, segment_polls_due

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def on_simulator(sim, settings, redis_client):
    settings.BINANCE_BASE_URL = sim.base_url
    get_redis.cache_clear()
    poller._thread_clients.__dict__.clear()
    yield sim
    get_redis.cache_clear()


def shard_due_now_on_a_loop_of_its_own(
    symbols: list[str], monkeypatch
) -> tuple[poller.ShardOutcome, int]:
    """A shard of ``symbols`` all due now, run on a poll loop of its own (closed after), so
    that the test's settings (OI_SHARD_THREADS) hold; and the time it started."""
    monkeypatch.setattr(poller, "_poll_loops", {})
    start = now_ms()
    try:
        outcome = poller_run_shard(ShardPlan(start, start + 2_000, [(start, s) for s in symbols]))
    finally:
        poller._poll_loops[os.getpid()].close()
    return outcome, start


def liquid_symbols(sim, n: int) -> list[str]:
    info = sim.get("/fapi/v1/exchangeInfo").json()
    return [
        s["symbol"]
        for s in info["symbols"]
        if s["contractType"] == "PERPETUAL"
        and s["quoteAsset"] == "USDT"
        and s["status"] == "TRADING"
    ][:n]


def shard_starting_now(symbols: list[str], spacing_ms: int = 20) -> ShardPlan:
    start = now_ms() + 50
    polls = [(start, MARK_PRICE_JOB)] + [
        (start + 10 + i * spacing_ms, s) for i, s in enumerate(symbols)
    ]
    return ShardPlan(start, start + 2_000, polls)


def test_a_shard_samples_each_symbol_at_its_due_time_and_stores_the_batch(
    on_simulator, redis_client
):
    symbols = liquid_symbols(on_simulator, 5)
    plan = shard_starting_now(symbols, spacing_ms=100)

    outcome = poller_run_shard(plan)

    # every symbol was sampled, once, at (not before) its due time
    assert sorted(s.symbol for s in outcome.samples) == sorted(symbols)
    assert outcome.failures == {}
    for due_ms, symbol in plan.polls[1:]:
        (arrival_ms,) = on_simulator.oi_request_times(symbol)
        # never early; late only by scheduling and connection set-up on a busy 2-core machine
        assert due_ms - 5 <= arrival_ms <= due_ms + 1500
    # the mark price came from one premiumIndex call, and USD notional from it
    assert redis_client.hlen(MARK_PRICE_KEY) > len(symbols)
    rows = {row.symbol: row for row in OpenInterestSnapshot.objects.all()}
    assert set(rows) == set(symbols)
    for symbol, row in rows.items():
        mark = on_simulator.get("/fapi/v1/premiumIndex", {"symbol": symbol}).json()["markPrice"]
        assert row.source == "realtime"
        assert row.mark_price is not None
        assert abs(row.mark_price / type(row.mark_price)(mark) - 1) < 0.01
        assert row.open_interest_usd == row.open_interest * row.mark_price
        # and the ring buffer holds the same sample
        (ring_sample,) = ring_read(redis_client, symbol)
        assert ring_sample.open_interest == row.open_interest
        assert ring_sample.time_ms == int(row.ts.timestamp() * 1000)


def test_equal_values_at_different_times_are_both_kept_and_a_repeat_collapses(
    on_simulator, redis_client
):
    from oi.ring import RingSample, ring_append

    samples = [RingSample(1_000, 5), RingSample(2_000, 5), RingSample(2_000, 5)]
    ring_append(redis_client, {"XUSDT": samples}, window_ms=10**12, now_ms=3_000)
    assert ring_read(redis_client, "XUSDT") == [RingSample(1_000, 5), RingSample(2_000, 5)]


def test_the_ring_is_trimmed_by_age_and_expires(on_simulator, redis_client):
    from oi.ring import RingSample, ring_append

    ring_append(redis_client, {"XUSDT": [RingSample(1_000, 1)]}, window_ms=5_000, now_ms=2_000)
    ring_append(redis_client, {"XUSDT": [RingSample(9_000, 2)]}, window_ms=5_000, now_ms=9_000)
    assert ring_read(redis_client, "XUSDT") == [RingSample(9_000, 2)]
    assert 0 < redis_client.pttl(ring_key("XUSDT")) <= 5_000


def test_a_failing_symbol_is_skipped_logged_and_reported_while_the_others_go_on(
    on_simulator, redis_client, caplog
):
    good, bad = liquid_symbols(on_simulator, 2)
    on_simulator.set_symbol(bad, delisted=True)

    sample_times = set()
    for _ in range(3):
        outcome = poller_run_shard(shard_starting_now([good, bad]))
        assert [s.symbol for s in outcome.samples] == [good]
        assert outcome.failures[bad].startswith("InvalidSymbol")
        sample_times.add(outcome.samples[0].time)

    assert redis_client.hget(CONSECUTIVE_FAILURES_KEY, bad) == "3"
    assert redis_client.hget(CONSECUTIVE_FAILURES_KEY, good) is None
    assert any(
        getattr(record, "symbol", None) == bad and "InvalidSymbol" in record.cause
        for record in caplog.records
    )
    assert len(on_simulator.oi_request_times(good)) == 3
    # samples with the same exchange time are the same sample: stored once
    assert OpenInterestSnapshot.objects.filter(symbol=good).count() == len(sample_times)


def test_exchange_faults_skip_samples_but_never_stop_the_shard(on_simulator):
    symbols = liquid_symbols(on_simulator, 20)
    on_simulator.set_faults(error_rate=0.3, nonjson_rate=0.2, paths=["/fapi/v1/openInterest"])
    outcome = poller_run_shard(shard_starting_now(symbols))
    assert len(outcome.samples) + len(outcome.failures) == len(symbols)
    assert outcome.samples  # the healthy answers were kept
    assert outcome.failures
    assert OpenInterestSnapshot.objects.count() == len(outcome.samples)


def test_shards_running_at_once_each_get_their_own_samples_all_stored(on_simulator):
    # a thread-pool worker runs several shards at once; one flusher stores for all of them
    symbols = liquid_symbols(on_simulator, 12)
    plans = [shard_starting_now(symbols[:6], spacing_ms=30), shard_starting_now(symbols[6:])]
    outcomes: list = [None, None]
    threads = [
        threading.Thread(target=lambda i=i: outcomes.__setitem__(i, poller_run_shard(plans[i])))
        for i in range(2)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(20)

    assert sorted(s.symbol for s in outcomes[0].samples) == sorted(symbols[:6])
    assert sorted(s.symbol for s in outcomes[1].samples) == sorted(symbols[6:])
    assert outcomes[0].failures == outcomes[1].failures == {}
    # every sample is in Postgres once the shard returns
    assert set(OpenInterestSnapshot.objects.values_list("symbol", flat=True)) == set(symbols)


def test_more_polls_due_at_once_than_may_be_in_flight_are_all_sent_and_stored(
    on_simulator, settings, monkeypatch
):
    # a poller starting (or catching up) has a whole window's polls due at once
    settings.OI_SHARD_THREADS = 2
    symbols = liquid_symbols(on_simulator, 7)
    outcome, _ = shard_due_now_on_a_loop_of_its_own(symbols, monkeypatch)
    assert sorted(s.symbol for s in outcome.samples) == sorted(symbols)
    assert OpenInterestSnapshot.objects.count() == len(symbols)


def test_a_poll_unanswered_by_the_shards_deadline_is_a_failure_and_never_stored_later(
    on_simulator, redis_client, settings, monkeypatch
):
    # a poll loop of its own, whose client (3 s read timeout) outlives a lowered setting: its
    # answer can then come after the shard's deadline (2 x 0.2 s + 1 s after its last poll)
    settings.OI_SHARD_THREADS = 1
    monkeypatch.setattr(poller, "_poll_loops", {})
    quick, slow = liquid_symbols(on_simulator, 2)
    poller_run_shard(shard_starting_now([quick]))
    settings.OI_POLL_READ_TIMEOUT_SEC = 0.2
    on_simulator.set_faults(latency_ms=2_500, paths=["/fapi/v1/openInterest"], remaining=1)
    OpenInterestSnapshot.objects.all().delete()

    outcome = poller_run_shard(ShardPlan(now_ms(), now_ms() + 2_000, [(now_ms(), slow)]))

    assert outcome.samples == []
    assert outcome.failures[slow].startswith("TimeoutError")
    assert redis_client.hget(CONSECUTIVE_FAILURES_KEY, slow) == "1"
    time.sleep(1.5)  # the late answer has come back by now: it is not stored
    assert not OpenInterestSnapshot.objects.filter(symbol=slow).exists()
    assert redis_client.hget(CONSECUTIVE_FAILURES_KEY, slow) == "1"
    poller._poll_loops[os.getpid()].close()


def test_polls_due_within_a_tick_leave_together_and_are_stored_as_one_batch(on_simulator, settings):
    """The answers of one tick's polls are stored (and so reach the feed and the alerts) in one
    batch once the last is in, not in as many batches as there are flush spans."""
    settings.OI_SEND_TICK_MS = 200
    symbols = liquid_symbols(on_simulator, 20)
    tick_ms = settings.OI_SEND_TICK_MS
    first_tick = now_ms() // tick_ms + 2
    # 4 polls in each of 5 ticks, 40 ms apart: a batch per 100 ms flush span would be ~10
    polls = [
        ((first_tick + i // 4) * tick_ms - 150 + (i % 4) * 40, s) for i, s in enumerate(symbols)
    ]
    start = polls[0][0]
    outcome = poller_run_shard(ShardPlan(start, start + 2_000, polls))

    assert sorted(s.symbol for s in outcome.samples) == sorted(symbols)
    for due_ms, symbol in polls:  # each left at its tick's end: never early, at most a tick late
        (arrival_ms,) = on_simulator.oi_request_times(symbol)
        assert due_ms - 5 <= arrival_ms <= due_ms + tick_ms + 500
    # one INSERT per batch: its rows share their created_at (the statement's now())
    batches = OpenInterestSnapshot.objects.values("created_at").distinct().count()
    assert batches <= 5, f"{batches} batches for 5 ticks"


def test_behind_a_budget_queue_a_ticks_polls_leave_at_their_booked_slots(
    on_simulator, settings, monkeypatch
):
    """After a restart with polls to catch up, the budget has a queue: each poll of a tick is
    booked a slot up to seconds ahead. The in-flight limit must not be held while waiting for
    it: held, 2 slots let 2 polls leave per wait, and each next poll waited its whole booked
    wait again once it had a slot (in run.sh, minutes of polls given up at the deadline)."""
    settings.OI_SHARD_THREADS = 2
    budget = build_budget()
    per_sec = budget.config.consumer_budgets["poller"] / 60
    # a queue of about 1 s at the poller's share (its burst spent first)
    budget.book_ahead(budget.config.burst + round(per_sec), 1, consumer="poller", max_wait=5)
    symbols = liquid_symbols(on_simulator, 16)
    outcome, start = shard_due_now_on_a_loop_of_its_own(symbols, monkeypatch)
    assert sorted(s.symbol for s in outcome.samples) == sorted(symbols)
    arrivals = [t for s in symbols for t in on_simulator.oi_request_times(s)]
    # the queue (~1 s), then one slot per poll (16 x 30 ms), and a tick: all left by ~1.8 s
    # (held slots: pairs of polls ~1.1 s apart, the last about 8 s after the start)
    assert max(arrivals) - start <= 1_000 + len(symbols) * 1000 / per_sec + 1_200, arrivals


def test_a_shard_that_would_run_late_is_dropped_whole(on_simulator, redis_client):
    symbols = liquid_symbols(on_simulator, 3)
    start = now_ms() - 1_500  # half of the 2 s window is gone
    outcome = poller_run_shard(ShardPlan(start, start + 2_000, [(start, s) for s in symbols]))
    assert outcome.dropped_late == 3
    assert outcome.samples == []
    assert on_simulator.oi_request_times(symbols[0]) == []
    assert redis_client.hget(COUNTERS_KEY, "polls_dropped_late") == "3"


def test_two_dispatchers_at_the_same_moment_plan_each_window_once(on_simulator, redis_client):
    redis_client.sadd(REDIS_UNIVERSE_KEY, *liquid_symbols(on_simulator, 30))
    at = now_ms()
    first = poller_dispatch(at_ms=at)
    second = poller_dispatch(at_ms=at)
    assert len(first.shards) >= 2
    assert second.shards == []
    planned = [poll for shard in first.shards for poll in shard.polls]
    assert len(planned) == len(set(planned))
    # and the backfill of each symbol is queued once
    assert sorted(first.backfill) == sorted(liquid_symbols(on_simulator, 30))
    assert second.backfill == []


def test_a_dispatch_after_a_gap_polls_the_current_window_at_once_and_counts_the_missed_one(
    on_simulator, redis_client, settings
):
    """Beat restarting leaves a gap in dispatching longer than the planned lookahead: the
    window the late dispatch lands in is still polled (its overdue polls at once), so a symbol
    waits one window longer, not one interval longer; only whole windows before it are missed."""
    symbols = liquid_symbols(on_simulator, 30)
    redis_client.sadd(REDIS_UNIVERSE_KEY, *symbols)
    window_ms = settings.OI_WINDOW_SEC * 1000
    first_window = now_ms() // window_ms + 10  # clear of any window this test's setup claimed
    poller_dispatch(at_ms=first_window * window_ms + 10)
    late_window = first_window + poller.DISPATCH_LOOKAHEAD_WINDOWS + 2
    late_at = late_window * window_ms + window_ms // 2
    late = poller_dispatch(at_ms=late_at)
    current = [shard for shard in late.shards if shard.window_end_ms == late_at + window_ms // 2]
    assert current, "the window the late dispatch landed in was not planned"
    polls = [poll for shard in current for poll in shard.polls]
    # every poll due anywhere in that window (by the schedule the dispatch used: phases come
    # from each symbol's hash, so a window's count varies), the overdue ones moved to the
    # dispatch time
    window_start = late_window * window_ms
    segment = [seg for seg in poller._segments_read(redis_client) if seg.start_ms <= window_start][
        -1
    ]
    due = segment_polls_due(symbols, segment, window_start, window_start + window_ms)
    assert due, "no poll due in the late window: the test would prove nothing"
    assert sorted(poll.symbol for poll in due) == sorted(s for _, s in polls if s in symbols)
    assert min(due for due, _ in polls) == late_at
    assert all(shard.window_start_ms == late_at for shard in current)
    assert redis_client.hget(COUNTERS_KEY, "windows_missed") == "1"


def test_backfill_gives_a_full_baseline_window_at_once(on_simulator, redis_client, settings):
    symbol = liquid_symbols(on_simulator, 1)[0]
    filled = ring_backfill([symbol])
    samples = ring_read(redis_client, symbol)
    # 3 h of 5-minute history; what was fetched beyond the ring's 3 h was trimmed
    assert 36 <= len(samples) <= filled[symbol]
    assert all(sample.backfilled for sample in samples)
    oldest_age_min = (time.time() * 1000 - samples[0].time_ms) / 60_000
    assert oldest_age_min >= 60
    assert all(b.time_ms - a.time_ms == 300_000 for a, b in itertools.pairwise(samples))


def test_samples_api_serves_the_ring_when_fresh_and_postgres_otherwise(on_simulator, api_client):
    symbol = liquid_symbols(on_simulator, 1)[0]
    ring_backfill([symbol])
    url = "/api/market/open-interest/samples"

    # only backfilled history, never polled: not fresh, so Postgres (empty)
    assert api_client.get(url, {"symbol": symbol}).json()["servedFrom"] == "postgres"

    # once polled, the ring (which also holds the backfill) answers
    poller_run_shard(shard_starting_now([symbol]))
    body = api_client.get(url, {"symbol": symbol, "limit": 20}).json()
    assert body["servedFrom"] == "ring"
    assert body["count"] == 20
    stored = OpenInterestSnapshot.objects.get(symbol=symbol)
    assert body["samples"][0]["openInterest"] == plain_decimal(stored.open_interest)

    # asking for more than the ring holds falls back to Postgres
    assert api_client.get(url, {"symbol": symbol, "limit": 5000}).json()["servedFrom"] == "postgres"


def test_a_symbol_polled_before_its_backfill_still_alerts_on_the_backfilled_baseline(
    on_simulator, redis_client, settings
):
    from alerts.models import AlertRule, OpenInterestAlert

    AlertRule.objects.update(min_delta_contracts=None)
    symbol = liquid_symbols(on_simulator, 1)[0]

    # given a poll before the backfill landed: this process's tracker has no baseline yet
    poller_run_shard(shard_starting_now([symbol]))
    # when the backfill lands and then open interest jumps 20%
    ring_backfill([symbol])
    on_simulator.inject_event(symbol, "spike", 20)
    time.sleep(1.1)  # the exchange's OI time moves on a 1 s grid
    poller_run_shard(shard_starting_now([symbol]))

    # then the jump alerts against the backfilled history, once for each rule
    fired = OpenInterestAlert.objects.filter(symbol=symbol, direction="UP")
    assert sorted(fired.values_list("rule_name", flat=True)) == sorted(
        AlertRule.objects.filter(enabled=True).values_list("name", flat=True)
    )
