"""400 liquid symbols at the default budget against the simulator, for each worker pool
configuration given (side by side in one run).

Runs the system as in production: the ASGI server (uvicorn), the Celery workers of each pool
configuration (`--configs`, see bench/_system.py POOL_CONFIGS: `prefork` = before issue 14, two
prefork trees, default,oi_backfill x2 and oi_poll x4; `threads` = the same two workers on
thread pools; `single` = one thread-pool worker for every queue; `procfile` = what the Procfile
runs now) and one beat, as real subprocesses against a simulator of its own (650 symbols, seed
4242) in which exactly 400 TRADING USDT perpetuals are liquid (their 24h volume is set above a
raised LIQUIDITY_ENTER_QUOTE_VOLUME, every other symbol's below LIQUIDITY_EXIT_QUOTE_VOLUME; the
poller settings keep their defaults; DJANGO_DEBUG off, as in production). Uses its own Postgres
database (volspike_bench, created and migrated if missing, then flushed) and Redis database 13
(flushed once at the start), so it does not disturb other runs; --database-name / --redis-url
(or $BENCH_DATABASE_NAME / $BENCH_REDIS_URL) choose others. The set-up is bench/_system.py's.

The configurations run one after the other on the same simulator, database and Redis (the ring
backfill of the first serves the next). For each, after a warm-up (at least --warmup seconds of
polling and the ring backfill of all 400 symbols done) it measures for --seconds and prints,
each next to its target:

* the poller's weight/min at the exchange (simulator's per-IP openInterest and premiumIndex
  counts) as a share of OI_MAX_REQ_PER_MIN (target >= 97%);
* per-symbol polling interval p50/p99 (gaps between a symbol's openInterest requests, as the
  simulator saw them) against the interval target (target p99 <= 1.1 x target);
* the simulator's 429 and 418 counts (target 0);
* CPU seconds per 1,000 samples, of the workers and of every process of the system (web,
  workers, beat), utime+stime from /proc (target: every process <= 2);
* peak memory of every process of the system summed as PSS (/proc/<pid>/smaps_rollup: a page
  shared by N processes counts 1/N in each; target <= 400 MiB), and as RSS for comparison, and
  each process's peak PSS;
* samples stored in Postgres during the span against the expected number;
* the poller's own counters (oi:poller:counters) over the span.

Then a table of the configurations side by side, with each figure's ratio to the first's.

Rerun:

    .venv/bin/python bench/poller_budget.py --seconds 120 --configs prefork,threads

Process logs go to test-artifacts/bench-poller-budget-<config>-*.log.
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
import requests

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
MAX_CPU_PER_1000 = 2.0  # CPU-s per 1,000 samples, every process of the system (issue 14)
MAX_PSS_MIB = 400  # every process of the system summed as PSS (issue 14)


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
    parser.add_argument(
        "--configs",
        default="prefork,procfile",
        help="worker pool configurations, run one after the other (bench/_system.py "
        f"POOL_CONFIGS: {', '.join(_system.POOL_CONFIGS)}; default prefork,procfile)",
    )
    parser.add_argument(
        "--exchange-latency-ms",
        type=float,
        default=0,
        help="the simulator answers openInterest and premiumIndex this many ms late, plus up to "
        "--exchange-jitter-ms at random (a real exchange is 50-200 ms away; default 0)",
    )
    parser.add_argument("--exchange-jitter-ms", type=float, default=0)
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


def poller_status_forget(redis_client: redis.Redis) -> None:
    from oi.keys import STATUS_KEY

    redis_client.hdel(STATUS_KEY, "n_symbols")


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
    workers_cpu_before: float = 0.0
    workers_cpu_after: float = 0.0
    system_cpu_before: float = 0.0
    system_cpu_after: float = 0.0
    peak_pss_bytes: int = 0
    peak_rss_bytes: int = 0
    peak_pss_by_process: dict[str, int] = field(default_factory=dict)
    cpu_by_process: dict[str, float] = field(default_factory=dict)

    @property
    def minutes(self) -> float:
        return (self.end_ms - self.start_ms) / 60_000


def measure(
    sim: SimulatorHandle,
    redis_client: redis.Redis,
    system: dict[str, Process],
    worker_names: list[str],
    seconds: float,
    processes: list[Process],
) -> Measurement:
    """`system`: every process of the system (web, workers, beat) by name."""

    def cpu(names) -> float:
        return sum(_system.tree_cpu_seconds(system[name].pid) for name in names)

    result = Measurement(start_ms=time.time_ns() // 1_000_000)
    result.exchange_before = ExchangeCounts.read(sim)
    result.counters_before = poller_counters(redis_client)
    result.workers_cpu_before, result.system_cpu_before = cpu(worker_names), cpu(system)
    cpu_before = {name: cpu([name]) for name in system}
    end = time.monotonic() + seconds
    next_progress = time.monotonic() + 30
    while (now := time.monotonic()) < end:
        for process in processes:
            process.check_alive()
        pss = {name: _system.tree_pss_bytes(process.pid) for name, process in system.items()}
        for name, value in pss.items():
            result.peak_pss_by_process[name] = max(result.peak_pss_by_process.get(name, 0), value)
        result.peak_pss_bytes = max(result.peak_pss_bytes, sum(pss.values()))
        result.peak_rss_bytes = max(
            result.peak_rss_bytes, sum(_system.tree_rss_bytes(p.pid) for p in system.values())
        )
        if now >= next_progress:
            print(f"  ... {seconds - (end - now):.0f}/{seconds:.0f} s", flush=True)
            next_progress += 30
        time.sleep(min(1.0, max(end - time.monotonic(), 0)))
    result.workers_cpu_after, result.system_cpu_after = cpu(worker_names), cpu(system)
    result.cpu_by_process = {name: cpu([name]) - cpu_before[name] for name in system}
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


@dataclass(frozen=True)
class Figures:
    """One configuration's figures, for the side-by-side table."""

    config: str
    budget_share: float
    p50_sec: float
    p99_sec: float
    p99_over_target: float
    count_429: int
    workers_cpu_per_1000: float
    system_cpu_per_1000: float
    pss_mib: float
    rss_mib: float
    stored: int
    expected: float
    load: str
    bare_get_cpu_ms: float

    @property
    def cpu_per_sample_in_bare_gets(self) -> float:
        """CPU per sample (every process) in units of one bare HTTP GET's CPU on this machine
        at the time: a figure that a busy, shared machine inflates much less than seconds."""
        return self.system_cpu_per_1000 / self.bare_get_cpu_ms if self.bare_get_cpu_ms else 0.0


