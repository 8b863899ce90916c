"""Replay every real Binance OI series in ../shared/data through the default rule set.

For each new sample: tracker.add(t_ms, oi, price), then for every rule that applies to the series
and every observation of tracker.observe(rule): RuleBook.apply(symbol, observation). A FIRE is an
alert. Rules run on contracts (the engine's unit); the price (notional / contracts, or the file's
price) is passed so that USD minimums could work (the defaults set none).

A rule is "n/a" on a series when its window_sec is shorter than 2x the series' sampling interval
(the median step between consecutive samples): the data cannot resolve the window.

Per rule it also prints the regime mix of its alerts (oi.regimes; "unknown" where a series has
no price) with the alerts per symbol-day, and checks that the backtest's vectorised replay
(alerts.backtest.replay) raises the same alerts on every series.

The default rules include the disabled relative preset (a 4 h change at a robust z of 6 against
the symbol's own 4 h changes). Its statistics are walked forward as the live job computes them:
every hour (OI_CHANGE_STATS_REFRESH_SEC), from the series' coarse samples (first per 5 minutes)
of the 7 days before (OI_CHANGE_STATS_DAYS), never from later samples; until a series has a day
of history the rule gives no verdict there. The backtest's replay holds a symbol's statistics
fixed over a period, so the replay-equality check covers the other rules.

Pure: imports alerts.rules, alerts.relative, alerts.backtest and alerts.enums only, no Django. Also writes the output to
test-artifacts/replay-rules.txt.

    python bench/replay_rules.py
    python bench/replay_rules.py --data-dir ../shared/data
"""

import argparse
import bisect
import csv
import itertools
import json
import statistics
import sys
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT_ROOT))

import numpy as np  # noqa: E402

from alerts.backtest import Series as BacktestSeries  # noqa: E402
from alerts.backtest import replay as backtest_replay  # noqa: E402
from alerts.enums import Direction, VerdictReason  # noqa: E402
from alerts.relative import ChangeStats, change_stats  # noqa: E402
from alerts.rules import (  # noqa: E402
    GateAction,
    Rule,
    RuleBook,
    RuleKind,
    SymbolTracker,
    default_rule_specs,
    rule_from_fields,
)

DEFAULT_DATA_DIR = PROJECT_ROOT.parent / "shared" / "data"
ARTIFACT = PROJECT_ROOT / "test-artifacts" / "replay-rules.txt"
DAY_MS = 86_400_000
STATS_REFRESH_MS = 3_600_000
STATS_DAYS = 7
COARSE_MS = 300_000
# A step longer than this many sampling intervals is a gap: not counted in the observed days.
GAP_FACTOR = 3


@dataclass
class Series:
    label: str
    symbol: str
    price_source: str
    rows: list[tuple[int, float, float | None]] = field(default_factory=list)
    notional: list[tuple[int, float, float | None]] = field(default_factory=list)
    skipped_missing_oi: int = 0
    duplicates: int = 0
    out_of_order: int = 0
    note: str = ""

    def finish(self, raw: list[tuple[int, float, float | None, float | None]]) -> None:
        """Sort by time (stable) and keep the first row of each timestamp. Rows are
        (t_ms, contracts, price, notional USD or None)."""
        self.out_of_order += sum(1 for a, b in itertools.pairwise(raw) if b[0] < a[0])
        seen: set[int] = set()
        for t_ms, oi, price, value in sorted(raw, key=lambda r: r[0]):
            if t_ms in seen:
                self.duplicates += 1
                continue
            seen.add(t_ms)
            self.rows.append((t_ms, oi, price))
            if value is not None:
                self.notional.append((t_ms, value, None))

    @property
    def steps_ms(self) -> list[int]:
        return [b[0] - a[0] for a, b in zip(self.rows, self.rows[1:], strict=False)]

    @property
    def interval_ms(self) -> float:
        return statistics.median(self.steps_ms)

    @property
    def span_days(self) -> float:
        return (self.rows[-1][0] - self.rows[0][0]) / DAY_MS

    @property
    def observed_days(self) -> float:
        """Span without the gaps (steps longer than GAP_FACTOR sampling intervals)."""
        limit = GAP_FACTOR * self.interval_ms
        return sum(step for step in self.steps_ms if step <= limit) / DAY_MS

    @property
    def gaps(self) -> int:
        limit = GAP_FACTOR * self.interval_ms
        return sum(1 for step in self.steps_ms if step > limit)


