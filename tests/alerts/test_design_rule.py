"""The design's rule (§5) as the rules engine runs it (a ``median_baseline`` rule in
``alerts.rules``), checked at every step against the oracle that recomputes it from all samples
(``tests/alerts/design_oracle.py``): threshold and minimum edges, the baseline window, duplicates,
and the real Binance series of ../shared/data with SOURCES.md's figures."""

import csv
import json
import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alerts.enums import Direction, VerdictReason
from alerts.rules import BaselineTracker, GateAction, Rule, RuleBook, RuleKind, SymbolTracker
from tests.alerts.design_oracle import (
    DesignParams,
    NoVerdict,
    Verdict,
    accepted_samples,
    evaluate_samples,
)

DATA_DIR = Path(__file__).resolve().parents[3] / "shared" / "data"

MINUTE_MS = 60_000
T_NOW = 1_764_590_400_000
DEFAULTS = DesignParams()


def design_rule(params: DesignParams, cooldown_sec: int = 900) -> Rule:
    """The engine's rule for the oracle's parameters (re-arm as the default rule set has it)."""
    return Rule(
        rule_id=1, name="design", kind=RuleKind.MEDIAN_BASELINE, window_sec=params.w_high_sec,
        baseline_from_sec=params.w_low_sec, up_threshold=params.spike_threshold_pct,
        down_threshold=params.dump_threshold_pct, min_delta_contracts=params.min_delta_contracts,
        min_delta_usd=params.min_delta_usd, min_samples=params.min_baseline_samples,
        cooldown_sec=cooldown_sec, step_pct=params.spike_threshold_pct,
    )  # fmt: skip


def engine_agrees(tracker: SymbolTracker, rule: Rule, expected: Verdict, mark_price=None) -> list:
    """Assert the engine's observations at the tracker's latest sample say what the oracle
    says; returns them. No verdict in the oracle is no observation in the engine."""
    observations = tracker.observe(rule, mark_price)
    if isinstance(expected.reason, NoVerdict):
        assert observations == []
        return observations
    assert [o.direction for o in observations] == [Direction.UP, Direction.DOWN]
    crossed = [o for o in observations if o.crossed]
    assert len(crossed) <= 1
    seen = crossed[0] if crossed else observations[0]
    got = (seen.reason, seen.direction if crossed else None, seen.t_ms, seen.current,
           seen.reference, seen.pct_change, seen.abs_change)  # fmt: skip
    want = (expected.reason, expected.direction, expected.t_ms, expected.current,
            expected.baseline, expected.pct_change, expected.abs_change)  # fmt: skip
    assert got == want
    return observations


def both(
    samples: Sequence[tuple[int, float]],
    params: DesignParams = DEFAULTS,
    mark_price: float | None = None,
) -> Verdict:
    """The oracle's verdict, after checking the engine says the same."""
    expected = evaluate_samples(samples, params, mark_price)
    rule = design_rule(params)
    tracker = SymbolTracker([rule])
    for t_ms, oi in samples:
        tracker.add(t_ms, oi)
    engine_agrees(tracker, rule, expected, mark_price)
    return expected


def series(baseline: float, current: float, count: int = 7) -> list[tuple[int, float]]:
    """``count`` samples of ``baseline`` spread over ages 60..30 min, then ``current`` at T_NOW."""
    step = 30 * MINUTE_MS // (count - 1)
    history = [(T_NOW - 60 * MINUTE_MS + i * step, baseline) for i in range(count)]
    return [*history, (T_NOW, current)]


# Threshold edges


def test_exactly_five_percent_up_with_delta_exactly_at_minimum_alerts():
    verdict = both(series(100_000, 105_000))
    assert verdict.reason is VerdictReason.ALERT
    assert verdict.is_alert
    assert verdict.direction is Direction.UP
    assert verdict.baseline == 100_000
    assert verdict.current == 105_000
    assert verdict.pct_change == 0.05
    assert verdict.abs_change == 5_000
    assert verdict.baseline_samples == 7
    assert verdict.t_ms == T_NOW


@pytest.mark.parametrize("current", [104_999, 104_999.99])
def test_just_under_five_percent_up_is_below_threshold(current):
    verdict = both(series(100_000, current))
    assert verdict.reason is VerdictReason.BELOW_THRESHOLD
    assert verdict.direction is None
    assert not verdict.is_alert
    assert not verdict.is_blocked


