"""Long windows (4 h, 24 h, on coarse samples), relative rules (robust z against the symbol's own
history) and liquidity tiers, in the pure engine: what a trader would see fire or not."""

import math
import random

import pytest

from alerts.enums import Direction, VerdictReason
from alerts.evaluation import _RuleSet
from alerts.relative import (
    MIN_CHANGES,
    ChangeStats,
    change_stats,
    tier_multiplier,
    tiers_parse,
    window_changes,
)
from alerts.rules import RuleKind, SymbolTracker, default_rule_specs, rule_from_fields
from oi.coarse import COARSE_BUCKET_MS, first_per_bucket, merged_history

T0 = 1_764_590_400_000  # a 5-minute boundary
HOUR = 3_600_000


def rule(rule_id=1, **fields):
    base = {"name": f"r{rule_id}", "kind": "window_change", "window_sec": 4 * 3600,
            "threshold_pct": "0.05", "cooldown_sec": 0}  # fmt: skip
    return rule_from_fields(rule_id, {**base, **fields})


def feed(tracker, times, value_at):
    for t in times:
        tracker.add(t, value_at(t), 10.0)


def test_a_4h_window_fires_once_10_second_samples_reach_4h_back():
    four_hours = rule(direction="UP")
    tracker = SymbolTracker([four_hours])
    # 3 h 50 min of flat OI, then +6%: not covered yet (nothing 4 h old), no verdict
    feed(tracker, range(T0, T0 + 230 * 60_000, 10_000), lambda t: 1000.0)
    tracker.add(T0 + 230 * 60_000, 1060.0, 10.0)
    assert tracker.observe(four_hours) == []
    # 4 h 10 min in: covered; the move against the window's low is +6%
    feed(tracker, range(T0 + 230 * 60_000 + 10_000, T0 + 250 * 60_000, 10_000), lambda t: 1000.0)
    tracker.add(T0 + 250 * 60_000, 1060.0, 10.0)
    (observation,) = tracker.observe(four_hours)
    assert observation.reason is VerdictReason.ALERT
    assert observation.move == pytest.approx(0.06)


def test_a_4h_window_with_a_hole_over_an_hour_has_no_verdict_until_the_hole_leaves_it():
    four_hours = rule(direction="UP")
    tracker = SymbolTracker([four_hours])
    times = [
        t for t in range(T0, T0 + 6 * HOUR, 10_000) if not T0 + HOUR < t < T0 + 2 * HOUR + 60_000
    ]
    feed(tracker, times, lambda t: 1000.0)
    tracker.add(T0 + 6 * HOUR, 1100.0, 10.0)  # the hole (1 h 1 min) lies 4-5 h back: inside
    assert tracker.observe(four_hours) == []
    feed(
        tracker, range(T0 + 6 * HOUR + 10_000, T0 + 6 * HOUR + 5 * 60_000, 10_000), lambda t: 1000.0
    )
    tracker.add(T0 + 6 * HOUR + 5 * 60_000, 1100.0, 10.0)  # the hole's far end left the window
    assert tracker.observe(four_hours)[0].reason is VerdictReason.ALERT


def test_a_long_window_holds_one_sample_per_5_minutes_and_a_rebuilt_tracker_agrees():
    # given 26 h of 10-second samples with noise and a 24 h rule with a 1 h one beside it
    rng = random.Random(7)
    times = list(range(T0, T0 + 26 * HOUR, 10_000))
    values = [1000.0]
    for _ in times[1:]:
        values.append(values[-1] * (1 + rng.gauss(0, 0.002)))
    rules = [rule(1, window_sec=24 * 3600, threshold_pct="0.01"),
             rule(2, window_sec=3600, threshold_pct="0.01")]  # fmt: skip
    live = SymbolTracker(rules)
    for t, v in zip(times, values, strict=True):
        live.add(t, v)
    # a tracker rebuilt from the coarse ring (first sample per 5 min) and the last 3 h in full
    coarse = [(times[i], values[i]) for i in first_per_bucket(times)]
    fine = [(t, v) for t, v in zip(times, values, strict=True) if t >= times[-1] - 3 * HOUR]
    rebuilt = SymbolTracker(rules)
    for t, v in merged_history(coarse, fine, time_of=lambda sample: sample[0]):
        rebuilt.add(t, v)
    window = live._windows[rules[0].window_key]
    assert len(window) == 24 * 3600_000 // COARSE_BUCKET_MS  # 288, not 8,640
    for r in rules:
        assert live.observe(r) == rebuilt.observe(r)
        assert live.observe(r)  # covered


# Relative rules


def normal_day_series(days=3, seed=1):
    """5-minute OI with ±0.5% noise (a symbol's ordinary life)."""
    rng = random.Random(seed)
    times = list(range(T0, T0 + days * 86_400_000, COARSE_BUCKET_MS))
    values = [1000.0 * (1 + rng.uniform(-0.005, 0.005)) for _ in times]
    return times, values