def naive_utc_ms(text: str) -> int:
    """Timestamps without a zone are taken as UTC; only differences between them matter."""
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp() * 1000)


def price_of(value: float, oi: float) -> float | None:
    return value / oi if oi > 0 else None


def load_notional_csv(path: Path, t_col: str, oi_col: str, value_col: str, symbol: str) -> Series:
    series = Series(path.name, symbol, f"{value_col}/{oi_col}")
    raw = []
    with path.open(newline="") as handle:
        for row in csv.DictReader(handle):
            if not (row[oi_col] or "").strip():
                series.skipped_missing_oi += 1
                continue
            oi = float(row[oi_col])
            value = (row[value_col] or "").strip()
            notional = float(value) if value else None
            price = price_of(notional, oi) if notional is not None else None
            raw.append((int(float(row[t_col])), oi, price, notional))
    series.finish(raw)
    return series


def load_btc_10s(path: Path) -> Series:
    series = Series(path.name, "BTCUSDT", "none in file", note="local wall clock, zone unknown")
    raw = []
    with path.open(newline="") as handle:
        for row in csv.DictReader(handle):
            if not (row["Open Interest"] or "").strip():
                series.skipped_missing_oi += 1
                continue
            t_ms = naive_utc_ms(row["Datetime"].strip())
            raw.append((t_ms, float(row["Open Interest"]), None, None))
    series.finish(raw)
    return series


def load_alts(paths: list[Path]) -> list[Series]:
    """Both snapshots of the same collector's file, merged per symbol (they overlap)."""
    raw: dict[str, list[tuple[int, float, float | None, float | None]]] = {}
    per_file: dict[str, Counter] = {}
    skipped: Counter = Counter()
    out_of_order: Counter = Counter()
    for path in paths:
        for symbol, records in json.loads(path.read_text()).items():
            times = [naive_utc_ms(record["timestamp"]) for record in records]
            out_of_order[symbol] += sum(1 for a, b in itertools.pairwise(times) if b < a)
            for record in records:
                per_file.setdefault(symbol, Counter())[path.stem.rsplit("_", 1)[-1]] += 1
                if record.get("open_interest") is None:
                    skipped[symbol] += 1
                    continue
                raw.setdefault(symbol, []).append(
                    (
                        naive_utc_ms(record["timestamp"]),
                        float(record["open_interest"]),
                        record.get("price"),
                        record.get("open_interest_value"),
                    )
                )
    label = "alts_15m_2025-07 (v0a268c0+HEAD)"
    loaded = []
    for symbol in sorted(raw):
        series = Series(label, symbol, "price field")
        series.skipped_missing_oi = skipped[symbol]
        series.finish(raw[symbol])
        # Order is checked within each file, not across the concatenated snapshots.
        series.out_of_order = out_of_order[symbol]
        counts = ", ".join(f"{name}:{n}" for name, n in sorted(per_file[symbol].items()))
        series.note = f"rows per file {counts}; zone not stated"
        loaded.append(series)
    return loaded


def load_all(data_dir: Path) -> list[Series]:
    return [
        load_btc_10s(data_dir / "BTCUSDT_openInterest_10s_2024-12_anmolkhullar24.csv"),
        load_notional_csv(
            data_dir / "imsatoshi_BTCUSDT_openInterestHist_5m_2024-05-09_full.csv",
            "timestamp",
            "sumOpenInterest",
            "sumOpenInterestValue",
            "BTCUSDT",
        ),
        load_notional_csv(
            data_dir / "imsatoshi_REZUSDT_5m_2024-05-09_prefix.csv",
            "timestamp",
            "sumOpenInterest",
            "sumOpenInterestValue",
            "REZUSDT",
        ),
        load_notional_csv(
            data_dir / "imsatoshi_1000PEPEUSDT_5m_2024-05-09_prefix.csv",
            "timestamp",
            "sumOpenInterest",
            "sumOpenInterestValue",
            "1000PEPEUSDT",
        ),
        load_notional_csv(
            data_dir / "ETHUSDT_oi_15m_2026-04-13_to_05-13_abanghangpa-jimi.csv",
            "timestamp_ms",
            "oi",
            "oi_usd",
            "ETHUSDT",
        ),
        *load_alts(
            [
                data_dir / "alts_openInterest_15m_2025-07_winben000_v0a268c0.json",
                data_dir / "alts_openInterest_15m_2025-07_winben000_HEAD.json",
            ]
        ),
    ]


