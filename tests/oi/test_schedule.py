"""Poll interval, phases and egress-group plans (pure)."""

import itertools

import pytest

from oi.schedule import (
    MARK_PRICE_JOB,
    ScheduleSegment,
    groups_assign,
    groups_plan,
    poll_interval_sec,
    segment_following,
    segment_polls_due,
    split_into_shards,
    symbol_phase_fraction,
)


def interval(n: int, budget: float = 2000, lo: float = 5, hi: float = 20) -> float:
    return poll_interval_sec(
        n_symbols=n, max_weight_per_min=budget, min_interval_sec=lo, max_interval_sec=hi
    )


@pytest.mark.parametrize(
    ("n_symbols", "expected"),
    [
        (1, 5),  # clamped to MIN
        (100, 5),  # design: ~3 s, clamped to 5
        (300, 9.3),  # design ~9 s; + premiumIndex weight, rounded up
        (400, 12.3),  # design 12 s
        (650, 19.8),
        (2000, 20),  # clamped to MAX
    ],
)
def test_interval_follows_the_design_and_stays_within_bounds(n_symbols, expected):
    assert interval(n_symbols) == pytest.approx(expected)


@pytest.mark.parametrize("n_symbols", range(150, 660, 7))
def test_the_interval_never_asks_for_more_than_the_budget(n_symbols):
    seconds = interval(n_symbols)
    weight_per_min = (n_symbols + 10) * 60 / seconds
    assert weight_per_min <= 2000 + 1e-9 or seconds == 20
    # and wastes at most one 0.1 s step
    assert (n_symbols + 10) * 60 / (seconds - 0.1) > 2000 or seconds == 5


def test_a_symbols_phase_depends_on_its_name_only():
    symbols = [f"S{i}USDT" for i in range(99)]
    fractions = {s: symbol_phase_fraction(s) for s in symbols}
    assert all(0 <= f < 1 for f in fractions.values())
    assert len(set(fractions.values())) == len(symbols)
    # spread over the interval: every tenth of it holds some
    assert {int(f * 10) for f in fractions.values()} == set(range(10))


def _dues(symbols, segments, start_ms, end_ms, window_ms=2_000):
    """Every due time per symbol, window by window, each window under the segment in force."""
    by_symbol: dict[str, list[int]] = {}
    for window_start in range(start_ms, end_ms, window_ms):
        segment = next(seg for seg in reversed(segments) if seg.start_ms <= window_start)
        members = symbols(window_start) if callable(symbols) else symbols
        for poll in segment_polls_due(members, segment, window_start, window_start + window_ms):
            by_symbol.setdefault(poll.symbol, []).append(poll.due_ms)
    return by_symbol


def test_every_symbol_is_due_once_per_interval_across_consecutive_windows():
    symbols = [f"S{i}USDT" for i in range(37)]
    segment = segment_following(None, start_ms=1_000_000, interval_ms=7_300)
    by_symbol = _dues(symbols, [segment], 1_000_000, 1_000_000 + 74_000)
    assert set(by_symbol) == set(symbols)
    for times in by_symbol.values():
        assert all(b - a == 7_300 for a, b in itertools.pairwise(times))
        assert len(times) in (10, 11)  # the windows span 74 s


def test_a_window_longer_than_the_interval_holds_several_cycles():
    segment = ScheduleSegment(0, 0, 1_000)
    due = segment_polls_due([MARK_PRICE_JOB], segment, 0, 2_500)
    assert [p.due_ms for p in due] == [0, 1_000, 2_000]