def report(
    config: str,
    result: Measurement,
    sim: SimulatorHandle,
    symbols: list[str],
    interval_sec: float,
    status_interval_sec: str,
    backfill_sec: float | None,
    load: str,
    bare_get_cpu_ms: float,
) -> Figures:
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
    workers_cpu = result.workers_cpu_after - result.workers_cpu_before
    system_cpu = result.system_cpu_after - result.system_cpu_before
    span_429 = after.count_429 - before.count_429
    span_418 = after.count_418 - before.count_418
    counters = {
        name: result.counters_after.get(name, 0) - result.counters_before.get(name, 0)
        for name in sorted(set(result.counters_before) | set(result.counters_after))
    }
    figures = Figures(
        config=config,
        budget_share=share,
        p50_sec=p50 / 1000,
        p99_sec=p99 / 1000,
        p99_over_target=p99 / target_ms,
        count_429=span_429,
        workers_cpu_per_1000=workers_cpu / max(stored, 1) * 1000,
        system_cpu_per_1000=system_cpu / max(stored, 1) * 1000,
        pss_mib=result.peak_pss_bytes / 2**20,
        rss_mib=result.peak_rss_bytes / 2**20,
        stored=stored,
        expected=expected,
        load=load,
        bare_get_cpu_ms=bare_get_cpu_ms,
    )

    print()
    print(
        f"=== [{config}] poller budget: {len(symbols)} liquid symbols, "
        f"{result.minutes * 60:.0f} s measured; 1-min load average {load} ==="
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
        f"[{verdict(span_429 == 0)}] 429 responses       {span_429} in span "
        f"({after.count_429} since the simulator started) (target 0); 418 responses "
        f"{span_418} in span"
    )
    print(
        f"[{verdict(figures.system_cpu_per_1000 <= MAX_CPU_PER_1000)}] CPU per 1,000 samples "
        f"{figures.system_cpu_per_1000:.2f} s, every process (web, workers, beat: "
        f"{system_cpu:.1f} CPU-s) (target <= {MAX_CPU_PER_1000:g}); workers alone "
        f"{figures.workers_cpu_per_1000:.2f} s ({workers_cpu:.1f} CPU-s); utime+stime"
    )
    print(
        f"[{verdict(figures.pss_mib <= MAX_PSS_MIB)}] peak memory         "
        f"{figures.pss_mib:.0f} MiB PSS, every process summed (target <= {MAX_PSS_MIB}); "
        f"{figures.rss_mib:.0f} MiB as RSS (shared pages counted per process)"
    )
    print(
        f"       machine speed       a bare HTTP GET to the simulator costs "
        f"{bare_get_cpu_ms:.2f} ms CPU here now, so a "
        f"sample costs {figures.cpu_per_sample_in_bare_gets:.1f} bare GETs of CPU"
    )
    print(
        "       CPU by process      "
        + ", ".join(f"{n} {v:.1f} s" for n, v in result.cpu_by_process.items())
    )
    print(
        "       peak PSS by process "
        + ", ".join(f"{n} {v / 2**20:.0f} MiB" for n, v in result.peak_pss_by_process.items())
    )
    print(
        f"       samples stored      {stored} in Postgres vs {expected:.0f} expected "
        f"({stored / expected:.1%})"
    )
    print(f"       poller counters     {counters} (oi:poller:counters, change over the span)")
    return figures


