"""Cost per sample of the rules engine: all default rules versus the design rule alone.

650 symbols, each pre-filled with 3 h of 10-second samples (1,080; a seeded random walk with rare
+-7% jumps, plus a mark price walk), then 20,000 new samples
round-robin. Per new sample the timed work is: SymbolTracker.add, then observe() for every rule,
then RuleBook.apply for every observation. Both rule sets see the same stream in the same run.
Memory is tracemalloc's count for the trackers only (allocated while building and pre-filling
them; tracemalloc is off while timing). A correctness check replays 20 symbols with fresh
trackers and compares every window_change observation with a brute-force min/max over the raw
samples of the window, at every step (pre-fill and stream).

    python bench/rules_cost.py
    python bench/rules_cost.py --symbols 650 --samples 20000 --seed 1
"""

import argparse
import bisect
import random
import sys
import time
import tracemalloc
from collections import Counter
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT_ROOT))

from alerts.enums import Direction, VerdictReason  # noqa: E402
from alerts.rules import (  # noqa: E402
    GateAction,
    Reference,
    Rule,
    RuleBook,
    RuleKind,
    SymbolTracker,
    default_rule_specs,
    rule_from_fields,
)

CHECKED_SYMBOLS = 20
STEP_MS = 10_000
HISTORY_MS = 3 * 3600 * 1000
START_MS = 1_764_590_400_000

Sample = tuple[int, float, float]


def random_walk(rng: random.Random, oi: float) -> float:
    jump = rng.choice((0.07, -0.07)) if rng.random() < 1 / 3000 else 0.0
    return max(1.0, oi * (1 + rng.gauss(0, 0.0005) + jump))


def build_stream(
    symbols: int, samples: int, rng: random.Random
) -> tuple[list[list[Sample]], list[tuple[int, int, float, float]]]:
    """Pre-filled history per symbol, then (symbol index, t_ms, oi, price) round-robin."""
    history_len = HISTORY_MS // STEP_MS
    histories, last = [], []
    for _ in range(symbols):
        oi = rng.uniform(1e4, 1e9)
        price = 10 ** rng.uniform(-4, 5)
        offset = rng.randrange(STEP_MS)
        rows = []
        for i in range(history_len):
            oi = random_walk(rng, oi)
            price *= 1 + rng.gauss(0, 0.0003)
            rows.append((START_MS + offset + i * STEP_MS, oi, price))
        histories.append(rows)
        last.append(rows[-1])
    stream = []
    for n in range(samples):
        index = n % symbols
        t_ms, oi, price = last[index]
        last[index] = (t_ms + STEP_MS, random_walk(rng, oi), price * (1 + rng.gauss(0, 0.0003)))
        stream.append((index, *last[index]))
    return histories, stream


def build_trackers(
    histories: list[list[Sample]], rules: list[Rule]
) -> tuple[list[SymbolTracker], int, int, float]:
    """Trackers pre-filled with the history; returns tracemalloc's current and peak bytes."""
    tracemalloc.start()
    started = time.perf_counter()
    trackers = []
    for rows in histories:
        tracker = SymbolTracker(rules)
        for t_ms, oi, price in rows:
            tracker.add(t_ms, oi, price)
        trackers.append(tracker)
    elapsed = time.perf_counter() - started
    current, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return trackers, current, peak, elapsed


def run(
    trackers: list[SymbolTracker],
    stream: list[tuple[int, int, float, float]],
    rules: list[Rule],
    names: list[str],
) -> tuple[float, Counter, Counter]:
    book = RuleBook()
    actions: Counter = Counter()
    fired: Counter = Counter()
    started = time.perf_counter()
    for index, t_ms, oi, price in stream:
        tracker = trackers[index]
        tracker.add(t_ms, oi, price)
        symbol = names[index]
        for rule in rules:
            for obs in tracker.observe(rule):
                action = book.apply(symbol, obs)
                if action is not GateAction.NONE:
                    actions[action] += 1
                    if action is GateAction.FIRE:
                        fired[rule.name] += 1
    return time.perf_counter() - started, actions, fired


