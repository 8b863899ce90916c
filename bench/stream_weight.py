"""The poller's openInterest requests per minute with the mark-price stream against REST-only
mode, side by side in one run, with the simulator's 429 count (issue 18).

With the stream fresh, the poller sends no premiumIndex (weight 10 per interval) and its interval
formula leaves that weight to openInterest polls; REST-only (STREAMS_ENABLED=false) it pays
premiumIndex every interval. Same system as bench/poller_budget.py (its simulator arguments and
set-up: 650 symbols, exactly --symbols of them liquid, the Procfile's workers and one beat, as
real subprocesses, its own Postgres database and Redis database): first REST-only, then with the
`streams` process (`manage.py streams_run`, as the Procfile runs it) against the simulator's
market streams. Each mode warms up (the whole universe dispatched, --warmup seconds of polling;
in stream mode the mark-price stream fresh and the poller's source "stream"), then the simulator's
per-IP counts are read over --seconds.

Rerun:

    .venv/bin/python bench/stream_weight.py --seconds 90

Process logs go to test-artifacts/bench-stream-weight-<mode>-*.log.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import redis

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import _system
from bench._system import Process, SimulatorHandle
from bench.poller_budget import (
    BENCH_DATABASE_NAME,
    BENCH_REDIS_URL,
    PREMIUM_INDEX_WEIGHT,
    SIM_ARGS,
    ExchangeCounts,
    poller_status,
    poller_status_forget,
    universe_size,
    wait_until,
)

LOG_PREFIX = "bench-stream-weight"
LOG_DIR = _system.PROJECT_ROOT / "test-artifacts"
OI_WEIGHT = 1
MODES = ("rest", "stream")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=90, help="measured span per mode")
    parser.add_argument("--symbols", type=int, default=400, help="liquid symbols (default 400)")
    parser.add_argument("--warmup", type=float, default=30, help="polling before measuring")
    _system.isolation_args_add(parser, database_name=BENCH_DATABASE_NAME, redis_url=BENCH_REDIS_URL)
    return parser.parse_args()


@dataclass(frozen=True)
class ModeFigures:
    mode: str
    seconds: float
    open_interest_per_min: float
    premium_index_per_min: float
    interval_sec: str
    mark_price_source: str
    count_429: int
    count_418: int

    @property
    def weight_per_min(self) -> float:
        return (
            self.open_interest_per_min * OI_WEIGHT
            + self.premium_index_per_min * PREMIUM_INDEX_WEIGHT
        )


def run(args: argparse.Namespace, stack: ExitStack) -> bool:
    database_url = _system.database_url_for(args.database_name)
    _system.database_create_if_missing(args.database_name)
    redis_client = _system.redis_flush(args.redis_url)
    sim, sim_process = _system.start_simulator(f"{LOG_PREFIX}-simulator", SIM_ARGS, LOG_DIR)
    stack.callback(sim_process.stop)
    stack.callback(sim.session.close)
    symbols = _system.make_exactly_liquid(sim, args.symbols)
    print(f"simulator {sim.base_url}: {len(symbols)} liquid symbols", flush=True)
    base_env = _system.process_env(
        simulator_url=sim.base_url,
        database_url=database_url,
        redis_url=args.redis_url,
        **_system.liquidity_env(),
        DJANGO_DEBUG="False",
        LOG_LEVEL="INFO",
    )
    _system.django_setup(base_env, migrate=True, flush=True)
    rows = []
    for mode in MODES:
        env = {**base_env, "STREAMS_ENABLED": "true" if mode == "stream" else "false"}
        with ExitStack() as mode_stack:
            rows.append(
                run_mode(mode, args, mode_stack, env, sim, sim_process, redis_client, symbols)
            )
    print()
    print(f"{'mode':<8} {'openInterest/min':>17} {'premiumIndex/min':>17} {'weight/min':>11} "
          f"{'interval':>9} {'source':>7} {'429':>4} {'418':>4}")  # fmt: skip
    for row in rows:
        print(
            f"{row.mode:<8} {row.open_interest_per_min:>17.1f} {row.premium_index_per_min:>17.2f} "
            f"{row.weight_per_min:>11.1f} {row.interval_sec:>9} {row.mark_price_source:>7} "
            f"{row.count_429:>4} {row.count_418:>4}"
        )
    rest, stream = rows
    gained = stream.open_interest_per_min - rest.open_interest_per_min
    saved = (rest.premium_index_per_min - stream.premium_index_per_min) * PREMIUM_INDEX_WEIGHT
    print(
        f"stream vs REST: openInterest {gained:+.1f}/min "
        f"({gained / rest.open_interest_per_min:+.1%}); premiumIndex weight saved {saved:.1f}/min"
    )
    print()
    isolation = ""
    if (args.database_name, args.redis_url) != (BENCH_DATABASE_NAME, BENCH_REDIS_URL):
        isolation = f" --database-name {args.database_name} --redis-url {args.redis_url}"
    print(f"rerun: .venv/bin/python bench/stream_weight.py --seconds {args.seconds:g}{isolation}")
    return all(row.count_429 == 0 and row.count_418 == 0 for row in rows)


def run_mode(
    mode: str,
    args: argparse.Namespace,
    stack: ExitStack,
    env: dict[str, str],
    sim: SimulatorHandle,
    sim_process: Process,
    redis_client: redis.Redis,
    symbols: list[str],
) -> ModeFigures:
    prefix = f"{LOG_PREFIX}-{mode}"
    schedule_dir = stack.enter_context(tempfile.TemporaryDirectory(prefix="stream-weight-"))
    print(f"--- [{mode}] starting workers, beat" + (" and streams" if mode == "stream" else ""))
    processes: list[Process] = [sim_process]
    if mode == "stream":
        streams = Process(
            f"{prefix}-streams", [sys.executable, "manage.py", "streams_run"], env, LOG_DIR
        )
        stack.callback(streams.stop)
        processes.append(streams)
    workers = _system.start_workers(_system.pool_config("procfile"), prefix, env, LOG_DIR)
    for worker in workers:
        stack.callback(worker.stop)
    beat = _system.start_beat(f"{prefix}-beat", env, LOG_DIR, schedule_dir)
    stack.callback(beat.stop)
    processes += [*workers, beat]

    from volspike.celery import app

    app.send_task("liquidity.universe_refresh", queue="default")
    wait_until(lambda: universe_size(redis_client) == len(symbols), 60, "the universe", processes)
    poller_status_forget(redis_client)
    wait_until(
        lambda: poller_status(redis_client).get("n_symbols") == str(len(symbols)),
        30,
        "the poller to dispatch the whole universe",
        processes,
    )
    if mode == "stream":
        from streams.selectors import mark_price_source

        wait_until(lambda: mark_price_source() == "stream", 60, "the stream source", processes)
    time.sleep(args.warmup)
    before = ExchangeCounts.read(sim)
    started = time.monotonic()
    print(f"measuring for {args.seconds:.0f} s", flush=True)
    while time.monotonic() - started < args.seconds:
        for process in processes:
            process.check_alive()
        time.sleep(1.0)
    after = ExchangeCounts.read(sim)
    seconds = time.monotonic() - started
    status = poller_status(redis_client)
    from streams.selectors import mark_price_source

    return ModeFigures(
        mode=mode,
        seconds=seconds,
        open_interest_per_min=(after.open_interest - before.open_interest) * 60 / seconds,
        premium_index_per_min=(after.premium_index - before.premium_index) * 60 / seconds,
        interval_sec=status.get("interval_sec", "?"),
        mark_price_source=mark_price_source() or "-",
        count_429=after.count_429 - before.count_429,
        count_418=after.count_418 - before.count_418,
    )


def main() -> int:
    return _system.run_main(run, parse_args())


if __name__ == "__main__":
    sys.exit(main())
