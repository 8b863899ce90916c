"""Alert rules: windows, references, coverage, scope, overrides and the re-arm gate (pure)."""

import itertools
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alerts.enums import Direction, VerdictReason
from alerts.rules import (
    BaselineTracker,
    FireState,
    GateAction,
    Reference,
    Rule,
    RuleBook,
    RuleKind,
    Scope,
    SymbolTracker,
    WindowExtremes,
    default_rule_specs,
    gate,
    rule_from_fields,
)
from oi.regimes import Regime
from tests.alerts.design_oracle import DesignParams, evaluate_samples

T0 = 1_764_590_400_000
SEC = 1000
MIN = 60 * SEC

FIVE_MIN_3PCT = Rule(
    rule_id=1, name="oi-5m-3pct", kind=RuleKind.WINDOW_CHANGE, window_sec=300,
    up_threshold=0.03, down_threshold=0.03, cooldown_sec=300, step_pct=0.03,
)  # fmt: skip


def tracker_with(rule: Rule, samples) -> SymbolTracker:
    tracker = SymbolTracker([rule])
    for sample in samples:
        tracker.add(*sample)
    return tracker


def observe(rule: Rule, samples, direction: Direction = Direction.UP):
    found = [o for o in tracker_with(rule, samples).observe(rule) if o.direction is direction]
    return found[0] if found else None