def test_five_percent_up_just_under_minimum_delta_is_reported_blocked():
    verdict = both(series(99_980, 104_979))
    assert verdict.pct_change == 0.05
    assert verdict.abs_change == 4_999
    assert verdict.reason is VerdictReason.BLOCKED_MIN_DELTA_CONTRACTS
    assert verdict.direction is Direction.UP
    assert verdict.is_blocked
    assert not verdict.is_alert


def test_exactly_five_percent_down_with_delta_exactly_at_minimum_alerts():
    verdict = both(series(100_000, 95_000))
    assert verdict.reason is VerdictReason.ALERT
    assert verdict.direction is Direction.DOWN
    assert verdict.pct_change == -0.05
    assert verdict.abs_change == -5_000


@pytest.mark.parametrize("current", [95_001, 95_000.01])
def test_just_under_five_percent_down_is_below_threshold(current):
    assert both(series(100_000, current)).reason is VerdictReason.BELOW_THRESHOLD


def test_five_percent_down_just_under_minimum_delta_is_reported_blocked():
    verdict = both(series(99_980, 94_981))
    assert verdict.pct_change == -0.05
    assert verdict.abs_change == -4_999
    assert verdict.reason is VerdictReason.BLOCKED_MIN_DELTA_CONTRACTS
    assert verdict.direction is Direction.DOWN


def test_large_move_in_a_small_market_is_blocked_by_minimum_delta():
    verdict = both(series(10_000, 14_000))
    assert verdict.pct_change == 0.4
    assert verdict.reason is VerdictReason.BLOCKED_MIN_DELTA_CONTRACTS


@pytest.mark.parametrize(
    ("current", "direction"), [(105_000, Direction.UP), (95_000, Direction.DOWN)]
)
def test_usd_minimum_passes_at_its_edge_and_blocks_just_above(current, direction):
    at_edge = DesignParams(min_delta_usd=10_000)
    passing = both(series(100_000, current), at_edge, mark_price=2.0)
    assert passing.reason is VerdictReason.ALERT
    assert passing.direction is direction

    above = DesignParams(min_delta_usd=10_000.5)
    blocked = both(series(100_000, current), above, mark_price=2.0)
    assert blocked.reason is VerdictReason.BLOCKED_MIN_DELTA_USD
    assert blocked.direction is direction
    assert blocked.is_blocked


def test_usd_minimum_is_checked_after_the_contracts_minimum():
    params = DesignParams(min_delta_usd=1e12)
    assert both(series(99_980, 104_979), params, 2.0).reason is (
        VerdictReason.BLOCKED_MIN_DELTA_CONTRACTS
    )


@pytest.mark.parametrize("mark_price", [None, 0, -1.0, float("nan"), float("inf")])
def test_usd_minimum_without_a_usable_mark_price_is_reported_not_dropped(mark_price):
    verdict = both(series(100_000, 105_000), DesignParams(min_delta_usd=1), mark_price)
    assert verdict.reason is VerdictReason.MISSING_MARK_PRICE
    assert verdict.direction is Direction.UP
    assert verdict.is_blocked


def test_mark_price_is_ignored_without_a_usd_minimum_but_reported():
    verdict = both(series(100_000, 105_000), DEFAULTS, Decimal("64000.5"))
    assert verdict.reason is VerdictReason.ALERT
    rule = design_rule(DEFAULTS)
    tracker = SymbolTracker([rule])
    for t_ms, oi in series(100_000, 105_000):
        tracker.add(t_ms, oi)
    (up, _) = tracker.observe(rule, Decimal("64000.5"))
    assert up.abs_change_usd == 5_000 * 64_000.5


def test_minimum_delta_of_zero_leaves_only_the_percentage_rule():
    params = DesignParams(min_delta_contracts=0)
    assert both(series(100, 105), params).reason is VerdictReason.ALERT
    assert both(series(100, 95), params).reason is VerdictReason.ALERT


# Baseline window


def test_too_few_baseline_samples_gives_no_verdict_and_says_why():
    samples = [(T_NOW - 40 * MINUTE_MS, 100_000), (T_NOW - 35 * MINUTE_MS, 100_000)]
    verdict = both([*samples, (T_NOW, 200_000)])
    assert verdict.reason is NoVerdict.INSUFFICIENT_BASELINE
    assert verdict.baseline_samples == 2
    assert verdict.baseline is None
    assert verdict.pct_change is None
    assert verdict.direction is None
    assert both([*samples, (T_NOW, 200_000)], DesignParams(min_baseline_samples=2)).is_alert


