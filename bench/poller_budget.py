"""400 liquid symbols at the default budget for 3 minutes against the simulator.

Runs the realtime poller as it runs in production (Procfile): a Celery worker for
default,oi_backfill (concurrency 2), a Celery worker for oi_poll (concurrency 4) and one beat,
as real subprocesses against a simulator of its own (650 symbols, seed 4242) in which exactly
400 TRADING USDT perpetuals are liquid (their 24h volume is set above a raised
LIQUIDITY_ENTER_QUOTE_VOLUME, every other symbol's below LIQUIDITY_EXIT_QUOTE_VOLUME; the poller
settings keep their defaults). Uses its own Postgres database (volspike_bench, created
and migrated if missing, then flushed) and Redis database 13 (flushed), so it does not disturb
other runs; --database-name / --redis-url (or $BENCH_DATABASE_NAME / $BENCH_REDIS_URL) choose
others. The set-up is bench/_system.py's, shared with the other system benchmarks. After a warm-up (at least --warmup seconds of polling and the ring backfill of all
400 symbols done) it measures for --seconds and prints, each next to its target:

* the poller's weight/min at the exchange (simulator's per-IP openInterest and premiumIndex
  counts) as a share of OI_MAX_REQ_PER_MIN (target >= 97%);
* per-symbol polling interval p50/p99 (gaps between a symbol's openInterest requests, as the
  simulator saw them) against the interval target (target p99 <= 1.1 x target);
* the simulator's 429 and 418 counts (target 0);
* worker CPU seconds per 1,000 samples and peak RSS (both worker process trees, from /proc);
* samples stored in Postgres during the span against the expected number;
* the poller's own counters (oi:poller:counters) over the span.

Rerun:

    .venv/bin/python bench/poller_budget.py --seconds 180

Process logs go to test-artifacts/bench-poller-budget-*.log.
"""

from __future__ import annotations

import argparse
import itertools
import math
import sys
import tempfile
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import redis

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import _system
from bench._system import Process, SimulatorHandle

BENCH_DATABASE_NAME = "volspike_bench"
BENCH_REDIS_URL = "redis://127.0.0.1:6379/13"
SIM_ARGS = ("--seed", "4242", "--symbols", "650", "--event-rate-per-day", "0")
POLLER_IP = "127.0.0.1"
OI_PATH = "/fapi/v1/openInterest"
PREMIUM_INDEX_PATH = "/fapi/v1/premiumIndex"
PREMIUM_INDEX_WEIGHT = 10  # the poller asks for all symbols at once
LOG_PREFIX = "bench-poller-budget"
LOG_DIR = _system.PROJECT_ROOT / "test-artifacts"

# Targets
MIN_BUDGET_SHARE = 0.97
MAX_P99_OVER_TARGET = 1.1


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=180, help="measured span (default 180)")
    parser.add_argument("--symbols", type=int, default=400, help="liquid symbols (default 400)")
    parser.add_argument(
        "--warmup", type=float, default=30, help="least polling before measuring (default 30)"
    )
    parser.add_argument(
        "--backfill-timeout",
        type=float,
        default=300,
        help="longest wait for the ring backfill before measuring anyway (default 300)",
    )
    _system.isolation_args_add(parser, database_name=BENCH_DATABASE_NAME, redis_url=BENCH_REDIS_URL)
    return parser.parse_args()


# --- simulator ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ExchangeCounts:
    open_interest: int
    premium_index: int
    count_429: int
    count_418: int

    @classmethod
    def read(cls, sim: SimulatorHandle) -> ExchangeCounts:
        ip_stats = sim.stats(ip=POLLER_IP)["ips"].get(POLLER_IP, {})
        endpoints = ip_stats.get("endpoints", {})
        return cls(
            open_interest=endpoints.get(OI_PATH, 0),
            premium_index=endpoints.get(PREMIUM_INDEX_PATH, 0),
            count_429=ip_stats.get("count_429", 0),
            count_418=ip_stats.get("count_418", 0),
        )


# --- waiting for the pipeline ---------------------------------------------------------------