def test_statistics_are_a_robust_centre_and_scale_of_the_windows_changes():
    times, values = normal_day_series()
    stats = change_stats(times, values, 3600)
    assert stats is not None
    assert abs(stats.median) < 0.001
    # uniform ±0.5% levels: a change's robust sigma is about 0.4%
    assert 0.002 < stats.scale < 0.006
    # one 50% liquidation cascade in the history barely moves them (a std would jump)
    spiked = values[:]
    spiked[400] = values[400] * 1.5
    with_spike = change_stats(times, spiked, 3600)
    assert with_spike.scale == pytest.approx(stats.scale, rel=0.05)


def test_no_statistics_without_enough_history():
    times, values = normal_day_series(days=1)
    assert change_stats(times[:MIN_CHANGES], values[:MIN_CHANGES], 300) is None  # too few
    assert change_stats(times[:200], values[:200], 300) is None  # 16 h: under a day
    hourly = list(range(T0, T0 + 3 * 86_400_000, 2 * HOUR))  # holes wider than 1 h / 4
    assert window_changes(hourly, [1.0] * len(hourly), 3600) == []


def relative_case(change: float, stats: ChangeStats | None):
    relative = rule(kind="relative", window_sec=3600, threshold_pct="6", direction="BOTH")
    tracker = SymbolTracker([relative])
    feed(tracker, range(T0, T0 + HOUR + 60_000, 10_000), lambda t: 1000.0)
    tracker.add(T0 + HOUR + 70_000, 1000.0 * (1 + change), 10.0)
    return tracker.observe(relative, stats=stats)


def test_a_relative_rule_fires_on_the_symbols_outlier_and_not_on_its_normal_move():
    times, values = normal_day_series()
    stats = change_stats(times, values, 3600)
    # +1%: about 2.5 robust sigmas for this symbol: normal
    calm = {o.direction: o for o in relative_case(0.01, stats)}
    assert calm[Direction.UP].reason is VerdictReason.BELOW_THRESHOLD
    assert calm[Direction.UP].move == pytest.approx((0.01 - stats.median) / stats.scale)
    # +4%: about 10 robust sigmas: fires, labelled with its real OI change
    (spike,) = [o for o in relative_case(0.04, stats) if o.crossed]
    assert spike.reason is VerdictReason.ALERT and spike.direction is Direction.UP
    assert spike.pct_change == pytest.approx(0.04)
    # the same +4% on a symbol whose hour moves 3% as a rule: not extreme there
    wild = ChangeStats(3600, 0.0, 0.03, 500, T0, T0)
    assert not any(o.crossed for o in relative_case(0.04, wild))


def test_a_relative_rule_gives_no_verdict_without_statistics():
    assert relative_case(0.5, None) == []


def test_the_disabled_relative_preset_is_a_4h_robust_z_rule():
    (preset,) = [s for s in default_rule_specs() if s["kind"] == RuleKind.RELATIVE]
    assert preset["enabled"] is False and preset["window_sec"] == 4 * 3600
    made = rule_from_fields(9, preset)
    assert made.long_window and made.up_threshold == float(preset["threshold_pct"])


# Liquidity tiers


def test_tiers_scale_thresholds_by_volume_band_and_an_override_wins():
    tiers = tiers_parse("1000000000:0.5, 100000000:1, 0:1.5")
    assert [tier_multiplier(v, tiers) for v in (5e9, 2e8, 1e6, None)] == [0.5, 1.0, 1.5, 1.0]
    with pytest.raises(ValueError, match="'abc'"):
        tiers_parse("abc")
    tiered = rule(1, window_sec=300, threshold_pct="0.04", dump_threshold_pct="0.8",
                  liquidity_tiers=True)  # fmt: skip
    plain = rule(2, window_sec=300, threshold_pct="0.04")
    rule_set = _RuleSet(
        None, 0.0, (tiered, plain),
        {"SMALLUSDT": {1: {"spike_threshold_pct": "0.10"}}},
        multipliers={"BTCUSDT": 0.5, "SMALLUSDT": 1.5, "MIDUSDT": 1.5},
    )  # fmt: skip
    btc_tiered, btc_plain = rule_set.rules_for("BTCUSDT")
    assert btc_tiered.up_threshold == pytest.approx(0.02) and btc_plain.up_threshold == 0.04
    mid_tiered, _ = rule_set.rules_for("MIDUSDT")
    assert mid_tiered.up_threshold == pytest.approx(0.06)
    assert mid_tiered.down_threshold == 1.0  # 0.8 × 1.5, a dump is at most 100%
    small_tiered, _ = rule_set.rules_for("SMALLUSDT")
    assert small_tiered.up_threshold == 0.10  # the override, not 0.04 × 1.5
    assert math.isclose(small_tiered.down_threshold, 1.0)


def test_a_relative_rule_cannot_use_tiers():
    with pytest.raises(ValueError, match="already relative"):
        rule(kind="relative", window_sec=3600, threshold_pct="6", liquidity_tiers=True)