def test_samples_only_younger_than_w_low_give_no_verdict():
    samples = [(T_NOW - ms, 100_000) for ms in range(30 * MINUTE_MS - 1, 0, -10_000)]
    verdict = both([*samples, (T_NOW, 200_000)])
    assert len(samples) == 180
    assert verdict.reason is NoVerdict.INSUFFICIENT_BASELINE
    assert verdict.baseline_samples == 0


def test_samples_only_older_than_w_high_give_no_verdict():
    samples = [(T_NOW - 60 * MINUTE_MS - 1 - i * 10_000, 100_000) for i in range(100)]
    verdict = both([*sorted(samples), (T_NOW, 200_000)])
    assert verdict.reason is NoVerdict.INSUFFICIENT_BASELINE
    assert verdict.baseline_samples == 0


def test_baseline_window_includes_both_boundaries_and_nothing_beyond():
    samples = [
        (T_NOW - 60 * MINUTE_MS - 1, 1.0),
        (T_NOW - 60 * MINUTE_MS, 100_000),
        (T_NOW - 30 * MINUTE_MS, 100_000),
        (T_NOW - 30 * MINUTE_MS + 1, 1.0),
        (T_NOW, 105_000),
    ]
    verdict = both(samples, DesignParams(min_baseline_samples=2))
    assert verdict.baseline_samples == 2
    assert verdict.baseline == 100_000
    assert verdict.is_alert


def test_baseline_is_the_median_and_an_even_count_averages_the_middle_pair():
    odd = [(T_NOW - (60 - 10 * i) * MINUTE_MS, v) for i, v in enumerate([1, 900, 100_000])]
    assert both([*odd, (T_NOW, 0)], DesignParams(min_baseline_samples=1)).baseline == 900
    even = [(T_NOW - (60 - 10 * i) * MINUTE_MS, v) for i, v in enumerate([7, 100_000, 1, 99_000])]
    verdict = both([*even, (T_NOW, 104_000)])
    assert verdict.baseline == (7 + 99_000) / 2
    outlier = [(T_NOW - (60 - 5 * i) * MINUTE_MS, 100_000) for i in range(7)]
    outlier[3] = (outlier[3][0], 10_000_000)
    assert both([*outlier, (T_NOW, 105_000)]).is_alert


def test_zero_baseline_gives_no_verdict():
    verdict = both(series(0, 5_000))
    assert verdict.reason is NoVerdict.ZERO_BASELINE
    assert verdict.baseline == 0
    assert verdict.pct_change is None


def test_no_samples_gives_no_verdict():
    assert evaluate_samples([], DEFAULTS).reason is NoVerdict.NO_SAMPLES
    rule = design_rule(DEFAULTS)
    assert SymbolTracker([rule]).observe(rule) == []


def test_a_gap_longer_than_w_high_empties_the_baseline():
    before_gap = series(100_000, 100_000)
    after_gap = [(T_NOW + 61 * MINUTE_MS, 200_000)]
    verdict = both([*before_gap, *after_gap])
    assert verdict.reason is NoVerdict.INSUFFICIENT_BASELINE
    assert verdict.baseline_samples == 0


# Duplicates and out-of-order samples


def test_duplicate_and_older_timestamps_are_ignored():
    tracker = SymbolTracker([design_rule(DEFAULTS)])
    assert tracker.add(T_NOW, 100_000)
    assert not tracker.add(T_NOW, 999_999)
    assert not tracker.add(T_NOW - 1, 999_999)
    assert tracker.latest == (T_NOW, 100_000, None)
    samples = [*series(100_000, 105_000), (T_NOW, 1.0), (T_NOW - 5 * MINUTE_MS, 1.0)]
    assert both(samples).current == 105_000
    assert accepted_samples([(3, 1), (2, 2), (3, 3), (4, 4)]) == [(3, 1.0), (4, 4.0)]


def test_decimal_values_are_taken_as_floats():
    samples = [(t, Decimal(str(v))) for t, v in series(100_000, 105_000)]
    assert both(samples).is_alert


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -1])
def test_non_finite_or_negative_open_interest_is_refused(bad):
    with pytest.raises(ValueError, match="open interest must be finite"):
        SymbolTracker([design_rule(DEFAULTS)]).add(T_NOW, bad)
    with pytest.raises(ValueError, match="open interest must be finite"):
        evaluate_samples([(T_NOW, bad)], DEFAULTS)