@pytest.mark.parametrize(
    ("first_ms", "second_ms"), [(9_300, 4_700), (4_700, 9_300), (3_200, 4_800), (12_000, 12_300)]
)
def test_a_new_interval_never_makes_a_symbol_wait_longer_than_the_longer_interval(
    first_ms, second_ms
):
    symbols = [f"S{i}USDT" for i in range(300)]
    first = segment_following(None, start_ms=0, interval_ms=first_ms)
    second = segment_following(first, start_ms=40_000, interval_ms=second_ms)
    by_symbol = _dues(symbols, [first, second], 0, 80_000)
    longest = max(first_ms, second_ms)
    shortest = min(first_ms, second_ms)
    for times in by_symbol.values():
        gaps = [b - a for a, b in itertools.pairwise(times)]
        assert max(gaps) <= longest + 1
        assert min(gaps) >= shortest - 1  # and never twice in a row (no burst at the change)
    # and from the change on, one interval holds each symbol once: the new rate, no burst
    after = [t for times in by_symbol.values() for t in times if 40_000 <= t < 40_000 + second_ms]
    assert len(after) == len(symbols)


def test_universe_and_group_changes_cost_no_symbol_more_than_a_tenth_of_an_interval():
    # given a universe growing and shrinking and groups joining and leaving, the interval
    # re-planned at each change (as poller_dispatch does)
    universe = [f"S{i}USDT" for i in range(420)]
    timeline = [  # (from ms, symbols, budgets)
        (0, 300, {"a": 2000}),
        (30_000, 360, {"a": 2000}),
        (60_000, 360, {"a": 2000, "b": 2000}),
        (90_000, 420, {"a": 2000, "b": 2000, "c": 1000}),
        (120_000, 340, {"a": 2000, "c": 1000}),
        (150_000, 340, {"a": 2000}),
        (180_000, 400, {"a": 2000, "b": 2000, "c": 2000}),
    ]
    segments, intervals = [], []
    for start, n, budgets in timeline:
        plan = groups_plan(universe[:n], budgets, min_interval_sec=1, max_interval_sec=20)
        interval_ms = round(plan.interval_sec * 1000)
        previous = segments[-1] if segments else None
        segments.append(segment_following(previous, start_ms=start, interval_ms=interval_ms))
        intervals.append((start, interval_ms))

    def members(at_ms):
        return universe[: next(n for start, n, _ in reversed(timeline) if start <= at_ms)]

    by_symbol = _dues(members, segments, 0, 240_000)

    def interval_at(at_ms):
        return next(i for start, i in reversed(intervals) if start <= at_ms)

    # then every gap is within the longer of the intervals before and after it
    ratios = [
        (b - a) / max(interval_at(a), interval_at(b))
        for symbol, times in by_symbol.items()
        for a, b in itertools.pairwise(times)
        if symbol in members(a)
        and symbol in members(b)
        and all(symbol in members(t) for t in range(a, b, 2_000))
    ]
    ratios.sort()
    assert ratios[int(0.99 * len(ratios))] <= 1.1
    assert ratios[-1] <= 1.0 + 1e-3


def test_shards_interleave_so_each_spans_the_window():
    segment = ScheduleSegment(0, 0, 2_000)
    polls = segment_polls_due([f"S{i}USDT" for i in range(99)], segment, 0, 2_000)
    shards = split_into_shards(polls, max_per_shard=40)
    assert [len(s) for s in shards] == [33, 33, 33]
    assert sorted(p for s in shards for p in s) == sorted(polls)
    for shard in shards:
        assert shard[0].due_ms < 150 and shard[-1].due_ms > 1_850


@pytest.mark.parametrize("k", [1, 2, 3, 5])
def test_k_equal_groups_give_the_one_group_interval_divided_by_k(k):
    symbols = [f"S{i}USDT" for i in range(357)]
    one = groups_plan(symbols, {"a": 2000}, min_interval_sec=1, max_interval_sec=20)
    budgets = {f"g{i}": 2000 for i in range(k)}
    plan = groups_plan(symbols, budgets, min_interval_sec=1, max_interval_sec=20)
    assert plan.interval_sec == pytest.approx(one.interval_sec / k, rel=0.03)
    assert one.interval_sec / plan.interval_sec >= 0.97 * k  # samples/min
    assert all(weight <= 2000 + 1e-6 for weight in plan.weight_per_min.values())
    assert set(plan.assignment) == {*symbols, MARK_PRICE_JOB}


