"""CPU and memory of the `streams` process at 650 symbols with all three market streams at full
rate: `!markPrice@arr@1s` (every symbol every second, two frames), `!miniTicker@arr` (every
trading symbol changes every second) and `!forceOrder@arr` at its ceiling (one liquidation per
trading symbol per second: --ws-liquidation-rate 1, far above any real market).

    .venv/bin/python bench/streams_cost.py [--symbols 650 --seconds 30 --warmup 10]

Starts its own simulator and `manage.py streams_run` (as the Procfile does) against a Postgres
database and Redis database of its own; prints the process's CPU share, RSS and what it stored.

`--burst-rules 0,3` runs the process once per count given, one after the other on the same
simulator: with that many liquidation-burst rules enabled (1, 5 and 15 min windows, both sides,
USD thresholds, the third also a volume share) over a liquid universe of every trading USDT
symbol, and
prints the runs side by side with each one's ratio to the first.
"""

from __future__ import annotations

import argparse
import sys
import time
from contextlib import ExitStack
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._system import (
    PROJECT_ROOT,
    Process,
    database_create_if_missing,
    database_url_for,
    django_setup,
    isolation_args_add,
    process_env,
    redis_flush,
    run_main,
    start_simulator,
    tree_cpu_seconds,
    tree_rss_bytes,
)

COMMAND = ".venv/bin/python bench/streams_cost.py"


def run(args: argparse.Namespace, stack: ExitStack) -> bool:
    log_dir = PROJECT_ROOT / "test-artifacts" / "streams-cost"
    sim, sim_process = start_simulator(
        "simulator",
        ("--symbols", str(args.symbols), "--event-rate-per-day", "0",
         "--ws-liquidation-rate", "1"),
        log_dir,
    )  # fmt: skip
    stack.callback(sim_process.stop)
    database_create_if_missing(args.database_name)
    redis_client = redis_flush(args.redis_url)
    env = process_env(
        simulator_url=sim.base_url,
        database_url=database_url_for(args.database_name),
        redis_url=args.redis_url,
        STREAMS_BASE_URL=f"ws://127.0.0.1:{sim.port}",
    )
    django_setup(env, migrate=True)
    from django.db import connection

    runs = []
    for rules in args.burst_rules:
        with connection.cursor() as cursor:
            cursor.execute("TRUNCATE stream_liquidations")
        burst_rules_install(rules, sim)
        streams = Process(
            f"streams-{rules}-rules",
            [sys.executable, "manage.py", "streams_run"],
            env,
            log_dir,
            cwd=PROJECT_ROOT,
        )
        try:
            runs.append((rules, measure(args, streams, sim_process, redis_client, connection)))
        finally:
            streams.stop()
    print()
    print(f"{'burst rules':>11}  {'CPU % core':>10}  {'ratio':>5}  {'RSS MiB':>8}  {'ratio':>5}  "
          f"{'liq rows/s':>10}  {'bursts':>6}")  # fmt: skip
    base = runs[0][1]
    for rules, run_ in runs:
        print(
            f"{rules:>11}  {run_['cpu_pct']:>10.1f}  {run_['cpu_pct'] / base['cpu_pct']:>5.2f}  "
            f"{run_['rss_mib']:>8.1f}  {run_['rss_mib'] / base['rss_mib']:>5.2f}  "
            f"{run_['rows_per_sec']:>10.1f}  {run_['bursts']:>6}"
        )
    print(
        f"rerun: {COMMAND} --symbols {args.symbols} --seconds {args.seconds:g} "
        f"--burst-rules {','.join(map(str, args.burst_rules))}"
    )
    return True