def wait_until(condition, timeout: float, what: str, processes: list[Process]):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for process in processes:
            process.check_alive()
        if value := condition():
            return value
        time.sleep(0.5)
    raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")


def universe_size(redis_client: redis.Redis) -> int:
    from liquidity.models import LiquidSymbol
    from liquidity.services import REDIS_UNIVERSE_KEY

    in_postgres = LiquidSymbol.objects.count()
    in_redis = redis_client.scard(REDIS_UNIVERSE_KEY)
    return min(in_postgres, in_redis)


def poller_status(redis_client: redis.Redis) -> dict[str, str]:
    from oi.keys import STATUS_KEY

    return redis_client.hgetall(STATUS_KEY)


def symbols_backfilled(redis_client: redis.Redis, symbols: list[str]) -> int:
    from oi.keys import BACKFILL_DONE_KEY

    with redis_client.pipeline(transaction=False) as pipe:
        for symbol in symbols:
            pipe.exists(BACKFILL_DONE_KEY.format(symbol))
        return sum(pipe.execute())


def poller_counters(redis_client: redis.Redis) -> dict[str, int]:
    from oi.keys import COUNTERS_KEY

    return {name: int(value) for name, value in redis_client.hgetall(COUNTERS_KEY).items()}


# --- the measurement ------------------------------------------------------------------------


@dataclass
class Measurement:
    start_ms: int
    end_ms: int = 0
    exchange_before: ExchangeCounts | None = None
    exchange_after: ExchangeCounts | None = None
    counters_before: dict[str, int] = field(default_factory=dict)
    counters_after: dict[str, int] = field(default_factory=dict)
    cpu_before: float = 0.0
    cpu_after: float = 0.0
    peak_rss_bytes: int = 0

    @property
    def minutes(self) -> float:
        return (self.end_ms - self.start_ms) / 60_000