def test_tracker_keeps_only_the_last_w_high_of_samples():
    tracker = BaselineTracker(1800, 3600)
    for i in range(1080):
        tracker.add(T_NOW + i * 10_000, 100_000 + i)
    assert tracker.baseline_samples == 181
    assert tracker.baseline() == 100_000 + 1079 - 270


# The engine agrees with the oracle at every step

SMALL_WINDOW = DesignParams(
    w_low_sec=30,
    w_high_sec=60,
    min_baseline_samples=2,
    min_delta_contracts=5,
    min_delta_usd=20,
)


def assert_engine_matches_oracle(
    samples: Sequence[tuple[int, float]], params: DesignParams, mark_price: float | None
) -> None:
    rule = design_rule(params)
    tracker = SymbolTracker([rule])
    for count, (t_ms, oi) in enumerate(samples, start=1):
        if tracker.add(t_ms, oi):
            expected = evaluate_samples(samples[:count], params, mark_price)
            engine_agrees(tracker, rule, expected, mark_price)


@settings(max_examples=300, deadline=None, database=None)
@given(
    steps=st.lists(
        st.tuples(
            st.sampled_from([-5_000, 0, 1, 4_999, 5_000, 10_000, 15_000, 30_000, 61_000]),
            st.one_of(
                st.sampled_from([0, 95, 100, 105, 110, 1_000]),
                st.floats(min_value=0, max_value=1e6, allow_nan=False),
            ),
        ),
        max_size=80,
    ),
    mark_price=st.sampled_from([None, 0.5, 4.0]),
)
def test_engine_agrees_with_the_oracle_on_arbitrary_series(steps, mark_price):
    t_ms = T_NOW
    samples = []
    for step_ms, oi in steps:
        t_ms += step_ms
        samples.append((t_ms, oi))
    assert_engine_matches_oracle(samples, SMALL_WINDOW, mark_price)


