"""The vectorised replay gives the per-sample engine's answer: every alert (time, move, regime) and
every held-back count, on random series with jumps, holes, flat stretches and zero open interest,
for random rules of every kind (relative ones with random statistics, or none), short windows and
long ones (4 h, read from coarse samples)."""

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from alerts.backtest import Series, coarse_indices, replay, replay_per_sample
from alerts.enums import Direction
from alerts.relative import ChangeStats
from alerts.rules import RuleKind, default_rule_specs, rule_from_fields
from oi.coarse import first_per_bucket
from oi.regimes import Regime

START_MS = 1_764_590_400_000


@st.composite
def series_and_rules(draw):
    count = draw(st.integers(min_value=1, max_value=400))
    kind = draw(st.sampled_from(list(RuleKind)))
    long_window = draw(st.booleans())
    step_choices = [1_000, 5_000, 10_000, 10_000, 10_000, 30_000, 400_000]
    if long_window:  # 4 h windows: coarse samples, now and then a hole of over an hour
        step_choices = [10_000, 60_000, 100_000, 299_000, 301_000, 400_000]
    steps = draw(st.lists(st.sampled_from(step_choices), min_size=count, max_size=count))
    if long_window:
        for hole in draw(st.lists(st.integers(0, count - 1), max_size=2)):
            steps[hole] = 4_000_000
    moves = draw(
        st.lists(
            st.sampled_from([0.0, 0.0, 0.001, -0.001, 0.02, -0.02, 0.05, -0.05, 0.15, -0.15, -1.0]),
            min_size=count, max_size=count,
        )
    )  # fmt: skip
    times = START_MS + np.cumsum(steps)
    values, value = [], 1000.0
    for move in moves:
        value = 500.0 if value == 0 and move > 0 else max(0.0, value * (1 + move))
        values.append(value)
    prices, price = [], 10.0
    for step in draw(st.lists(st.sampled_from([0.0, 0.01, -0.01, 0.05]), min_size=count,
                              max_size=count)):  # fmt: skip
        price *= 1 + step
        prices.append(price)
    price_array = np.array(prices)
    holes = draw(st.lists(st.integers(0, count - 1), max_size=5))
    price_array[holes] = np.nan
    if long_window:
        window_sec = 4 * 3600
    elif kind is RuleKind.RELATIVE:
        window_sec = draw(st.sampled_from([300, 900]))
    else:
        window_sec = draw(st.sampled_from([30, 60, 300, 900]))
    relative = kind is RuleKind.RELATIVE
    fields = {
        "name": "r",
        "kind": kind,
        "window_sec": window_sec,
        "baseline_from_sec": window_sec // 2 if kind is RuleKind.MEDIAN_BASELINE else None,
        "threshold_pct": draw(st.sampled_from([1.0, 3.0, 8.0] if relative else [0.01, 0.03, 0.1])),
        "dump_threshold_pct": draw(
            st.sampled_from([None, 0.02, 0.5] if not relative else [None, 2.0])
        ),
        "direction": draw(st.sampled_from(["UP", "DOWN", "BOTH"])),
        "cooldown_sec": draw(st.sampled_from([0, 20, 300])),
        "rearm_ratio": draw(st.sampled_from([0.0, 0.5, 0.9])),
        "step_pct": draw(st.sampled_from([None, 2.0 if relative else 0.03])),
        "min_delta_contracts": draw(st.sampled_from([None, 30.0])),
        "min_delta_usd": draw(st.sampled_from([None, 300.0])),
        "min_samples": draw(st.integers(1, 4)),
        "regimes": draw(st.sampled_from([[], [Regime.SHORT_BUILD], [Regime.LONG_BUILD]])),
    }
    rules = {"r": rule_from_fields(7, fields)}
    if draw(st.booleans()):
        rules["other"] = rule_from_fields(8, {**fields, "name": "other", "window_sec": 120,
                                              "kind": "window_change", "baseline_from_sec": None,
                                              "threshold_pct": 0.03, "dump_threshold_pct": None,
                                              "step_pct": None})  # fmt: skip
    start_ms = int(times[0]) + draw(st.integers(0, 30_000_000 if long_window else 3_000_000))
    series = Series("XUSDT", times.astype(np.int64), np.array(values), price_array)
    stats = None
    if relative and draw(st.integers(0, 4)):  # now and then none: no verdict
        stats = {
            window_sec: ChangeStats(
                window_sec=window_sec,
                median=draw(st.sampled_from([0.0, 0.001, -0.002])),
                scale=draw(st.sampled_from([1e-4, 0.005, 0.02])),
                count=500,
                first_ms=0,
                last_ms=0,
            )
        }
    return rules, series, start_ms, stats


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(series_and_rules())
def test_the_vectorised_replay_gives_every_alert_and_count_of_the_per_sample_engine(case):
    rules, series, start_ms, stats = case
    expected = replay_per_sample(rules, series, start_ms=start_ms, stats=stats)
    got = replay(rules, series, start_ms=start_ms, stats=stats)
    assert got.alerts == expected.alerts
    assert got.actions == expected.actions
    assert got.blocked_reasons == expected.blocked_reasons
    assert got.samples == expected.samples
    # skipping the crossings the gate cannot act on changes no alert, fire or re-arm
    fast = replay(rules, series, start_ms=start_ms, exact_counts=False, stats=stats)
    assert fast.alerts == expected.alerts
    assert (fast.actions["fire"], fast.actions["rearm"]) == (
        expected.actions["fire"],
        expected.actions["rearm"],
    )


def test_a_spike_that_falls_back_and_spikes_again_fires_twice_and_counts_what_it_held():
    # given 10-second samples: flat, +5% (fires), held above (not re-armed), back to flat
    # (re-arms), +5% again (fires)
    rule = rule_from_fields(
        1, {**default_rule_specs()[1], "direction": "UP", "step_pct": None, "cooldown_sec": 0}
    )
    values = [100.0] * 40 + [105.0] * 5 + [100.0] * 40 + [105.0] * 3
    times = START_MS + 10_000 * np.arange(len(values))
    series = Series("XUSDT", times, np.array(values), np.full(len(values), 2.0))

    # when it is replayed from the 31st sample (the 5-minute window is covered there)
    result = replay({"r": rule}, series, start_ms=int(times[30]))

    # then two alerts, at the first sample of each jump, and the holds and the re-arm counted
    assert [(a.t_ms, a.direction) for a in result.alerts] == [
        (int(times[40]), Direction.UP),
        (int(times[85]), Direction.UP),
    ]
    assert result.alerts[0].pct_change == 0.05 and result.alerts[0].regime == "build_price_flat"
    assert result.actions["hold_not_rearmed"] == 4 + 2
    assert result.actions["rearm"] == 1
    assert result == replay_per_sample({"r": rule}, series, start_ms=int(times[30]))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(1, 700_000), min_size=0, max_size=300))
def test_the_vectorised_downsampling_picks_the_samples_the_pure_one_does(steps):
    times = (START_MS + np.cumsum(np.array(steps, dtype=np.int64))).astype(np.int64)
    assert coarse_indices(times).tolist() == first_per_bucket(times.tolist())