def check_window_change(
    histories: list[list[Sample]],
    stream: list[tuple[int, int, float, float]],
    rules: list[Rule],
    picked: list[int],
) -> tuple[int, int]:
    """Every window_change observation of the picked symbols against a brute-force min/max over
    the raw samples aged 0..W (both ends inclusive); returns (steps, observations) checked."""
    window_rules = [rule for rule in rules if rule.kind is RuleKind.WINDOW_CHANGE]
    feeds: dict[int, list[Sample]] = {index: list(histories[index]) for index in picked}
    for index, t_ms, oi, price in stream:
        if index in feeds:
            feeds[index].append((t_ms, oi, price))
    steps = checked = 0
    for index, rows in feeds.items():
        tracker = SymbolTracker(rules)
        times: list[int] = []
        values: list[float] = []
        for t_ms, oi, price in rows:
            tracker.add(t_ms, oi, price)
            times.append(t_ms)
            values.append(oi)
            steps += 1
            for rule in window_rules:
                observations = tracker.observe(rule)
                cutoff = t_ms - rule.window_sec * 1000
                if times[0] > cutoff:  # no sample W old yet: no verdict expected
                    if observations:
                        raise SystemExit(f"{rule.name}: verdict before the window is covered")
                    continue
                in_window = values[bisect.bisect_left(times, cutoff) :]
                low, high = min(in_window), max(in_window)
                expected = {
                    Direction.UP: (low, Reference.WINDOW_LOW, (oi - low) / low),
                    Direction.DOWN: (high, Reference.WINDOW_HIGH, -(oi - high) / high),
                }
                if [obs.direction for obs in observations] != list(rule.directions):
                    raise SystemExit(f"{rule.name}: directions {observations!r}")
                for obs in observations:
                    reference, kind, move = expected[obs.direction]
                    reason = (
                        VerdictReason.ALERT
                        if move >= rule.threshold(obs.direction)
                        else VerdictReason.BELOW_THRESHOLD
                    )
                    got = (obs.reference, obs.reference_kind, obs.move, obs.reason, obs.current)
                    want = (reference, kind, move, reason, oi)
                    if got != want:
                        raise SystemExit(
                            f"mismatch symbol {index} {rule.name} t={t_ms}: got {got}, want {want}"
                        )
                    checked += 1
    return steps, checked


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--symbols", type=int, default=650)
    parser.add_argument("--samples", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    # the rules a fresh install runs: the presets shipped disabled are not among them
    all_rules = [
        rule_from_fields(i, spec)
        for i, spec in enumerate(default_rule_specs())
        if spec.get("enabled", True)
    ]
    design = [rule for rule in all_rules if rule.kind is RuleKind.MEDIAN_BASELINE]
    rng = random.Random(args.seed)
    histories, stream = build_stream(args.symbols, args.samples, rng)
    names = [f"SYM{i:04d}USDT" for i in range(args.symbols)]
    print(
        f"{args.symbols} symbols x {len(histories[0])} pre-filled samples (3 h @ 10 s), "
        f"{len(stream)} new samples round-robin, seed {args.seed}, python {sys.version.split()[0]}"
    )
    for rule in all_rules:
        print(f"  R{rule.rule_id} {rule.name} ({rule.kind.value}, {rule.window_sec} s)")

    results = {}
    for label, rules in (("all 4 default rules", all_rules), ("design rule alone", design)):
        trackers, current, peak, prefill_s = build_trackers(histories, rules)
        elapsed, actions, fired = run(trackers, stream, rules, names)
        results[label] = (elapsed, actions, fired, current, peak, prefill_s)

    print()
    print(
        f"{'rule set':<22} {'us/sample':>10} {'total s':>8} {'alerts':>7} "
        f"{'tracker MB':>10} {'peak MB':>8} {'KB/symbol':>9} {'prefill s':>9}"
    )
    for label, (elapsed, actions, _, current, peak, prefill_s) in results.items():
        print(
            f"{label:<22} {elapsed / len(stream) * 1e6:>10.2f} {elapsed:>8.3f} "
            f"{actions[GateAction.FIRE]:>7} {current / 2**20:>10.1f} {peak / 2**20:>8.1f} "
            f"{current / args.symbols / 1024:>9.1f} {prefill_s:>9.2f}"
        )
    all_s, all_actions, all_fired, all_mem = (
        results["all 4 default rules"][i] for i in (0, 1, 2, 3)
    )
    one_s, one_actions, one_fired, one_mem = (results["design rule alone"][i] for i in (0, 1, 2, 3))
    print(f"ratio all/design: time {all_s / one_s:.2f}x, tracker memory {all_mem / one_mem:.2f}x")
    print(
        "memory: tracemalloc current/peak of the allocations made while building and "
        "pre-filling the trackers only (stream data excluded; prefill s measured under tracemalloc)"
    )
    print(f"alerts per rule (all 4): {dict(sorted(all_fired.items()))}")
    print(f"gate actions (all 4): { {k.value: v for k, v in sorted(all_actions.items())} }")
    print(f"gate actions (design alone): { {k.value: v for k, v in sorted(one_actions.items())} }")
    same = all_fired[design[0].name] == one_fired[design[0].name]
    print(
        f"design-rule alerts identical in both sets: {same} "
        f"({all_fired[design[0].name]} vs {one_fired[design[0].name]})"
    )
    if not same:
        raise SystemExit("design rule alerts differ between the two rule sets")
    per_core = 35 * all_s / len(stream) * 100
    print(f"at 35 samples/s, all 4 rules use {per_core:.3f}% of one core")

    picked = sorted(random.Random(args.seed + 1).sample(range(args.symbols), CHECKED_SYMBOLS))
    started = time.perf_counter()
    steps, checked = check_window_change(histories, stream, all_rules, picked)
    print(
        f"correctness: {CHECKED_SYMBOLS} symbols, {steps} steps, {checked} window_change "
        f"observations equal the brute-force min/max recomputation "
        f"({time.perf_counter() - started:.1f} s)"
    )
    rerun = " ".join(["python", "bench/rules_cost.py", *sys.argv[1:]])
    print(f"rerun: cd {PROJECT_ROOT} && .venv/bin/{rerun}")


if __name__ == "__main__":
    main()