def side_by_side(rows: list[Figures]) -> None:
    """Every configuration's figures, with its ratio to the first configuration's."""
    columns = [
        ("budget use", "budget_share", "{:.1%}"),
        ("interval p50 s", "p50_sec", "{:.2f}"),
        ("interval p99 s", "p99_sec", "{:.2f}"),
        ("p99/target", "p99_over_target", "{:.3f}"),
        ("429s", "count_429", "{:d}"),
        ("CPU-s/1000 all", "system_cpu_per_1000", "{:.2f}"),
        ("CPU-s/1000 workers", "workers_cpu_per_1000", "{:.2f}"),
        ("PSS MiB all", "pss_mib", "{:.0f}"),
        ("RSS MiB all", "rss_mib", "{:.0f}"),
        ("stored/expected", "stored", "{:d}"),
    ]
    base = rows[0]
    print()
    print(f"=== side by side (ratio to {base.config}) ===")
    print(f"{'':<20}" + "".join(f"{row.config:>24}" for row in rows))
    for label, attribute, fmt in columns:
        cells = []
        for row in rows:
            value = getattr(row, attribute)
            text = fmt.format(value)
            if attribute == "stored":
                text = f"{value}/{row.expected:.0f}"
            elif row is not base and getattr(base, attribute):
                text += f" ({value / getattr(base, attribute):.2f}x)"
            cells.append(f"{text:>24}")
        print(f"{label:<20}" + "".join(cells))
    print(f"{'1-min load avg':<20}" + "".join(f"{row.load:>24}" for row in rows))


def bare_get_cpu_ms(sim: SimulatorHandle, count: int = 200) -> float:
    """CPU (ms) of one bare HTTP GET (requests, a kept-alive session) to the simulator from this
    process: how fast this machine is now, to read the CPU figures against."""
    url = f"{sim.base_url}/fapi/v1/ping"
    with requests.Session() as session:
        session.trust_env = False
        for _ in range(20):
            session.get(url, timeout=10)
        started = time.process_time()
        for _ in range(count):
            session.get(url, timeout=10)
        return (time.process_time() - started) / count * 1000


def load_average() -> str:
    """The 1-minute load average (the machine has 2 cores; other runs may share it)."""
    return Path("/proc/loadavg").read_text().split()[0]


# --- main -----------------------------------------------------------------------------------


