"""Backtest throughput: the replay engine (alerts.backtest) on realtime-like samples, the wall time
to replay 7 days x 400 symbols of 10-second samples (~24 M), the read of stored samples from
Postgres (binary COPY into numpy, alerts.backtest_selectors), and the live engine's per-sample
cost (bench/rules_cost.py's loop) in the same run.

Series: per symbol a 10-second random walk of open interest (sigma 0.03% a step) with about one
jump a day (+-3..15%, ramped over 0..60 s), and a mark price walk that moves with a jump half the
time; the enabled default rules (4). A "stress" series (bench/rules_cost.py's walk: a +-7% jump
every ~8 h, 13% of the samples past some rule's threshold) is also timed.

Engine figures are CPU seconds of this process (one thread), as samples per second per core:
- vectorised, exact counts: every crossing evaluated by the live engine's tracker and gate;
- vectorised, fast: the crossings the gate cannot act on are only counted ("held_not_evaluated");
- per-sample: every sample through SymbolTracker + gate (alerts.backtest.replay_per_sample), on
  a subset, and its alerts checked equal to the vectorised ones.

Postgres: --read-symbols x --read-days of 10-second rows in a bench database (made by one
INSERT ... SELECT, kept between runs), read back in batches of symbols as the backtest does;
rows/s, and the 7-day x 400-symbol read extrapolated from it.

    python bench/backtest_throughput.py
    python bench/backtest_throughput.py --symbols 40 --days 1 --read-days 0.25   # quick
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import psycopg

PROJECT_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT_ROOT))
sys.path.insert(0, str(PROJECT_ROOT / "bench"))

from alerts.backtest import BacktestResult, Series, replay, replay_per_sample  # noqa: E402
from alerts.rules import default_rule_specs, rule_from_fields  # noqa: E402
from bench import _system  # noqa: E402

STEP_MS = 10_000
DAY_MS = 86_400_000
START_MS = 1_764_547_200_000  # 2025-12-01T00:00Z
DATABASE_NAME = "volspike_bench_backtest"
REDIS_URL = "redis://127.0.0.1:6379/12"
READ_START = datetime(2025, 12, 1, tzinfo=UTC)


def realtime_like(rng: np.random.Generator, symbol: str, samples: int) -> Series:
    steps = rng.normal(0, 0.0003, samples)
    price_steps = rng.normal(0, 0.0004, samples)
    for _ in range(rng.poisson(samples * STEP_MS / DAY_MS)):
        at = int(rng.integers(0, samples))
        size = rng.uniform(0.03, 0.15) * rng.choice((-1, 1))
        ramp = int(rng.integers(1, 7))
        steps[at : at + ramp] += np.log1p(size) / ramp
        if rng.random() < 0.5:
            price_steps[at : at + ramp] += rng.uniform(-0.03, 0.03) / ramp
    oi = rng.uniform(1e4, 1e9) * np.exp(np.cumsum(steps))
    price = 10 ** rng.uniform(-4, 5) * np.exp(np.cumsum(price_steps))
    times = START_MS + int(rng.integers(0, STEP_MS)) + STEP_MS * np.arange(samples, dtype=np.int64)
    return Series(symbol, times, oi, price)


def stress(rng: random.Random, symbol: str, samples: int) -> Series:
    from rules_cost import random_walk

    oi, values = rng.uniform(1e4, 1e9), []
    for _ in range(samples):
        oi = random_walk(rng, oi)
        values.append(oi)
    price = 10 * np.exp(
        np.cumsum(np.random.default_rng(rng.randrange(2**32)).normal(0, 3e-4, samples))
    )
    return Series(
        symbol, START_MS + STEP_MS * np.arange(samples, dtype=np.int64), np.array(values), price
    )


def timed(function, *args, **kwargs):
    cpu, wall = time.process_time(), time.perf_counter()
    result = function(*args, **kwargs)
    return result, time.process_time() - cpu, time.perf_counter() - wall


def engine_run(
    series_of, count: int, rules: dict, *, exact: bool
) -> tuple[BacktestResult, float, float, int]:
    """Replay `count` symbols (each made by series_of(index), not timed); totals."""
    total, cpu, wall, samples = BacktestResult(), 0.0, 0.0, 0
    for index in range(count):
        series = series_of(index)
        start_ms = int(series.t_ms[0])
        result, c, w = timed(replay, rules, series, start_ms=start_ms, exact_counts=exact)
        total.merge(result)
        cpu, wall, samples = cpu + c, wall + w, samples + len(series)
    return total, cpu, wall, samples


def live_cost_us() -> float:
    """bench/rules_cost.py's timed loop (add + observe + gate per new sample, all 4 rules)."""
    import rules_cost

    rules = [
        rule_from_fields(i, s) for i, s in enumerate(default_rule_specs()) if s.get("enabled", True)
    ]
    rng = random.Random(1)
    histories, stream = rules_cost.build_stream(100, 20_000, rng)
    trackers, *_ = rules_cost.build_trackers(histories, rules)
    elapsed, *_ = rules_cost.run(trackers, stream, rules, [f"S{i}" for i in range(100)])
    return elapsed / len(stream) * 1e6


