"""CPU and memory of the `streams` process at 650 symbols with all three market streams at full
rate: `!markPrice@arr@1s` (every symbol every second, two frames), `!miniTicker@arr` (every
trading symbol changes every second) and `!forceOrder@arr` at its ceiling (one liquidation per
trading symbol per second: --ws-liquidation-rate 1, far above any real market).

    .venv/bin/python bench/streams_cost.py [--symbols 650 --seconds 30 --warmup 10]

Starts its own simulator and `manage.py streams_run` (as the Procfile does) against a Postgres
database and Redis database of its own; prints the process's CPU share, RSS and what it stored.
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

    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE stream_liquidations")
    streams = Process(
        "streams", [sys.executable, "manage.py", "streams_run"], env, log_dir, cwd=PROJECT_ROOT
    )
    stack.callback(streams.stop)
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

    print(f"streams process, {args.symbols} simulator symbols ({symbols} mark prices stored), "
          f"{elapsed:.0f} s after {args.warmup:.0f} s of warm-up:")  # fmt: skip
    for stream in sorted(frames1):
        rate = (frames1[stream] - frames0.get(stream, 0)) / elapsed
        print(f"  {stream:<20} {rate:7.1f} frames/s")
    print(f"  liquidations stored  {(rows1 - rows0) / elapsed:7.1f} rows/s (Postgres)")
    print(f"  CPU                  {100 * cpu / elapsed:7.1f} % of one core")
    print(f"  RSS                  {rss_peak / 2**20:7.1f} MiB (peak over the run)")
    print(f"  (the simulator itself: {100 * sim_cpu / elapsed:.1f} % of one core)")
    print(f"rerun: {COMMAND} --symbols {args.symbols} --seconds {args.seconds:g}")
    return True


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--symbols", type=int, default=650)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--warmup", type=float, default=10.0)
    isolation_args_add(
        parser, database_name="bench_streams_cost", redis_url="redis://127.0.0.1:6379/8"
    )
    return run_main(run, parser.parse_args())


if __name__ == "__main__":
    sys.exit(main())