def applies(rule: Rule, series: Series) -> bool:
    return rule.window_sec * 1000 >= 2 * series.interval_ms


@dataclass
class RuleResult:
    actions: Counter = field(default_factory=Counter)
    blocked: Counter = field(default_factory=Counter)
    verdict_samples: int = 0
    crossings: int = 0
    partial_window: int = 0
    peak_up: float = 0.0
    peak_down: float = 0.0
    fires: list[tuple[int, str, float, float]] = field(default_factory=list)
    regimes: Counter = field(default_factory=Counter)
    """The OI/price regime of each alert (oi.regimes; "unknown" where the series has no price)."""

    def merge(self, other: "RuleResult") -> None:
        self.actions.update(other.actions)
        self.regimes.update(other.regimes)
        self.blocked.update(other.blocked)
        self.verdict_samples += other.verdict_samples
        self.crossings += other.crossings
        self.partial_window += other.partial_window


class StatsWalk:
    """A relative rule's statistics as the hourly job would have had them at each time: from the
    coarse samples (first per 5-minute bucket) of the STATS_DAYS before the last refresh."""

    def __init__(self, rows: list[tuple[int, float, float | None]]) -> None:
        self._coarse: list[tuple[int, float]] = []
        for t_ms, value, _price in rows:
            if not self._coarse or t_ms // COARSE_MS != self._coarse[-1][0] // COARSE_MS:
                self._coarse.append((t_ms, value))
        self._times = [t for t, _v in self._coarse]
        self._cache: dict[tuple[int, int], ChangeStats | None] = {}

    def at(self, window_sec: int, t_ms: int) -> ChangeStats | None:
        refreshed = t_ms - t_ms % STATS_REFRESH_MS
        key = (window_sec, refreshed)
        if key not in self._cache:
            lo = bisect.bisect_left(self._times, refreshed - STATS_DAYS * DAY_MS)
            hi = bisect.bisect_left(self._times, refreshed)
            part = self._coarse[lo:hi]
            self._cache[key] = change_stats(
                [t for t, _v in part], [v for _t, v in part], window_sec
            ) if part else None  # fmt: skip
        return self._cache[key]


def replay(
    symbol: str,
    rows: list[tuple[int, float, float | None]],
    rules: list[Rule],
    interval_ms: float,
) -> dict[int, RuleResult]:
    """Only the rules given are applied (the caller drops the n/a ones)."""
    tracker = SymbolTracker(rules)
    walk = StatsWalk(rows) if any(rule.kind is RuleKind.RELATIVE for rule in rules) else None
    book = RuleBook()
    results = {rule.rule_id: RuleResult() for rule in rules}
    # Verdicts given while the window holds no sample near W old (after a gap): read from the
    # tracker's window to flag them; the engine itself only checks the first sample ever seen.
    windows = tracker._windows
    for t_ms, oi, price in rows:
        if not tracker.add(t_ms, oi, price):
            continue
        for rule in rules:
            stats = walk.at(rule.window_sec, t_ms) if rule.kind is RuleKind.RELATIVE else None
            observations = tracker.observe(rule, mark_price=None, stats=stats)
            result = results[rule.rule_id]
            if observations:
                result.verdict_samples += 1
                if rule.kind is not RuleKind.MEDIAN_BASELINE:
                    oldest_age = t_ms - windows[rule.window_key].oldest[0]
                    if oldest_age < rule.window_sec * 1000 - 2 * interval_ms:
                        result.partial_window += 1
            for obs in observations:
                if obs.direction is Direction.UP:
                    result.peak_up = max(result.peak_up, obs.move)
                else:
                    result.peak_down = max(result.peak_down, obs.move)
                if obs.reason is VerdictReason.ALERT:
                    result.crossings += 1
                action = book.apply(symbol, obs)
                result.actions[action] += 1
                if action is GateAction.BLOCKED:
                    result.blocked[obs.reason] += 1
                if action is GateAction.FIRE:
                    result.fires.append((t_ms, obs.direction.value, obs.move, obs.abs_change))
                    result.regimes[obs.regime.value] += 1
    return results


def rows_of(series: Series, unit: str) -> list[tuple[int, float, float | None]]:
    return series.rows if unit == "contracts" else series.notional


