"""How long the liquidation sums take in Postgres: the screener's (every symbol, five lookbacks up
to 24 h, one query) and an alert batch's (one window per fired alert, one query), over a day of
stored liquidations at a given rate (default: 400 symbols, each liquidated in 20% of its
seconds, i.e. ~6.9 M rows a day; Binance sends at most one per symbol per second, and a real
day holds far fewer). Own database (created if missing, migrated, the table emptied first).

Rerun:

    .venv/bin/python bench/liquidation_sums.py --symbols 400 --share 0.2
"""

import argparse
import random
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import _system

BENCH_DATABASE_NAME = "volspike_bench_liquidations"
LOOKBACKS_SEC = [300, 900, 3600, 4 * 3600, 24 * 3600]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--symbols", type=int, default=400)
    parser.add_argument("--share", type=float, default=0.2, help="share of seconds liquidated")
    parser.add_argument("--repeat", type=int, default=7)
    _system.isolation_args_add(
        parser, database_name=BENCH_DATABASE_NAME, redis_url="redis://127.0.0.1:6379/11"
    )
    args = parser.parse_args()
    _system.database_create_if_missing(args.database_name)
    env = _system.process_env(
        simulator_url="http://127.0.0.1:9",
        database_url=_system.database_url_for(args.database_name),
        redis_url=args.redis_url,
        DJANGO_DEBUG="False",
    )
    _system.django_setup(env, migrate=True, flush=False)
    from django.db import connection
    from django.utils import timezone

    from streams.selectors import (
        LiquidationWindow,
        liquidation_sums_by_lookback,
        liquidation_sums_over_windows,
    )

    now = timezone.now()
    symbols = [f"S{i:03d}USDT" for i in range(args.symbols)]
    rng = random.Random(4242)
    started = time.monotonic()
    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE stream_liquidations")
        # one row per (symbol, liquidated second) over 25 h, generated in Postgres
        cursor.execute(
            """
            INSERT INTO stream_liquidations
                (symbol, side, price, quantity, usd, time, received_at)
            SELECT 'S' || lpad(s::text, 3, '0') || 'USDT',
                   CASE WHEN random() < 0.5 THEN 'SELL' ELSE 'BUY' END,
                   100, 10, 1000 * (1 + random() * 50),
                   %s - make_interval(secs => t), %s
            FROM generate_series(0, %s - 1) AS s, generate_series(0, 25 * 3600 - 1) AS t
            WHERE random() < %s
            """,
            [now, now, args.symbols, args.share],
        )
        cursor.execute("ANALYZE stream_liquidations")
        cursor.execute("SELECT count(*) FROM stream_liquidations WHERE time > %s", [
            now - timedelta(days=1)
        ])  # fmt: skip
        day_rows = cursor.fetchone()[0]
    print(f"{day_rows:,} rows in the last 24 h ({time.monotonic() - started:.0f} s to fill)")

    def timed(call) -> list[float]:
        times = []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            call()
            times.append((time.perf_counter() - t0) * 1000)
        return times

    screener = timed(lambda: liquidation_sums_by_lookback(LOOKBACKS_SEC, until=now))
    windows = [
        LiquidationWindow(rng.choice(symbols), now - timedelta(seconds=w), now)
        for w in (300, 900, 3600, 300, 900, 3600, 300, 900)
    ]
    batch = timed(lambda: liquidation_sums_over_windows(windows))
    print(
        f"screener (all symbols, 5 lookbacks to 24 h, 1 query): median "
        f"{statistics.median(screener):.0f} ms, max {max(screener):.0f} ms"
    )
    print(
        f"alert batch (8 alerts, windows 5 min to 1 h, 1 query): median "
        f"{statistics.median(batch):.1f} ms, max {max(batch):.1f} ms"
    )
    print(
        f"rerun: .venv/bin/python bench/liquidation_sums.py --symbols {args.symbols} "
        f"--share {args.share:g}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