def postgres_read(args) -> tuple[int, float, int] | None:
    if args.read_days <= 0:
        return None
    database_url, env = _system.web_only_env(args.database_name, args.redis_url)
    _system.django_setup(env)
    from alerts.backtest_selectors import snapshot_batches
    from alerts.backtest_services import SYMBOLS_PER_READ

    times = int(args.read_days * DAY_MS // STEP_MS)
    expected = args.read_symbols * times
    with psycopg.connect(database_url, autocommit=True) as connection:
        count = connection.execute("SELECT count(*) FROM open_interest_snapshots").fetchone()[0]
        if count != expected:
            began = time.monotonic()
            connection.execute("TRUNCATE open_interest_snapshots")
            connection.execute(
                _system.SNAPSHOTS_GENERATE_SQL,
                {"start": READ_START, "step": "10 seconds", "times": times,
                 "symbols": args.read_symbols},
            )  # fmt: skip
            connection.execute("VACUUM ANALYZE open_interest_snapshots")
            print(f"postgres: {expected:,} rows generated in {time.monotonic() - began:.1f} s")
        connection.execute("SELECT count(*) FROM open_interest_snapshots")  # warm the cache
    symbols = [f"B{s:03d}USDT" for s in range(args.read_symbols)]
    until = READ_START + timedelta(milliseconds=times * STEP_MS)
    began = time.perf_counter()
    rows = 0
    for _, batch in snapshot_batches(
        symbols, since=READ_START, until=until, batch=SYMBOLS_PER_READ
    ):
        rows += sum(len(series) for series in batch.values())
    return rows, time.perf_counter() - began, SYMBOLS_PER_READ


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--symbols", type=int, default=400)
    parser.add_argument("--days", type=float, default=7)
    parser.add_argument("--per-sample-symbols", type=int, default=4)
    parser.add_argument("--read-symbols", type=int, default=400)
    parser.add_argument("--read-days", type=float, default=1, help="0: skip the Postgres read")
    parser.add_argument("--seed", type=int, default=1)
    _system.isolation_args_add(parser, database_name=DATABASE_NAME, redis_url=REDIS_URL)
    args = parser.parse_args()

    rules = {s["name"]: rule_from_fields(i, s) for i, s in enumerate(default_rule_specs())
             if s.get("enabled", True)}  # fmt: skip
    samples = int(args.days * DAY_MS // STEP_MS)
    print(f"{args.symbols} symbols x {samples:,} samples ({args.days} days @ 10 s) = "
          f"{args.symbols * samples:,}; rules: {', '.join(rules)}; numpy {np.__version__}")  # fmt: skip

    def realtime_series(index: int) -> Series:
        return realtime_like(
            np.random.default_rng([args.seed, index]), f"S{index:03d}USDT", samples
        )

    rows = []
    exact, cpu_exact, wall_exact, n = engine_run(realtime_series, args.symbols, rules, exact=True)
    rows.append(("vectorised, exact counts", n, cpu_exact, wall_exact, exact))
    fast, cpu_fast, wall_fast, _ = engine_run(realtime_series, args.symbols, rules, exact=False)
    rows.append(("vectorised, fast", n, cpu_fast, wall_fast, fast))
    if fast.alerts != exact.alerts:
        raise SystemExit("fast and exact alerts differ")

    # per-sample on a subset, checked equal to the vectorised replay of the same symbols
    subset = BacktestResult()
    cpu_ps = wall_ps = 0.0
    n_ps = 0
    for index in range(args.per_sample_symbols):
        series = realtime_series(index)
        result, c, w = timed(replay_per_sample, rules, series, start_ms=int(series.t_ms[0]))
        vector = replay(rules, series, start_ms=int(series.t_ms[0]))
        if (result.alerts, result.actions) != (vector.alerts, vector.actions):
            raise SystemExit(f"per-sample and vectorised differ on {series.symbol}")
        subset.merge(result)
        cpu_ps, wall_ps, n_ps = cpu_ps + c, wall_ps + w, n_ps + len(series)
    rows.append((f"per-sample ({args.per_sample_symbols} symbols)", n_ps, cpu_ps, wall_ps, subset))

    stress_count = max(1, args.symbols // 20)

    def stress_series(index: int) -> Series:
        return stress(random.Random(args.seed * 1000 + index), f"X{index:03d}USDT", samples)

    s_exact, c1, w1, n_s = engine_run(stress_series, stress_count, rules, exact=True)
    rows.append((f"stress ({stress_count} symbols), exact", n_s, c1, w1, s_exact))
    s_fast, c2, w2, _ = engine_run(stress_series, stress_count, rules, exact=False)
    rows.append((f"stress ({stress_count} symbols), fast", n_s, c2, w2, s_fast))

    print(f"\n{'engine':<32}{'samples':>12}{'cpu s':>9}{'wall s':>9}{'samples/s/core':>16}"
          f"{'alerts':>8}{'crossings %':>12}")  # fmt: skip
    for label, count, cpu, wall, result in rows:
        crossings = sum(v for k, v in result.actions.items() if k != "rearm")
        print(f"{label:<32}{count:>12,}{cpu:>9.2f}{wall:>9.2f}{count / cpu:>16,.0f}"
              f"{len(result.alerts):>8}{100 * crossings / count:>11.3f}%")  # fmt: skip
    symbol_days = args.symbols * args.days
    print(f"alerts per symbol-day (realtime-like): {len(exact.alerts) / symbol_days:.2f}; "
          f"gate actions: {dict(exact.actions)}")  # fmt: skip
    print(f"wall time to replay {args.symbols} symbols x {args.days} days "
          f"({n:,} samples), engine only: exact counts {wall_exact:.1f} s, fast {wall_fast:.1f} s")  # fmt: skip

    live_us = live_cost_us()
    print(f"live engine (bench/rules_cost.py loop, same 4 rules): {live_us:.2f} us/sample = "
          f"{1e6 / live_us:,.0f} samples/s; at that rate the same replay would take "
          f"{n * live_us / 1e6:,.0f} s")  # fmt: skip

    read = postgres_read(args)
    if read is not None:
        rows_read, read_s, per_read = read
        rate = rows_read / read_s
        full = 400 * 7 * DAY_MS // STEP_MS
        print(f"postgres read (binary COPY -> numpy, {per_read} symbols a query): {rows_read:,} rows in "
              f"{read_s:.1f} s = {rate:,.0f} rows/s; 7 days x 400 symbols ({full:,} rows) "
              f"extrapolated: {full / rate:.0f} s")  # fmt: skip
        print(f"end to end, 7 days x 400 symbols (read + exact engine), extrapolated: "
              f"{full / rate + full * cpu_exact / n:.0f} s")  # fmt: skip
    rerun = " ".join(["python", "bench/backtest_throughput.py", *sys.argv[1:]])
    print(f"rerun: cd {PROJECT_ROOT} && .venv/bin/{rerun}")


if __name__ == "__main__":
    main()
