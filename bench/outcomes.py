"""The outcomes job and the outcome statistics on a loaded database.

The bench database gets N symbols sampled every 10 s for the last H hours (one INSERT ... SELECT
over generate_series), A alerts spread over those hours on those symbols (three rules, four
regimes), and OLD alerts older than the samples (their horizons are "no data"). Then, in one
process against that database:
- the job (alerts.outcome_services.alert_outcomes_fill) run after run until nothing is due: the
  seconds and (alert, horizon) pairs per second of each run of at most 5,000 pairs;
- a run with nothing due left (the steady state every minute: the due query's anti-join over
  every alert);
- the statistics (alerts.outcome_selectors.alert_outcome_report): every rule, then one rule and
  one regime, over the period; best of 3.

Rerun (uses Postgres database volspike_bench_outcomes and Redis database 12 unless told otherwise):

    python bench/outcomes.py
    python bench/outcomes.py --symbols 20 --hours 3 --alerts 2000 --old-alerts 5000   # quick
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import _system

DATABASE_NAME = "volspike_bench_outcomes"
REDIS_URL = "redis://127.0.0.1:6379/12"

SNAPSHOTS_SQL = """
INSERT INTO open_interest_snapshots (symbol, ts, open_interest, mark_price, source)
SELECT 'B' || lpad(s::text, 3, '0') || 'USDT', %(end)s - %(hours)s * interval '1 hour'
       + t * interval '10 seconds', 1000000 + s * 1000 + (t %% 97) * 3, 1 + s * 0.25 + (t %% 89) * 0.001,
       'realtime'
FROM generate_series(0, %(times)s - 1) AS t CROSS JOIN generate_series(0, %(symbols)s - 1) AS s
ORDER BY t, s
"""
ALERTS_SQL = """
INSERT INTO open_interest_alerts (symbol, direction, baseline, current, pct_change, abs_change,
    source, ts, created_at, rule_name, window_sec, regime, mark_price)
SELECT 'B' || lpad((i %% %(symbols)s)::text, 3, '0') || 'USDT', 'UP', 900000, 1000000, 0.11,
       100000, 'oi_realtime_poller', %(end)s - (i * %(spacing)s) * interval '1 second', now(),
       (ARRAY['oi-5m-3pct', 'oi-15m-7pct', 'oi-1h-12pct'])[1 + i %% 3], 300,
       (ARRAY['long_build', 'short_build', 'short_cover', 'long_flush'])[1 + i %% 4], 1.5
FROM generate_series(1, %(count)s) AS i
"""


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--symbols", type=int, default=100, help="symbols (default 100)")
    parser.add_argument("--hours", type=float, default=25, help="hours of samples (default 25)")
    parser.add_argument("--alerts", type=int, default=20_000, help="alerts in those hours")
    parser.add_argument("--old-alerts", type=int, default=100_000, help="alerts before them")
    _system.isolation_args_add(parser, database_name=DATABASE_NAME, redis_url=REDIS_URL)
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    database_url, env = _system.web_only_env(args.database_name, args.redis_url)
    _system.django_setup(env, migrate=True, flush=True)
    from alerts.outcome_selectors import alert_outcome_report
    from alerts.outcome_services import alert_outcomes_fill

    times = int(args.hours * 360)
    started = time.perf_counter()
    end = datetime.now(UTC)
    with psycopg.connect(database_url, autocommit=True) as connection:
        connection.execute(
            SNAPSHOTS_SQL,
            {"hours": args.hours, "times": times, "symbols": args.symbols, "end": end},
        )
        window_sec = args.hours * 3600 - 3700  # every alert's 1 h horizon has its samples
        connection.execute(
            ALERTS_SQL,
            {"symbols": args.symbols, "count": args.alerts, "end": end,
             "spacing": window_sec / args.alerts},
        )  # fmt: skip
        connection.execute(
            ALERTS_SQL,
            {"symbols": args.symbols, "count": args.old_alerts, "spacing": 60,
             "end": end - timedelta(hours=args.hours + 1)},
        )  # fmt: skip
        connection.execute("ANALYZE")
    print(
        f"data: {args.symbols * times:,} samples ({args.symbols} symbols x {args.hours} h, 10 s), "
        f"{args.alerts:,} alerts on them, {args.old_alerts:,} older alerts "
        f"({time.perf_counter() - started:.1f} s to make)"
    )

    total_pairs, total_seconds, runs = 0, 0.0, 0
    while True:
        result = alert_outcomes_fill()
        runs += 1
        total_pairs += result.measured
        total_seconds += result.seconds
        print(
            f"  run {runs}: {result.measured:,} pairs ({result.no_data:,} no data) in "
            f"{result.seconds:.2f} s = {result.measured / result.seconds:,.0f} pairs/s"
        )
        if not result.more_due:
            break
    print(
        f"job: {total_pairs:,} (alert, horizon) pairs in {runs} runs, {total_seconds:.1f} s, "
        f"{total_pairs / total_seconds:,.0f} pairs/s"
    )
    steady = min(alert_outcomes_fill().seconds for _ in range(3))
    print(
        f"steady run with nothing due ({args.alerts + args.old_alerts:,} alerts measured): "
        f"{steady * 1000:.0f} ms"
    )

    def best_of_3(**filters) -> float:
        best = float("inf")
        for _ in range(3):
            started = time.perf_counter()
            alert_outcome_report(**filters)
            best = min(best, time.perf_counter() - started)
        return best

    print(f"stats, every rule and regime, 30 days: {best_of_3() * 1000:.0f} ms")
    print(
        "stats, one rule and one regime, 30 days: "
        f"{best_of_3(rule_names=['oi-5m-3pct'], regime='short_build') * 1000:.0f} ms"
    )
    print("rerun: python bench/outcomes.py " + " ".join(sys.argv[1:]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