def backtest_alerts(series: Series, rows, rules: list[Rule]) -> list[tuple[int, int, str]]:
    """(t_ms, rule id, direction) of every alert of the backtest's vectorised replay."""
    arrays = BacktestSeries(
        series.symbol,
        np.array([row[0] for row in rows], dtype=np.int64),
        np.array([row[1] for row in rows], dtype=np.float64),
        np.array([np.nan if row[2] is None else row[2] for row in rows], dtype=np.float64),
    )
    by_name = {rule.name: rule for rule in rules}
    result = backtest_replay(by_name, arrays, start_ms=rows[0][0]) if rows else None
    return sorted((a.t_ms, a.rule_id, a.direction.value) for a in (result.alerts if result else ()))


def fmt_interval(ms: float) -> str:
    seconds = ms / 1000
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} m"


def describe(rule: Rule) -> str:
    if rule.kind is RuleKind.MEDIAN_BASELINE:
        what = (
            f"median of samples aged {rule.baseline_from_sec // 60}..{rule.window_sec // 60} min,"
            f" min_samples {rule.min_samples}"
        )
    elif rule.kind is RuleKind.RELATIVE:
        return (
            f"relative: the change over {rule.window_sec // 60} min (latest vs the window's "
            f"oldest) as a robust z against the symbol's own (median, 1.4826 x MAD of the last "
            f"{STATS_DAYS} days, refreshed hourly); up z {rule.up_threshold:g} / down z "
            f"{rule.down_threshold:g}; cooldown {rule.cooldown_sec} s; step z {rule.step_pct:g}"
        )
    else:
        what = f"latest vs window low/high over {rule.window_sec // 60} min"
    minimums = []
    if rule.min_delta_contracts is not None:
        minimums.append(f"min_delta {rule.min_delta_contracts:.0f} CONTRACTS")
    if rule.min_delta_usd is not None:
        minimums.append(f"min_delta_usd {rule.min_delta_usd:.0f}")
    step = f"{rule.step_pct:.0%}" if rule.step_pct is not None else "none"
    return (
        f"{rule.kind.value}: {what}; up {rule.up_threshold:.0%} / down {rule.down_threshold:.0%}; "
        f"cooldown {rule.cooldown_sec} s; rearm at {rule.rearm_ratio}x threshold; "
        f"step {step}; {', '.join(minimums) or 'no minimum delta'}"
    )


def utc(t_ms: int) -> str:
    return datetime.fromtimestamp(t_ms / 1000, UTC).strftime("%Y-%m-%d %H:%M")


def rule_label(rule: Rule) -> str:
    return f"R{rule.rule_id} {rule.name}"