def run(args: argparse.Namespace, stack: ExitStack) -> bool:
    configs = [name.strip() for name in args.configs.split(",") if name.strip()]
    for name in configs:
        _system.pool_config(
            _system.config_code(name)[0]
        )  # unknown names fail before anything starts
    database_url = _system.database_url_for(args.database_name)
    _system.database_create_if_missing(args.database_name)
    redis_client = _system.redis_flush(args.redis_url)

    sim, sim_process = _system.start_simulator(f"{LOG_PREFIX}-simulator", SIM_ARGS, LOG_DIR)
    stack.callback(sim_process.stop)
    stack.callback(sim.session.close)
    symbols = _system.make_exactly_liquid(sim, args.symbols)
    print(f"simulator {sim.base_url}: {len(symbols)} liquid symbols; configs {', '.join(configs)}")
    if args.exchange_latency_ms or args.exchange_jitter_ms:
        sim.set_faults(
            latency_ms=args.exchange_latency_ms,
            latency_jitter_ms=args.exchange_jitter_ms,
            paths=[OI_PATH, PREMIUM_INDEX_PATH],
        )
        print(
            f"exchange latency {args.exchange_latency_ms:g} ms + up to "
            f"{args.exchange_jitter_ms:g} ms (openInterest, premiumIndex)"
        )

    env = _system.process_env(
        simulator_url=sim.base_url,
        database_url=database_url,
        redis_url=args.redis_url,
        **_system.liquidity_env(),
        DJANGO_DEBUG="False",  # as in production (Django's query log would grow the processes)
        LOG_LEVEL="INFO",
    )
    _system.django_setup(env, migrate=True, flush=True)
    from django.conf import settings

    from oi.schedule import poll_interval_sec

    interval_sec = poll_interval_sec(
        n_symbols=len(symbols),
        max_weight_per_min=settings.OI_MAX_REQ_PER_MIN,
        min_interval_sec=settings.OI_MIN_INTERVAL_SEC,
        max_interval_sec=settings.OI_MAX_INTERVAL_SEC,
    )
    rows = []
    for config in configs:
        with ExitStack() as config_stack:
            rows.append(
                run_config(config, args, config_stack, env, sim, sim_process, redis_client,
                           symbols, interval_sec)
            )  # fmt: skip
    if len(rows) > 1:
        side_by_side(rows)
    rerun_extra = ""
    if (args.database_name, args.redis_url) != (BENCH_DATABASE_NAME, BENCH_REDIS_URL):
        rerun_extra = f" --database-name {args.database_name} --redis-url {args.redis_url}"
    if args.exchange_latency_ms or args.exchange_jitter_ms:
        rerun_extra += (
            f" --exchange-latency-ms {args.exchange_latency_ms:g}"
            f" --exchange-jitter-ms {args.exchange_jitter_ms:g}"
        )
    print()
    print(
        f"rerun: python bench/poller_budget.py --seconds {args.seconds:g} "
        f"--configs {','.join(configs)}{rerun_extra}"
    )
    return all(
        row.budget_share >= MIN_BUDGET_SHARE
        and row.p99_over_target <= MAX_P99_OVER_TARGET
        and row.count_429 == 0
        for row in rows
    )


def run_config(
    config: str,
    args: argparse.Namespace,
    stack: ExitStack,
    env: dict[str, str],
    sim: SimulatorHandle,
    sim_process: Process,
    redis_client: redis.Redis,
    symbols: list[str],
    interval_sec: float,
) -> Figures:
    """Start the system with `config`'s workers, warm up, measure, stop it."""
    pool, cwd = _system.config_code(config)
    prefix = f"{LOG_PREFIX}-{pool}"
    schedule_dir = stack.enter_context(tempfile.TemporaryDirectory(prefix="poller-budget-"))
    print(f"--- [{config}] starting web, workers and beat", flush=True)
    web, _ = _system.start_web(f"{prefix}-web", env, LOG_DIR, cwd)
    stack.callback(web.stop)
    workers = _system.start_workers(_system.pool_config(pool), prefix, env, LOG_DIR, cwd)
    for worker in workers:
        stack.callback(worker.stop)
    beat = _system.start_beat(f"{prefix}-beat", env, LOG_DIR, schedule_dir, cwd)
    stack.callback(beat.stop)
    system = {"web": web, **{w.name.removeprefix(f"{prefix}-"): w for w in workers}, "beat": beat}
    processes = [*system.values(), sim_process]
    worker_names = [name for name in system if name not in ("web", "beat")]

    from volspike.celery import app

    app.send_task("liquidity.universe_refresh", queue="default")
    wait_until(lambda: universe_size(redis_client) == len(symbols), 60, "the universe", processes)
    poller_status_forget(redis_client)  # the previous configuration's dispatches
    wait_until(
        lambda: poller_status(redis_client).get("n_symbols") == str(len(symbols)),
        30,
        "the poller to dispatch the whole universe",
        processes,
    )
    polling_since = time.monotonic()
    print(f"universe has {len(symbols)} members; polling; warming up", flush=True)
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

    bare_get_before = bare_get_cpu_ms(sim)
    print(f"measuring for {args.seconds:.0f} s", flush=True)
    load_before = load_average()
    result = measure(sim, redis_client, system, worker_names, args.seconds, processes)
    load = f"{load_before} -> {load_average()}"
    bare_get = (bare_get_before + bare_get_cpu_ms(sim)) / 2
    # A shard stores its batch when its window's polls are done: let the last ones land.
    time.sleep(2 * settings_window_sec() + 1)
    status_interval = poller_status(redis_client).get("interval_sec", "?")
    return report(
        config, result, sim, symbols, interval_sec, status_interval, backfill_sec, load, bare_get
    )


def settings_window_sec() -> int:
    from django.conf import settings

    return settings.OI_WINDOW_SEC


def main() -> int:
    return _system.run_main(run, parse_args())


if __name__ == "__main__":
    sys.exit(main())
