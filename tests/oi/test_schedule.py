"""Poll interval and phases (pure)."""

import itertools

import pytest

from oi.schedule import (
    MARK_PRICE_JOB,
    poll_interval_sec,
    polls_due,
    split_into_shards,
    symbol_phases_ms,
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


def test_phases_are_evenly_spread_and_stable():
    symbols = [f"S{i}USDT" for i in range(99)]
    phases = symbol_phases_ms(symbols, 10_000)
    assert phases[MARK_PRICE_JOB] == 0
    assert sorted(phases.values()) == [i * 100 for i in range(100)]
    assert symbol_phases_ms(reversed(symbols), 10_000) == phases


def test_a_joining_symbol_moves_the_others_by_at_most_one_slot():
    symbols = [f"S{i}USDT" for i in range(99)]
    before = symbol_phases_ms(symbols, 10_000)
    after = symbol_phases_ms([*symbols, "NEWUSDT"], 10_000)
    assert max(abs(after[s] - before[s]) for s in symbols) <= 10_000 // 100


def test_every_symbol_is_due_once_per_interval_across_consecutive_windows():
    phases = symbol_phases_ms([f"S{i}USDT" for i in range(37)], 7_300)
    polls = []
    for start in range(1_000_000, 1_000_000 + 73_000, 2_000):
        polls += polls_due(phases, 7_300, start, start + 2_000)
    by_symbol: dict[str, list[int]] = {}
    for poll in polls:
        by_symbol.setdefault(poll.symbol, []).append(poll.due_ms)
    assert set(by_symbol) == set(phases)
    for times in by_symbol.values():
        assert all(b - a == 7_300 for a, b in itertools.pairwise(times))
        assert len(times) in (10, 11)  # the windows span 74 s


def test_a_window_longer_than_the_interval_holds_several_cycles():
    phases = {"AUSDT": 100}
    assert [p.due_ms for p in polls_due(phases, 1_000, 0, 2_500)] == [100, 1_100, 2_100]


def test_shards_interleave_so_each_spans_the_window():
    phases = symbol_phases_ms([f"S{i}USDT" for i in range(99)], 2_000)
    polls = polls_due(phases, 2_000, 0, 2_000)
    shards = split_into_shards(polls, max_per_shard=40)
    assert [len(s) for s in shards] == [34, 33, 33]
    assert sorted(p for s in shards for p in s) == sorted(polls)
    for shard in shards:
        assert shard[0].due_ms < 100 and shard[-1].due_ms > 1_900


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