def report(
    say, title: str, all_series: list[Series], rules: list[Rule], unit: str, list_fires: bool
) -> None:
    """Replay every series with `unit` rows ("contracts" or "notional") and print the tables."""
    chosen = [s for s in all_series if (s.rows if unit == "contracts" else s.notional)]
    results = []
    for series in chosen:
        rows = series.rows if unit == "contracts" else series.notional
        active = [rule for rule in rules if applies(rule, series)]
        results.append(replay(series.symbol, rows, active, series.interval_ms))

    say(f"== {title} ==")
    rule_w = 16
    header = (
        f"{'series [symbol]':<66} {'step':>6} {'span d':>6} {'obs d':>5} {'samples':>7} "
        f"{'skip':>4} {'dup':>3} " + " ".join(f"{rule_label(r)[:rule_w]:>{rule_w}}" for r in rules)
    )
    say("Alerts raised (FIRE), alerts per symbol-day in parentheses:")
    say(header)
    say("-" * len(header))
    for series, result in zip(chosen, results, strict=True):
        cells = []
        for rule in rules:
            if rule.rule_id not in result:
                cells.append(f"{'n/a':>{rule_w}}")
                continue
            fired = result[rule.rule_id].actions[GateAction.FIRE]
            cells.append(f"{f'{fired} ({fired / series.observed_days:.2f}/d)':>{rule_w}}")
        name = f"{series.label} [{series.symbol}]"
        say(
            f"{name[:66]:<66} {fmt_interval(series.interval_ms):>6} {series.span_days:>6.2f} "
            f"{series.observed_days:>5.2f} {len(series.rows):>7} {series.skipped_missing_oi:>4} "
            f"{series.duplicates:>3} " + " ".join(cells)
        )
    say("  n/a = window shorter than 2x the sampling interval (rule not applied to that series)")
    say("")

    say("Per rule, over the series where it applies:")
    head2 = (
        f"{'rule':<30} {'series':>6} {'sym-days':>8} {'alerts':>6} {'/sym-day':>8} "
        f"{'verdicts':>8} {'crossings':>9} {'REARM':>5} {'HOLD_NOT_REARMED':>16} "
        f"{'HOLD_COOLDOWN':>13} {'BLOCKED contr/usd/noprice':>25} {'partial-window':>14}"
    )
    say(head2)
    say("-" * len(head2))
    for rule in rules:
        total = RuleResult()
        n_series, days = 0, 0.0
        for series, result in zip(chosen, results, strict=True):
            if rule.rule_id in result:
                n_series += 1
                days += series.observed_days
                total.merge(result[rule.rule_id])
        blocked = "/".join(
            str(total.blocked[reason])
            for reason in (
                VerdictReason.BLOCKED_MIN_DELTA_CONTRACTS,
                VerdictReason.BLOCKED_MIN_DELTA_USD,
                VerdictReason.MISSING_MARK_PRICE,
            )
        )
        fired = total.actions[GateAction.FIRE]
        rate = f"{fired / days:.3f}" if days else "-"
        say(
            f"{rule_label(rule):<30} {n_series:>6} {days:>8.2f} {fired:>6} {rate:>8} "
            f"{total.verdict_samples:>8} {total.crossings:>9} {total.actions[GateAction.REARM]:>5} "
            f"{total.actions[GateAction.HOLD_NOT_REARMED]:>16} "
            f"{total.actions[GateAction.HOLD_COOLDOWN]:>13} {blocked:>25} "
            f"{total.partial_window:>14}"
        )
    fixed = [r for r in rules if r.kind is not RuleKind.RELATIVE]
    same = all(
        backtest_alerts(series, rows_of(series, unit), [r for r in fixed if applies(r, series)])
        == sorted(
            (t_ms, rule.rule_id, direction)
            for rule in fixed
            if rule.rule_id in result
            for t_ms, direction, *_ in result[rule.rule_id].fires
        )
        for series, result in zip(chosen, results, strict=True)
    )
    say(
        "The backtest's vectorised replay (alerts.backtest.replay) gives the same alerts (rules "
        f"with fixed thresholds; the relative rule's statistics walk forward here): {same}"
    )
    if not same:
        raise SystemExit("the backtest's replay differs from the per-sample loop")
    say("Regime mix of each rule's alerts (alerts per symbol-day; count per regime):")
    for rule in rules:
        total = RuleResult()
        days = 0.0
        for series, result in zip(chosen, results, strict=True):
            if rule.rule_id in result:
                days += series.observed_days
                total.merge(result[rule.rule_id])
        fired = total.actions[GateAction.FIRE]
        mix = ", ".join(f"{regime} {count}" for regime, count in total.regimes.most_common())
        rate = f"{fired / days:.3f}/sym-day" if days else "n/a"
        say(f"  {rule_label(rule):<30} {fired:>4} alerts, {rate:>14}; {mix or 'no alert'}")
    say(
        "  verdicts = samples at which the rule gave observations (window covered); crossings = "
        "observations past the threshold and the minimums (ALERT before the gate); REARM, HOLD_* "
        "and BLOCKED count observations (one per direction)."
    )
    say(
        "  partial-window = window_change verdicts given while the window's oldest sample was "
        "younger than W - 2 steps (the engine accepts a hole of up to max(W/4, 5.5 min) "
        "between neighbouring samples, so 5-minute backfilled history covers a window)."
    )
    say("")

    say("Largest move seen per rule and series (UP / DOWN, % against the rule's reference):")
    for series, result in zip(chosen, results, strict=True):
        cells = []
        for rule in rules:
            one = result.get(rule.rule_id)
            if one is None:
                cells.append(f"R{rule.rule_id} n/a")
            elif not one.verdict_samples:
                cells.append(f"R{rule.rule_id} no verdict")
            elif rule.kind is RuleKind.RELATIVE:
                cells.append(f"R{rule.rule_id} z +{one.peak_up:.2f}/-{one.peak_down:.2f}")
            else:
                cells.append(f"R{rule.rule_id} +{one.peak_up:.2%}/-{one.peak_down:.2%}")
        say(f"  {series.label[:40]} [{series.symbol}]: " + "; ".join(cells))
    if list_fires:
        say("Alerts (FIRE), times in UTC as read from the file:")
        lines = []
        for series, result in zip(chosen, results, strict=True):
            for rule in rules:
                one = result.get(rule.rule_id)
                for t_ms, direction, move, abs_change in one.fires if one else ():
                    shown = f"z {move:+.2f}" if rule.kind is RuleKind.RELATIVE else f"{move:+.2%}"
                    lines.append(
                        f"  {series.symbol:<12} R{rule.rule_id} {rule.name:<26} {utc(t_ms)} "
                        f"{direction:<4} {shown} ({abs_change:+,.0f} {unit})"
                    )
        for line in lines or ["  none"]:
            say(line)
    say("")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    args = parser.parse_args()

    rules = [rule_from_fields(i, spec) for i, spec in enumerate(default_rule_specs())]
    all_series = load_all(args.data_dir)

    out: list[str] = []
    say = out.append
    say(f"Replay of the real series in {args.data_dir} through the default rule set")
    say("")
    say("Rules (rule_from_fields(i, spec) for i, spec in enumerate(default_rule_specs())):")
    for rule in rules:
        say(f"  {rule_label(rule)}: {describe(rule)}")
    say(
        "  R0's min_delta is in CONTRACTS (5000, as-is for every symbol): it blocks 5% moves of "
        "symbols with fewer than 100,000 contracts open (BTCUSDT ~71k, so BTC can never alert on "
        "R0) and lets through low-price symbols (PEPE, REZ: 5% of 1e8..1e10 contracts)."
    )
    say(
        "Applicability: a rule is n/a on a series when window_sec < 2 x the sampling interval "
        "(the median step between consecutive samples)."
    )
    say(
        f"Rates: alerts per symbol-day divide by the observed days (the span minus the steps "
        f"longer than {GAP_FACTOR}x the sampling interval); 'span d' is first to last sample."
    )
    say("")
    say("Series:")
    for series in all_series:
        notes = [
            f"price for min_delta_usd: {series.price_source}",
            f"gaps (> {GAP_FACTOR} steps): {series.gaps}",
        ]
        if series.out_of_order:
            notes.append(f"{series.out_of_order} rows out of order in the file (sorted)")
        if series.note:
            notes.append(series.note)
        say(f"  {series.label} [{series.symbol}]: {'; '.join(notes)}")
    skipped = sum(s.skipped_missing_oi for s in all_series)
    dups = sum(s.duplicates for s in all_series)
    say(
        f"  rows skipped for missing OI: {skipped} (REZUSDT row 287; ETHUSDT first row of each "
        f"segment); duplicate timestamps dropped: {dups} (the two alts snapshots overlap)"
    )
    say("")

    report(say, "MAIN: default rules on contracts", all_series, rules, "contracts", True)

    say(
        "Supplementary runs (not the engine's unit; they exercise the gate on the only real "
        "crossings in these files, which SOURCES.md reports on notional):"
    )
    say("")
    report(
        say,
        "SUPPLEMENTARY A: default rules on notional USD fed as the OI value "
        "(R0's 5000 minimum then means $5000; no price passed)",
        all_series,
        rules,
        "USD",
        True,
    )
    sources_rule = rule_from_fields(
        0,
        {**default_rule_specs()[0], "min_samples": 1, "min_delta_contracts": None}
        | {"name": "design@min_samples=1,no-min"},
    )
    for unit in ("contracts", "notional"):
        report(
            say,
            f"SUPPLEMENTARY B: design rule with SOURCES.md's check settings (min_samples 1, no "
            f"minimum delta), on {unit}; 'crossings' is SOURCES.md's alert count",
            all_series,
            [sources_rule],
            "USD" if unit == "notional" else unit,
            False,
        )
    rerun = " ".join(["python", "bench/replay_rules.py", *sys.argv[1:]])
    say(f"rerun: cd {PROJECT_ROOT} && .venv/bin/{rerun}")

    text = "\n".join(out) + "\n"
    print(text, end="")
    ARTIFACT.parent.mkdir(parents=True, exist_ok=True)
    ARTIFACT.write_text(text)
    print(f"written: {ARTIFACT}")


if __name__ == "__main__":
    main()