@pytest.mark.parametrize("seed", range(5))
def test_engine_agrees_with_the_oracle_on_long_random_walks(seed):
    rng = random.Random(seed)
    samples, t_ms, oi = [], T_NOW, 100_000.0
    for _ in range(1_500):
        t_ms += rng.choice([10_000, 10_000, 10_000, 5_000, 20_000, 0, -10_000, 40 * MINUTE_MS // 9])
        oi = max(0.0, oi * (1 + rng.gauss(0, 0.004)) + rng.choice([0, 0, 0, 0, 0, 6_000, -6_000]))
        samples.append((t_ms, round(oi, rng.choice([0, 3]))))
    params = DesignParams(min_delta_usd=1_000)
    rule = design_rule(params)
    tracker = SymbolTracker([rule])
    reasons = Counter()
    for count, (t, value) in enumerate(samples, start=1):
        if not tracker.add(t, value):
            continue
        verdict = evaluate_samples(samples[:count], params, 0.25)
        engine_agrees(tracker, rule, verdict, 0.25)
        reasons[verdict.reason] += 1
    assert reasons[VerdictReason.BELOW_THRESHOLD] > 0


# Overrides


def test_a_symbol_override_changes_the_verdict():
    samples = series(100_000, 105_000)
    rule = design_rule(DEFAULTS)
    strict = rule.overridden({"spike_threshold_pct": Decimal("0.06"), "dump_threshold_pct": None})
    assert (strict.up_threshold, strict.down_threshold) == (0.06, 0.05)
    tracker = SymbolTracker([rule])
    for t_ms, oi in samples:
        tracker.add(t_ms, oi)
    assert tracker.observe(strict)[0].reason is VerdictReason.BELOW_THRESHOLD
    assert both(samples, DEFAULTS).is_alert


# Real Binance series (/work/shared/data; figures from its SOURCES.md)


@dataclass(frozen=True)
class RealSeries:
    contracts: list[tuple[int, float]]
    notional: list[tuple[int, float]]
    mark_prices: list[float | None]


def load_csv(name: str, t_col: str, oi_col: str, value_col: str) -> RealSeries:
    """Rows with empty OI are skipped (REZUSDT row 287; ETHUSDT rows 1 and 381, each the first
    row of a segment)."""
    contracts, notional, prices = [], [], []
    with (DATA_DIR / name).open(newline="") as handle:
        for row in csv.DictReader(handle):
            if not row[oi_col].strip():
                continue
            t_ms, oi, value = int(row[t_col]), float(row[oi_col]), float(row[value_col])
            contracts.append((t_ms, oi))
            notional.append((t_ms, value))
            prices.append(value / oi if oi else None)
    return RealSeries(contracts, notional, prices)


def naive_utc_ms(text: str) -> int:
    """Timestamps without a zone are taken as UTC; only differences between them matter."""
    moment = datetime.fromisoformat(text).replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


def load_alts(name: str) -> dict[str, RealSeries]:
    records = json.loads((DATA_DIR / name).read_text())
    loaded = {}
    for symbol, rows in records.items():
        times = [naive_utc_ms(row["timestamp"]) for row in rows]
        loaded[symbol] = RealSeries(
            contracts=[
                (t, float(row["open_interest"])) for t, row in zip(times, rows, strict=True)
            ],
            notional=[
                (t, float(row["open_interest_value"])) for t, row in zip(times, rows, strict=True)
            ],
            mark_prices=[float(row["price"]) for row in rows],
        )
    return loaded


def load_btc_10s() -> list[tuple[int, float]]:
    with (DATA_DIR / "BTCUSDT_openInterest_10s_2024-12_anmolkhullar24.csv").open(newline="") as f:
        return [
            (naive_utc_ms(row["Datetime"]), float(row["Open Interest"]))
            for row in csv.DictReader(f)
        ]


BTC_5M = "imsatoshi_BTCUSDT_openInterestHist_5m_2024-05-09_full.csv"
REZ_5M = "imsatoshi_REZUSDT_5m_2024-05-09_prefix.csv"
PEPE_5M = "imsatoshi_1000PEPEUSDT_5m_2024-05-09_prefix.csv"
ETH_15M = "ETHUSDT_oi_15m_2026-04-13_to_05-13_abanghangpa-jimi.csv"
ALTS_V0 = "alts_openInterest_15m_2025-07_winben000_v0a268c0.json"
ALTS_HEAD = "alts_openInterest_15m_2025-07_winben000_HEAD.json"

# The real series live in ../shared/data beside the project (as on CI): a missing folder is a
# failure, never a silent skip.
requires_data = pytest.mark.usefixtures("shared_data_present")


@pytest.fixture
def shared_data_present() -> None:
    if not DATA_DIR.is_dir():
        pytest.fail(f"{DATA_DIR} is missing: these tests read the real series from ../shared/data")


def real(name: str) -> RealSeries:
    if name == ETH_15M:
        return load_csv(name, "timestamp_ms", "oi", "oi_usd")
    return load_csv(name, "timestamp", "sumOpenInterest", "sumOpenInterestValue")


# SOURCES.md's "alert check": baseline = median of samples in [t-60 min, t-30 min] (any count
# >= 1), alert when |OI_t / baseline - 1| >= 5%, every sample counted (no minimum delta, no
# cooldown), run once on contracts and once on notional.
SOURCES_CHECK = DesignParams(min_baseline_samples=1, min_delta_contracts=0)


@dataclass(frozen=True)
class Replay:
    verdicts: list[Verdict]
    emitted: list[Verdict]

    @property
    def alerts(self) -> list[Verdict]:
        return [v for v in self.verdicts if v.is_alert]

    @property
    def peak_pct(self) -> float:
        """The evaluated change furthest from zero, in percent rounded to 2 places."""
        changes = [v.pct_change for v in self.verdicts if v.pct_change is not None]
        return round(100 * max(changes, key=abs), 2)

    def times(self, verdicts: list[Verdict]) -> list[str]:
        return [
            datetime.fromtimestamp(v.t_ms / 1000, UTC).strftime("%Y-%m-%d %H:%M") for v in verdicts
        ]


def replay(
    samples: list[tuple[int, float]],
    params: DesignParams,
    mark_prices: Sequence[float | None] | None = None,
) -> Replay:
    """Feed the engine sample by sample, check each step against the oracle, and gate the alerts
    as production does (re-arm at half the threshold or a further step, 15 min cooldown)."""
    rule = design_rule(params)
    tracker = SymbolTracker([rule])
    book = RuleBook()
    verdicts, emitted, seen = [], [], []
    for index, (t_ms, oi) in enumerate(samples):
        seen.append((t_ms, oi))
        if not tracker.add(t_ms, oi):
            continue
        mark_price = mark_prices[index] if mark_prices else None
        verdict = evaluate_samples(seen, params, mark_price)
        verdicts.append(verdict)
        for observation in engine_agrees(tracker, rule, verdict, mark_price):
            if book.apply("replay", observation) is GateAction.FIRE:
                emitted.append(verdict)
    return Replay(verdicts, emitted)


@requires_data
def test_sources_check_btc_5m_contracts_none_notional_one():
    data = real(BTC_5M)
    assert len(data.contracts) == 541
    contracts = replay(data.contracts, SOURCES_CHECK)
    assert contracts.alerts == []
    assert contracts.peak_pct == 3.44
    notional = replay(data.notional, SOURCES_CHECK)
    assert notional.times(notional.alerts) == ["2024-05-10 14:55"]
    assert round(100 * notional.alerts[0].pct_change, 2) == -5.21
    assert notional.alerts[0].direction is Direction.DOWN


@requires_data
def test_sources_check_rez_contracts_none_notional_eight_consecutive():
    data = real(REZ_5M)
    assert len(data.contracts) == 372
    contracts = replay(data.contracts, SOURCES_CHECK)
    assert contracts.alerts == []
    assert contracts.peak_pct == -3.21
    notional = replay(data.notional, SOURCES_CHECK)
    assert notional.times(notional.alerts) == [
        f"2024-05-10 {hh_mm}"
        for hh_mm in ("14:35", "14:40", "14:45", "14:50", "14:55", "15:00", "15:05", "15:10")
    ]
    changes = sorted(round(100 * v.pct_change, 1) for v in notional.alerts)
    assert (changes[0], changes[-1]) == (-6.9, -5.1)
    # one move: the gate lets its first alert out and holds the rest (not re-armed, and never a
    # further 5-point step beyond it)
    assert notional.times(notional.emitted) == ["2024-05-10 14:35"]


@requires_data
def test_sources_check_pepe_near_miss_has_no_alerts():
    data = real(PEPE_5M)
    contracts = replay(data.contracts, SOURCES_CHECK)
    notional = replay(data.notional, SOURCES_CHECK)
    assert (contracts.alerts, notional.alerts) == ([], [])
    assert (contracts.peak_pct, notional.peak_pct) == (2.16, 4.02)


@requires_data
def test_sources_check_eth_15m_contracts_none_notional_four():
    data = real(ETH_15M)
    assert len(data.contracts) == 879
    contracts = replay(data.contracts, SOURCES_CHECK)
    assert contracts.alerts == []
    assert contracts.peak_pct == 4.71
    step = next(v for v in contracts.verdicts if v.t_ms == naive_utc_ms("2026-04-13 23:30"))
    assert round(100 * step.pct_change, 1) == 4.3
    notional = replay(data.notional, SOURCES_CHECK)
    assert notional.times(notional.alerts) == [
        "2026-04-13 23:30",
        "2026-04-13 23:45",
        "2026-04-14 00:00",
        "2026-04-14 15:15",
    ]
    assert [round(100 * v.pct_change, 2) for v in notional.alerts] == [6.22, 5.83, 5.31, -5.75]
    assert all(v.baseline_samples == 3 for v in notional.alerts)
    # two moves, the rise (3 alerts) and the later dump: the gate lets out the first of each
    assert notional.times(notional.emitted) == ["2026-04-13 23:30", "2026-04-14 15:15"]


@requires_data
def test_sources_check_btc_10s_bursts_never_fill_the_baseline():
    samples = load_btc_10s()
    assert len(samples) == 294
    verdicts = replay(samples, SOURCES_CHECK).verdicts
    assert len(verdicts) == 294
    assert {v.reason for v in verdicts} == {NoVerdict.INSUFFICIENT_BASELINE}


@requires_data
def test_sources_check_alts_husdt_contracts_alerts_once():
    contract_alerts = {
        symbol: replay(data.contracts, SOURCES_CHECK).alerts
        for symbol, data in load_alts(ALTS_V0).items()
    }
    assert {s: len(a) for s, a in contract_alerts.items()} == {
        "DMCUSDT": 0,
        "MILKUSDT": 0,
        "HUSDT": 1,
        "SAHARAUSDT": 0,
        "MAVUSDT": 0,
    }
    (husdt,) = contract_alerts["HUSDT"]
    assert round(100 * husdt.pct_change, 2) == -5.40
    assert husdt.baseline_samples == 1
    head = load_alts(ALTS_HEAD)
    assert all(not replay(d.contracts, SOURCES_CHECK).alerts for d in head.values())


@requires_data
def test_alts_notional_alerts_that_sources_does_not_list():
    """SOURCES.md gives the alts figure for contracts only; notional finds DMCUSDT moves too."""
    v0 = {s: len(replay(d.notional, SOURCES_CHECK).alerts) for s, d in load_alts(ALTS_V0).items()}
    head = {
        s: len(replay(d.notional, SOURCES_CHECK).alerts) for s, d in load_alts(ALTS_HEAD).items()
    }
    assert v0 == {"DMCUSDT": 2, "MILKUSDT": 0, "HUSDT": 0, "SAHARAUSDT": 0, "MAVUSDT": 0}
    assert head == {"DMCUSDT": 1, "MILKUSDT": 0, "HUSDT": 0, "SAHARAUSDT": 0, "MAVUSDT": 0}


DESIGN_RULE = DesignParams()
DESIGN_RULE_USD = DesignParams(min_delta_usd=250_000)


@requires_data
@pytest.mark.parametrize("params", [DESIGN_RULE, DESIGN_RULE_USD], ids=["contracts", "usd"])
@pytest.mark.parametrize("name", [BTC_5M, REZ_5M, PEPE_5M, ETH_15M])
def test_design_rule_on_contracts_finds_no_alerts_in_the_5m_and_15m_series(name, params):
    """5%, 5000 contracts, 3 baseline samples, 15 min cooldown; mark price = notional / contracts."""
    data = real(name)
    result = replay(data.contracts, params, data.mark_prices)
    assert result.emitted == []
    assert not any(v.is_blocked for v in result.verdicts)
    evaluated = [v for v in result.verdicts if v.reason is not NoVerdict.INSUFFICIENT_BASELINE]
    assert len(evaluated) == len(result.verdicts) - 8


@requires_data
@pytest.mark.parametrize("params", [DESIGN_RULE, DESIGN_RULE_USD], ids=["contracts", "usd"])
def test_design_rule_on_alts_has_almost_no_baseline(params):
    """~15-minute polls put at most two samples in the window, except MAVUSDT's 1-minute start."""
    evaluated = {}
    for name in (ALTS_V0, ALTS_HEAD):
        for symbol, data in load_alts(name).items():
            result = replay(data.contracts, params, data.mark_prices)
            assert result.emitted == []
            evaluated[(name, symbol)] = [
                v.reason for v in result.verdicts if v.reason is not NoVerdict.INSUFFICIENT_BASELINE
            ]
    assert {key: reasons for key, reasons in evaluated.items() if reasons} == {
        (ALTS_V0, "MAVUSDT"): [VerdictReason.BELOW_THRESHOLD]
    }


@requires_data
def test_three_percent_rule_on_btc_is_held_back_by_the_contracts_minimum():
    params = DesignParams(spike_threshold_pct=0.03, dump_threshold_pct=0.03)
    data = real(BTC_5M)
    result = replay(data.contracts, params, data.mark_prices)
    blocked = [v for v in result.verdicts if v.is_blocked]
    assert len(blocked) == 6
    assert {v.reason for v in blocked} == {VerdictReason.BLOCKED_MIN_DELTA_CONTRACTS}
    assert all(abs(v.abs_change) < 5_000 for v in blocked)
    assert result.emitted == []


@requires_data
def test_three_percent_rule_on_rez_with_a_usd_minimum_passing_and_blocking():
    data = real(REZ_5M)
    passing = DesignParams(spike_threshold_pct=0.03, dump_threshold_pct=0.03, min_delta_usd=250_000)
    result = replay(data.contracts, passing, data.mark_prices)
    assert len(result.alerts) == 3
    assert result.times(result.emitted) == ["2024-05-09 23:20", "2024-05-10 14:55"]
    assert all(v.direction is Direction.DOWN for v in result.emitted)

    blocking = replace(passing, min_delta_usd=1_000_000)
    result = replay(data.contracts, blocking, data.mark_prices)
    assert result.emitted == []
    assert Counter(v.reason for v in result.verdicts if v.is_blocked) == {
        VerdictReason.BLOCKED_MIN_DELTA_USD: 3
    }