def measure(
    sim: SimulatorHandle,
    redis_client: redis.Redis,
    worker_pids: list[int],
    seconds: float,
    processes: list[Process],
) -> Measurement:
    def workers_cpu() -> float:
        return sum(_system.tree_cpu_seconds(pid) for pid in worker_pids)

    def workers_rss() -> int:
        return sum(_system.tree_rss_bytes(pid) for pid in worker_pids)

    result = Measurement(start_ms=time.time_ns() // 1_000_000)
    result.exchange_before = ExchangeCounts.read(sim)
    result.counters_before = poller_counters(redis_client)
    result.cpu_before = workers_cpu()
    end = time.monotonic() + seconds
    next_progress = time.monotonic() + 30
    while (now := time.monotonic()) < end:
        for process in processes:
            process.check_alive()
        result.peak_rss_bytes = max(result.peak_rss_bytes, workers_rss())
        if now >= next_progress:
            print(f"  ... {seconds - (end - now):.0f}/{seconds:.0f} s", flush=True)
            next_progress += 30
        time.sleep(min(1.0, max(end - time.monotonic(), 0)))
    result.cpu_after = workers_cpu()
    result.end_ms = time.time_ns() // 1_000_000
    result.exchange_after = ExchangeCounts.read(sim)
    result.counters_after = poller_counters(redis_client)
    return result


def interval_gaps_ms(
    sim: SimulatorHandle, symbols: list[str], start_ms: int, end_ms: int
) -> tuple[list[int], list[str]]:
    """Gaps between consecutive openInterest requests of each symbol inside the span, and the
    symbols never polled in it."""
    times = sim.stats(symbols=symbols)["open_interest_times"]
    gaps: list[int] = []
    never_polled: list[str] = []
    for symbol in symbols:
        polled = [t for t in times.get(symbol, []) if start_ms <= t <= end_ms]
        if not polled:
            never_polled.append(symbol)
        gaps.extend(b - a for a, b in itertools.pairwise(polled))
    return gaps, never_polled


def percentile(values: list[int], share: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


def samples_stored(start_ms: int, end_ms: int) -> int:
    from datetime import UTC, datetime

    from oi.models import OpenInterestSnapshot

    return OpenInterestSnapshot.objects.filter(
        source="realtime",
        ts__gte=datetime.fromtimestamp(start_ms / 1000, tz=UTC),
        ts__lt=datetime.fromtimestamp(end_ms / 1000, tz=UTC),
    ).count()


# --- report ---------------------------------------------------------------------------------


def verdict(ok: bool) -> str:
    return "OK  " if ok else "MISS"


def report(
    result: Measurement,
    sim: SimulatorHandle,
    symbols: list[str],
    interval_sec: float,
    status_interval_sec: str,
    backfill_sec: float | None,
    seconds: float,
    rerun_extra: str = "",
) -> None:
    from django.conf import settings

    budget = settings.OI_MAX_REQ_PER_MIN
    before, after = result.exchange_before, result.exchange_after
    oi_requests = after.open_interest - before.open_interest
    premium_requests = after.premium_index - before.premium_index
    weight_per_min = (oi_requests + PREMIUM_INDEX_WEIGHT * premium_requests) / result.minutes
    requests_per_min = (oi_requests + premium_requests) / result.minutes
    share = weight_per_min / budget
    target_ms = interval_sec * 1000
    gaps, never_polled = interval_gaps_ms(sim, symbols, result.start_ms, result.end_ms)
    p50 = percentile(gaps, 0.50) if gaps else float("nan")
    p99 = percentile(gaps, 0.99) if gaps else float("nan")
    stored = samples_stored(result.start_ms, result.end_ms)
    expected = len(symbols) * (result.end_ms - result.start_ms) / target_ms
    cpu_seconds = result.cpu_after - result.cpu_before
    span_429 = after.count_429 - before.count_429
    span_418 = after.count_418 - before.count_418
    counters = {
        name: result.counters_after.get(name, 0) - result.counters_before.get(name, 0)
        for name in sorted(set(result.counters_before) | set(result.counters_after))
    }

    print()
    print(
        f"=== poller budget: {len(symbols)} liquid symbols, {result.minutes * 60:.0f} s measured ==="
    )
    if backfill_sec is not None:
        print(f"warm-up: ring backfill of all symbols took {backfill_sec:.0f} s (not measured)")
    print(
        f"interval target     {interval_sec:.1f} s (oi.schedule.poll_interval_sec; "
        f"oi:poller:status interval_sec = {status_interval_sec})"
    )
    print(
        f"[{verdict(share >= MIN_BUDGET_SHARE)}] poller weight/min   {weight_per_min:.0f} of "
        f"{budget} = {share:.1%} (target >= {MIN_BUDGET_SHARE:.0%}); "
        f"{oi_requests} openInterest + {premium_requests} premiumIndex(x{PREMIUM_INDEX_WEIGHT}) "
        f"= {requests_per_min:.0f} requests/min"
    )
    print(
        f"[{verdict(p99 <= MAX_P99_OVER_TARGET * target_ms)}] per-symbol interval p50 "
        f"{p50 / 1000:.2f} s, p99 {p99 / 1000:.2f} s, max {max(gaps, default=0) / 1000:.2f} s; "
        f"p99/target = {p99 / target_ms:.3f} (target <= {MAX_P99_OVER_TARGET}); "
        f"{len(gaps)} gaps, {len(never_polled)} symbols never polled"
    )
    print(
        f"[{verdict(after.count_429 == 0)}] 429 responses       {after.count_429} "
        f"({span_429} in span) (target 0); 418 responses {after.count_418} ({span_418} in span)"
    )
    print(
        f"       worker CPU          {cpu_seconds:.1f} s = "
        f"{cpu_seconds / max(stored, 1) * 1000:.2f} CPU-s per 1,000 samples "
        f"(both worker trees, utime+stime)"
    )
    print(
        f"       worker peak RSS     {result.peak_rss_bytes / 2**20:.0f} MiB (sum over both trees)"
    )
    print(
        f"       samples stored      {stored} in Postgres vs {expected:.0f} expected "
        f"({stored / expected:.1%})"
    )
    print(f"       poller counters     {counters} (oi:poller:counters, change over the span)")
    print()
    print(f"rerun: python bench/poller_budget.py --seconds {seconds:g}{rerun_extra}")


# --- main -----------------------------------------------------------------------------------


def run(args: argparse.Namespace, stack: ExitStack) -> None:
    database_url = _system.database_url_for(args.database_name)
    _system.database_create_if_missing(args.database_name)
    redis_client = _system.redis_flush(args.redis_url)

    sim, sim_process = _system.start_simulator(f"{LOG_PREFIX}-simulator", SIM_ARGS, LOG_DIR)
    stack.callback(sim_process.stop)
    stack.callback(sim.session.close)
    symbols = _system.make_exactly_liquid(sim, args.symbols)
    print(f"simulator {sim.base_url}: {len(symbols)} liquid symbols")

    env = _system.process_env(
        simulator_url=sim.base_url,
        database_url=database_url,
        redis_url=args.redis_url,
        **_system.liquidity_env(),
        LOG_LEVEL="INFO",
    )
    _system.django_setup(env, migrate=True, flush=True)
    from django.conf import settings

    from oi.schedule import poll_interval_sec

    schedule_dir = stack.enter_context(tempfile.TemporaryDirectory(prefix="poller-budget-"))
    processes: list[Process] = []
    for name, queues, concurrency in (
        ("worker", "default,oi_backfill", 2),
        ("poller", "oi_poll", 4),
    ):
        processes.append(
            _system.start_worker(f"{LOG_PREFIX}-{name}", queues, concurrency, env, LOG_DIR)
        )
        stack.callback(processes[-1].stop)
    processes.append(_system.start_beat(f"{LOG_PREFIX}-beat", env, LOG_DIR, schedule_dir))
    stack.callback(processes[-1].stop)
    worker_pids = [process.pid for process in processes[:2]]
    processes.append(sim_process)
    print("workers and beat started; running the liquidity job")

    from volspike.celery import app

    app.send_task("liquidity.universe_refresh", queue="default")
    wait_until(lambda: universe_size(redis_client) == len(symbols), 60, "the universe", processes)
    wait_until(
        lambda: poller_status(redis_client).get("n_symbols") == str(len(symbols)),
        30,
        "the poller to dispatch the whole universe",
        processes,
    )
    polling_since = time.monotonic()
    print(f"universe has {len(symbols)} members; polling; warming up")

    wait_until(
        lambda: time.monotonic() - polling_since >= args.warmup, args.warmup + 5, "", processes
    )
    backfill_sec = None
    try:
        wait_until(
            lambda: symbols_backfilled(redis_client, symbols) == len(symbols),
            args.backfill_timeout,
            "the ring backfill",
            processes,
        )
        backfill_sec = time.monotonic() - polling_since
    except TimeoutError as exc:
        print(f"warning: {exc}; measuring anyway")

    interval_sec = poll_interval_sec(
        n_symbols=len(symbols),
        max_weight_per_min=settings.OI_MAX_REQ_PER_MIN,
        min_interval_sec=settings.OI_MIN_INTERVAL_SEC,
        max_interval_sec=settings.OI_MAX_INTERVAL_SEC,
    )
    print(f"measuring for {args.seconds:.0f} s")
    result = measure(sim, redis_client, worker_pids, args.seconds, processes)
    # A shard stores its batch when its window's polls are done: let the last ones land.
    time.sleep(2 * settings.OI_WINDOW_SEC + 1)
    status_interval = poller_status(redis_client).get("interval_sec", "?")
    rerun_extra = ""
    if (args.database_name, args.redis_url) != (BENCH_DATABASE_NAME, BENCH_REDIS_URL):
        rerun_extra = f" --database-name {args.database_name} --redis-url {args.redis_url}"
    report(
        result, sim, symbols, interval_sec, status_interval, backfill_sec, args.seconds,
        rerun_extra,
    )  # fmt: skip


def main() -> None:
    args = parse_args()
    with ExitStack() as stack:
        try:
            run(args, stack)
        except KeyboardInterrupt:
            print("interrupted; stopping processes")
            raise SystemExit(130) from None


if __name__ == "__main__":
    main()