def test_groups_get_symbols_in_proportion_to_their_budgets_and_none_goes_over_its_budget():
    symbols = [f"S{i}USDT" for i in range(400)]
    budgets = {"big": 2000, "small": 500, "mid": 1200}
    plan = groups_plan(symbols, budgets, min_interval_sec=1, max_interval_sec=20)
    counts = {g: sum(1 for s in symbols if plan.assignment[s] == g) for g in budgets}
    for group, budget in budgets.items():
        assert plan.weight_per_min[group] <= budget + 1e-6
        assert counts[group] == pytest.approx(410 * budget / 3700, abs=11)


def test_a_symbol_stays_on_its_group_unless_its_group_leaves():
    symbols = [f"S{i}USDT" for i in range(400)]
    three = groups_assign(symbols, {"a": 2000, "b": 2000, "c": 2000})
    two = groups_assign(symbols, {"a": 2000, "b": 2000})
    survivors = [s for s in symbols if three[s] != "c"]
    moved = [s for s in survivors if two[s] != three[s]]
    assert len(moved) <= 0.03 * len(survivors)
    # a symbol joining the universe moves at most a couple of others
    grown = groups_assign([*symbols, "NEWUSDT"], {"a": 2000, "b": 2000, "c": 2000})
    assert sum(1 for s in symbols if grown[s] != three[s]) <= 2
    # and every host computes the same plan
    assert groups_assign(list(reversed(symbols)), {"c": 2000, "b": 2000, "a": 2000}) == three


def test_overload_stretches_the_interval_instead_of_starving_some_symbols():
    symbols = [f"S{i}USDT" for i in range(357)]
    plan = groups_plan(symbols, {"a": 600}, min_interval_sec=5, max_interval_sec=20)
    assert plan.overloaded
    assert plan.interval_sec == pytest.approx(60 * 367 / 600, abs=0.01)  # 36.7 s, past 20 s
    assert plan.weight_per_min["a"] <= 600 + 1e-6
    assert set(plan.assignment) == {*symbols, MARK_PRICE_JOB}
    fits = groups_plan(symbols[:180], {"a": 600}, min_interval_sec=5, max_interval_sec=20)
    assert not fits.overloaded and fits.interval_sec <= 20


@pytest.mark.parametrize("n_symbols", range(150, 660, 7))
def test_with_mark_prices_from_the_stream_the_premium_index_weight_goes_to_oi_polls(n_symbols):
    rest = interval(n_symbols)
    stream = poll_interval_sec(
        n_symbols=n_symbols, max_weight_per_min=2000, min_interval_sec=5, max_interval_sec=20,
        per_interval_weight=0,
    )  # fmt: skip
    assert stream <= rest
    assert n_symbols * 60 / stream <= 2000 + 1e-9  # within the budget, with no premiumIndex
    if 5 < rest < 20:
        assert n_symbols * 60 / stream > n_symbols * 60 / rest  # more OI polls per minute


def test_a_plan_at_a_share_of_the_budgets_leaves_the_rest_unplanned():
    """The poller plans 99% of each budget (oi.poller.PLAN_BUDGET_SHARE): the budget's queue of
    polls then drains after a burst instead of standing for good."""
    symbols = [f"S{i}USDT" for i in range(400)]
    budgets = {"a": 2000, "b": 1000}
    plan = groups_plan(symbols, budgets, min_interval_sec=1, max_interval_sec=20,
                       budget_share=0.99)  # fmt: skip
    full = groups_plan(symbols, budgets, min_interval_sec=1, max_interval_sec=20)
    for group, budget in budgets.items():
        assert 0.98 * budget <= plan.weight_per_min[group] <= 0.99 * budget + 1e-6
    assert plan.assignment == full.assignment  # the same groups, a longer interval
    assert plan.interval_sec == pytest.approx(full.interval_sec / 0.99, abs=0.011)
    with pytest.raises(ValueError):
        groups_plan(symbols, budgets, min_interval_sec=1, max_interval_sec=20, budget_share=0)