def flat(value: float, minutes: int, step_sec: int = 10, start: int = T0):
    return [(start + i * step_sec * SEC, value) for i in range(minutes * 60 // step_sec)]


# Windows and references


def test_three_percent_within_five_minutes_alerts_and_just_under_does_not():
    history = flat(100_000, 6)
    t_now = history[-1][0] + 10 * SEC
    assert observe(FIVE_MIN_3PCT, [*history, (t_now, 103_000)]).reason is VerdictReason.ALERT
    below = observe(FIVE_MIN_3PCT, [*history, (t_now, 102_999)])
    assert below.reason is VerdictReason.BELOW_THRESHOLD
    assert below.move == pytest.approx(0.02999)


def test_the_reference_is_the_window_extreme_so_a_rise_after_a_dip_counts_in_full():
    # 100 five minutes ago, a dip to 99, then 101.98: +1.98% on the start, +3.01% on the low
    samples = [(T0, 100.0), (T0 + 2 * MIN, 99.0), (T0 + 5 * MIN, 101.98)]
    up = observe(FIVE_MIN_3PCT, samples)
    assert up.reason is VerdictReason.ALERT
    assert up.reference == 99.0
    assert up.reference_kind is Reference.WINDOW_LOW
    assert up.pct_change == pytest.approx(101.98 / 99 - 1)


def test_a_dump_is_measured_from_the_window_high():
    samples = [(T0, 100.0), (T0 + 1 * MIN, 104.0), (T0 + 5 * MIN, 100.5)]
    down = observe(FIVE_MIN_3PCT, samples, Direction.DOWN)
    assert down.reason is VerdictReason.ALERT
    assert down.reference == 104.0
    assert down.reference_kind is Reference.WINDOW_HIGH
    assert down.pct_change < 0
    assert down.move == pytest.approx(3.5 / 104)


def test_a_sample_older_than_the_window_is_not_a_reference():
    # the low is 5 min 1 s old: outside the window, so the move is against 100, not 90
    samples = [
        (T0, 100.0),
        (T0 + 1 * SEC, 90.0),
        (T0 + 2 * MIN, 100.0),
        (T0 + 5 * MIN + 2 * SEC, 101.0),
    ]
    up = observe(FIVE_MIN_3PCT, samples)
    assert up.reference == 100.0
    assert up.reason is VerdictReason.BELOW_THRESHOLD


def test_no_verdict_until_the_window_is_covered_and_backfilled_history_counts():
    four_minutes = [(T0 + i * 10 * SEC, 100.0) for i in range(24)] + [(T0 + 4 * MIN, 110.0)]
    assert tracker_with(FIVE_MIN_3PCT, four_minutes).observe(FIVE_MIN_3PCT) == []
    # 5-minute backfilled samples cover the window at once
    backfilled = [(T0 - 15 * MIN, 100.0), (T0 - 10 * MIN, 100.0), (T0 - 5 * MIN, 100.0)]
    up = observe(FIVE_MIN_3PCT, [*backfilled, (T0, 110.0)])
    assert up.reason is VerdictReason.ALERT


def test_after_a_hole_in_the_data_there_is_no_verdict_until_the_window_has_passed_it():
    before = flat(100.0, 10)
    after_hole = before[-1][0] + 20 * MIN  # the poller was down for 20 minutes
    samples = [*before, (after_hole, 110.0)]
    assert tracker_with(FIVE_MIN_3PCT, samples).observe(FIVE_MIN_3PCT) == []
    samples += flat(110.0, 6, start=after_hole + 10 * SEC)
    samples.append((samples[-1][0] + 10 * SEC, 114.0))
    assert observe(FIVE_MIN_3PCT, samples).reason is VerdictReason.ALERT


def test_one_hour_rule_waits_for_an_hour_of_samples():
    hour_rule = replace(FIVE_MIN_3PCT, rule_id=3, window_sec=3600, up_threshold=0.12)
    samples = flat(100.0, 59)
    samples.append((samples[-1][0] + 10 * SEC, 120.0))
    assert tracker_with(hour_rule, samples).observe(hour_rule) == []
    samples = flat(100.0, 61)
    samples.append((samples[-1][0] + 10 * SEC, 120.0))
    assert observe(hour_rule, samples).reason is VerdictReason.ALERT


def test_duplicate_and_older_samples_are_ignored():
    tracker = SymbolTracker([FIVE_MIN_3PCT])
    assert tracker.add(T0, 100)
    assert not tracker.add(T0, 200)
    assert not tracker.add(T0 - 1, 200)
    assert tracker.latest == (T0, 100.0, None)


def test_direction_scope_limits_the_observations():
    up_only = replace(FIVE_MIN_3PCT, directions=(Direction.UP,))
    samples = [*flat(100.0, 6), (T0 + 6 * MIN, 90.0)]
    assert [o.direction for o in tracker_with(up_only, samples).observe(up_only)] == [Direction.UP]


def test_scope_all_only_and_except():
    only = replace(FIVE_MIN_3PCT, scope=Scope.ONLY, symbols=frozenset({"BTCUSDT"}))
    but = replace(FIVE_MIN_3PCT, scope=Scope.EXCEPT, symbols=frozenset({"BTCUSDT"}))
    assert FIVE_MIN_3PCT.applies_to("ETHUSDT")
    assert only.applies_to("BTCUSDT") and not only.applies_to("ETHUSDT")
    assert but.applies_to("ETHUSDT") and not but.applies_to("BTCUSDT")


def test_an_override_changes_only_the_fields_it_sets():
    overridden = FIVE_MIN_3PCT.overridden(
        {"spike_threshold_pct": 0.08, "dump_threshold_pct": None, "cooldown_sec": 60}
    )
    assert overridden.up_threshold == 0.08
    assert overridden.down_threshold == 0.03
    assert overridden.cooldown_sec == 60
    assert overridden.window_sec == 300


def test_minimum_deltas_block_in_contracts_then_usd():
    rule = replace(FIVE_MIN_3PCT, min_delta_contracts=5_000, min_delta_usd=1_000_000)
    history = flat(100_000, 6)
    t_now = history[-1][0] + 10 * SEC
    small = tracker_with(rule, [*history, (t_now, 104_000)]).observe(rule, mark_price=1.0)
    assert small[0].reason is VerdictReason.BLOCKED_MIN_DELTA_CONTRACTS
    cheap = tracker_with(rule, [*history, (t_now, 110_000)]).observe(rule, mark_price=1.0)
    assert cheap[0].reason is VerdictReason.BLOCKED_MIN_DELTA_USD
    unpriced = tracker_with(rule, [*history, (t_now, 110_000)]).observe(rule)
    assert unpriced[0].reason is VerdictReason.MISSING_MARK_PRICE
    dear = tracker_with(rule, [*history, (t_now, 110_000)]).observe(rule, mark_price=150.0)
    assert dear[0].reason is VerdictReason.ALERT
    assert dear[0].abs_change_usd == 1_500_000


def test_price_change_and_oi_in_usd_come_from_the_samples_prices():
    samples = [(T0, 100.0, 2.0), (T0 + 2 * MIN, 100.0, 2.1), (T0 + 5 * MIN, 110.0, 2.2)]
    up = observe(FIVE_MIN_3PCT, samples)
    assert up.price_change_pct == pytest.approx(0.1)  # 2.0 at the window's start → 2.2
    assert up.oi_usd_before == pytest.approx(210.0)  # the low: the latest of equal values, at 2.1
    assert up.oi_usd_after == pytest.approx(242.0)


def test_the_median_rule_gives_the_design_verdicts():
    design = rule_from_fields(7, default_rule_specs()[0])
    params = DesignParams()
    samples = [(T0 - 60 * MIN + i * 5 * MIN, 100_000 + i * 10) for i in range(7)]
    samples.append((T0, 106_000))
    reference = evaluate_samples(samples, params)
    up = observe(design, samples)
    assert up.reason is reference.reason is VerdictReason.ALERT
    assert up.reference == reference.baseline
    assert up.pct_change == pytest.approx(reference.pct_change)
    # fewer than min_samples in the baseline window: no verdict
    assert tracker_with(design, samples[-3:]).observe(design) == []


@settings(max_examples=60, deadline=None)
@given(
    steps=st.lists(
        st.tuples(
            st.one_of(st.integers(1, 120), st.integers(200, 700)),
            st.floats(0, 1e6, allow_nan=False),
        ),
        min_size=1,
        max_size=80,
    ),
    window_sec=st.sampled_from([30, 300, 900]),
)
def test_window_extremes_match_a_brute_force_reading_of_the_window(steps, window_sec):
    extremes = WindowExtremes(window_sec)
    seen = []
    t_ms = T0
    for gap_sec, value in steps:
        t_ms += gap_sec * SEC
        sample = (t_ms, value, None)
        seen.append(sample)
        extremes.add(sample)
        window = [s for s in seen if t_ms - s[0] <= window_sec * SEC]
        assert extremes.low[1] == min(s[1] for s in window)
        assert extremes.high[1] == max(s[1] for s in window)
        assert extremes.oldest == window[0]
        # covered: the data reaches the window's start with no hole over the allowed gap
        older = [s for s in seen if t_ms - s[0] > window_sec * SEC]
        spanned = [*older[-1:], *window]
        holes = [b[0] - a[0] for a, b in itertools.pairwise(spanned)]
        reaches = bool(older) or t_ms - window[0][0] == window_sec * SEC
        allowed = max(window_sec * SEC // 4, 330 * SEC)
        assert extremes.covered(t_ms) == (reaches and all(h <= allowed for h in holes))


def test_the_median_path_matches_the_baseline_tracker():
    design = rule_from_fields(7, default_rule_specs()[0])
    tracker = SymbolTracker([design])
    baseline = BaselineTracker(1800, 3600)
    for i in range(800):
        value = 100_000 + (i * 37 % 101) * 50
        tracker.add(T0 + i * 10 * SEC, value)
        baseline.add(T0 + i * 10 * SEC, value)
        observations = tracker.observe(design)
        if baseline.baseline() is None or baseline.baseline_samples < 3:
            assert observations == []
        else:
            assert observations[0].reference == baseline.baseline()


# Re-arm and cooldown


def run(rule: Rule, values: list[float], step_sec: int = 10, lead_minutes: int = 6):
    """Feed a flat lead-in at 100, then ``values`` every ``step_sec``; the gate actions."""
    tracker = SymbolTracker([rule])
    book = RuleBook()
    actions = []
    samples = flat(100.0, lead_minutes, step_sec)
    t_ms = samples[-1][0]
    for value in values:
        t_ms += step_sec * SEC
        samples.append((t_ms, value))
    for t_ms, value in samples:
        tracker.add(t_ms, value)
        for observation in tracker.observe(rule):
            if observation.direction is Direction.UP:
                actions.append((t_ms, book.apply("XUSDT", observation)))
    return actions


def fired(actions) -> int:
    return sum(action is GateAction.FIRE for _, action in actions)


def test_a_value_oscillating_around_the_threshold_alerts_once():
    # a median rule (slow baseline) with a 1-minute cooldown, over two hours of 2.9% ↔ 3.1%
    rule = Rule(
        rule_id=9, name="median", kind=RuleKind.MEDIAN_BASELINE, window_sec=3600,
        baseline_from_sec=1800, up_threshold=0.03, down_threshold=0.03, cooldown_sec=60,
    )  # fmt: skip
    oscillating = [103.1 if i % 2 else 102.9 for i in range(720)]
    actions = run(rule, oscillating, lead_minutes=61)
    assert fired(actions) == 1
    held = [action for _, action in actions if action is GateAction.HOLD_NOT_REARMED]
    assert len(held) > 80  # every crossing after the cooldown was held back


def test_falling_back_to_half_the_threshold_rearms_after_the_cooldown():
    rule = replace(FIVE_MIN_3PCT, cooldown_sec=60, step_pct=None)
    # up 3.5%, back to flat for 10 min (the window forgets the low), up 3.5% again
    values = [103.5] * 3 + [103.5] * 60 + [106.7] * 3
    actions = run(rule, values)
    # the first move fires; 10 min at 103.5 makes the window low 103.5 (a 0% move): re-armed;
    # the second 3% move fires again
    assert fired(actions) == 2
    assert any(action is GateAction.REARM for _, action in actions)


def test_rearmed_within_the_cooldown_still_waits_for_it():
    state = FireState(fired_ms=T0, move=0.035, armed=True)
    observation = observe(FIVE_MIN_3PCT, [*flat(100.0, 6), (T0 + 6 * MIN, 104.0)])
    within = replace(observation, t_ms=T0 + 299 * SEC)
    assert gate(state, within) == (GateAction.HOLD_COOLDOWN, state)
    after = replace(observation, t_ms=T0 + 300 * SEC)
    action, new_state = gate(state, after)
    assert action is GateAction.FIRE
    assert new_state == FireState(T0 + 300 * SEC, observation.move, armed=False)


def test_a_move_that_grows_a_further_step_fires_again_without_rearming():
    observation = observe(FIVE_MIN_3PCT, [*flat(100.0, 6), (T0 + 6 * MIN, 104.0)])
    state = FireState(fired_ms=T0, move=0.031)
    later = T0 + 301 * SEC
    grown = replace(observation, t_ms=later, move=0.061)
    assert gate(state, grown)[0] is GateAction.FIRE
    not_enough = replace(observation, t_ms=later, move=0.060)
    assert gate(state, not_enough)[0] is GateAction.HOLD_NOT_REARMED
    no_step = replace(grown, rule=replace(FIVE_MIN_3PCT, step_pct=None))
    assert gate(state, no_step)[0] is GateAction.HOLD_NOT_REARMED


def test_a_blocked_move_does_not_mark_the_rule_fired():
    rule = replace(FIVE_MIN_3PCT, min_delta_contracts=5.0)
    blocked = observe(rule, [*flat(100.0, 6), (T0 + 6 * MIN, 104.0)])
    assert blocked.reason is VerdictReason.BLOCKED_MIN_DELTA_CONTRACTS
    assert gate(None, blocked) == (GateAction.BLOCKED, None)
    # so the next move that passes the minimum alerts at once
    passing = observe(rule, [*flat(100.0, 6), (T0 + 6 * MIN, 106.0)])
    assert gate(None, passing)[0] is GateAction.FIRE


def test_a_move_between_half_and_the_threshold_neither_fires_nor_rearms():
    state = FireState(fired_ms=T0, move=0.04)
    observation = observe(FIVE_MIN_3PCT, [*flat(100.0, 6), (T0 + 6 * MIN, 102.0)])
    assert gate(state, observation) == (GateAction.NONE, state)
    back = observe(FIVE_MIN_3PCT, [*flat(100.0, 6), (T0 + 6 * MIN, 101.5)])
    assert gate(state, back) == (GateAction.REARM, replace(state, armed=True))


def test_fire_state_round_trips_through_its_encoding():
    state = FireState(T0, 0.1 + 0.2, armed=True)
    assert FireState.decode(state.encode()) == state
    assert FireState.decode("") is None
    assert FireState.decode(None) is None


def test_the_default_set_is_the_design_rule_and_the_volspike_windows():
    rules = [rule_from_fields(i, spec) for i, spec in enumerate(default_rule_specs())]
    assert [(r.kind, r.window_sec, r.up_threshold, r.directions) for r in rules] == [
        (RuleKind.MEDIAN_BASELINE, 3600, 0.05, (Direction.UP, Direction.DOWN)),
        (RuleKind.WINDOW_CHANGE, 300, 0.03, (Direction.UP, Direction.DOWN)),
        (RuleKind.WINDOW_CHANGE, 900, 0.07, (Direction.UP, Direction.DOWN)),
        (RuleKind.WINDOW_CHANGE, 3600, 0.12, (Direction.UP, Direction.DOWN)),
        (RuleKind.WINDOW_CHANGE, 300, 0.03, (Direction.UP,)),  # the short-build preset, off
        (RuleKind.RELATIVE, 14400, 6.0, (Direction.UP, Direction.DOWN)),  # relative preset, off
    ]
    assert [r.regimes for r in rules] == [frozenset()] * 4 + [frozenset({Regime.SHORT_BUILD})] + [
        frozenset()
    ]
    assert rules[0].baseline_from_sec == 1800
    assert rules[0].min_delta_contracts == 5000


@pytest.mark.parametrize(
    "changes",
    [
        {"window_sec": 0},
        {"up_threshold": 0},
        {"down_threshold": 1.5},
        {"rearm_ratio": 1.0},
        {"step_pct": 0.0},
        {"baseline_from_sec": 60},
        {"kind": RuleKind.MEDIAN_BASELINE},
        {"directions": ()},
    ],
)
def test_an_impossible_rule_is_refused(changes):
    with pytest.raises(ValueError):
        replace(FIVE_MIN_3PCT, **changes)


# Regimes


def test_a_rule_with_regimes_blocks_other_regimes_and_keeps_its_state():
    short_builds = replace(FIVE_MIN_3PCT, regimes=frozenset({Regime.SHORT_BUILD}))
    history = [(t, oi, 100.0) for t, oi in flat(100_000, 6)]
    t_now = history[-1][0] + 10 * SEC

    rising = observe(short_builds, [*history, (t_now, 104_000, 101.0)])
    assert rising.regime is Regime.LONG_BUILD
    assert rising.reason is VerdictReason.BLOCKED_REGIME
    book = RuleBook()
    assert book.apply("X", rising) is GateAction.BLOCKED

    falling = observe(short_builds, [*history, (t_now, 104_000, 99.0)])
    assert falling.regime is Regime.SHORT_BUILD
    assert falling.reason is VerdictReason.ALERT
    assert book.apply("X", falling) is GateAction.FIRE

    # a rule without regimes fires on either
    assert observe(FIVE_MIN_3PCT, [*history, (t_now, 104_000, 101.0)]).reason is VerdictReason.ALERT


def test_regimes_come_from_the_stored_fields():
    fields = {**default_rule_specs()[-2]}
    assert fields["name"] == "oi-5m-3pct-short-build" and fields["enabled"] is False
    rule = rule_from_fields(9, fields)
    assert rule.regimes == frozenset({Regime.SHORT_BUILD})
    assert rule.directions == (Direction.UP,)