def burst_rules_install(count: int, sim) -> None:
    """`count` enabled liquidation-burst rules (and no other rule), over a published universe
    of every trading USDT symbol of the simulator."""
    from datetime import UTC, datetime
    from decimal import Decimal

    from alerts.models import AlertRule, LiquidationAlert, RuleKind
    from alerts.services import alert_rule_create
    from liquidity.models import LiquidSymbol
    from liquidity.services import universe_publish_to_redis

    AlertRule.objects.all().delete()
    LiquidationAlert.objects.all().delete()
    LiquidSymbol.objects.all().delete()
    now = datetime.now(UTC)
    tickers = sim.get("/fapi/v1/ticker/24hr").json()
    LiquidSymbol.objects.bulk_create(
        LiquidSymbol(
            symbol=t["symbol"], quote_volume_24h=Decimal(t["quoteVolume"]) or Decimal(1),
            entered_at=now, last_seen_at=now,
        )
        for t in tickers
        if t["symbol"].endswith("USDT")
    )  # fmt: skip
    universe_publish_to_redis()
    # thresholds about the sums a side reaches at this rate (~1,350 USD a second on average),
    # so some symbols fire; the third rule also takes a share of the 24 h volume
    for n in range(count):
        window, usd = ((60, 100_000), (300, 450_000), (900, 1_300_000))[n % 3]
        alert_rule_create(
            name=f"bench-liq-{n}", kind=RuleKind.LIQUIDATION_BURST, window_sec=window,
            threshold_usd=Decimal(usd),
            threshold_volume_share=Decimal("0.0001") if n % 3 == 2 else None,
        )  # fmt: skip


def measure(args, streams, sim_process, redis_client, connection) -> dict:
    from alerts.models import LiquidationAlert

    time.sleep(args.warmup)
    streams.check_alive()

    def frames() -> dict[str, int]:
        return {k: int(v) for k, v in redis_client.hgetall("streams:frames").items()}

    def liquidation_rows() -> int:
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM stream_liquidations")
            return cursor.fetchone()[0]

    cpu0, sim_cpu0, frames0, rows0 = (
        tree_cpu_seconds(streams.pid), tree_cpu_seconds(sim_process.pid), frames(),
        liquidation_rows(),
    )  # fmt: skip
    started = time.monotonic()
    rss_peak = 0
    while time.monotonic() - started < args.seconds:
        time.sleep(1)
        streams.check_alive()
        rss_peak = max(rss_peak, tree_rss_bytes(streams.pid))
    elapsed = time.monotonic() - started
    cpu = tree_cpu_seconds(streams.pid) - cpu0
    sim_cpu = tree_cpu_seconds(sim_process.pid) - sim_cpu0
    frames1, rows1 = frames(), liquidation_rows()
    symbols = redis_client.hlen("oi:mark_price")
    bursts = LiquidationAlert.objects.count()

    print(f"streams process, {streams.name}: {args.symbols} simulator symbols ({symbols} mark "
          f"prices stored), {elapsed:.0f} s after {args.warmup:.0f} s of warm-up:")  # fmt: skip
    for stream in sorted(frames1):
        rate = (frames1[stream] - frames0.get(stream, 0)) / elapsed
        print(f"  {stream:<20} {rate:7.1f} frames/s")
    print(f"  liquidations stored  {(rows1 - rows0) / elapsed:7.1f} rows/s (Postgres)")
    print(f"  burst alerts stored  {bursts:7d} (since the process started)")
    print(f"  CPU                  {100 * cpu / elapsed:7.1f} % of one core")
    print(f"  RSS                  {rss_peak / 2**20:7.1f} MiB (peak over the run)")
    print(f"  (the simulator itself: {100 * sim_cpu / elapsed:.1f} % of one core)")
    return {
        "cpu_pct": 100 * cpu / elapsed,
        "rss_mib": rss_peak / 2**20,
        "rows_per_sec": (rows1 - rows0) / elapsed,
        "bursts": bursts,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--symbols", type=int, default=650)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--warmup", type=float, default=10.0)
    parser.add_argument(
        "--burst-rules",
        type=lambda text: [int(n) for n in text.split(",")],
        default=[0],
        help="comma-separated counts of liquidation-burst rules, one run each (e.g. 0,3)",
    )
    isolation_args_add(
        parser, database_name="bench_streams_cost", redis_url="redis://127.0.0.1:6379/8"
    )
    return run_main(run, parser.parse_args())


if __name__ == "__main__":
    sys.exit(main())
