"""The system set-up the benchmarks share: an isolated Postgres database and Redis database, a
simulator of their own, the project's processes as in the Procfile (Celery workers, beat, the ASGI
server), an environment that makes exactly N symbols liquid, and CPU/RSS readers from /proc.

Isolation: each benchmark has a default database name and Redis URL of its own; both can be
overridden by the environment (BENCH_DATABASE_NAME, BENCH_REDIS_URL) or by the command line
(--database-name, --redis-url, see `isolation_args_add`), so that concurrent runs on one machine
do not share state. The database is created if missing (the role has CREATEDB) and migrated.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from contextlib import ExitStack, suppress
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import redis
import requests

PROJECT_ROOT = Path(__file__).resolve().parents[1]
if str(PROJECT_ROOT) not in sys.path:
    sys.path.insert(0, str(PROJECT_ROOT))

from tests.fixtures.processes import (  # noqa: E402
    celery_args_renamed,
    free_port,
    proc_stat_fields,
    process_tree_pids,
    procfile_celery_args,
)
from tests.fixtures.simulator import SimulatorHandle  # noqa: E402

DEFAULT_DATABASE_URL = "postgres://volspike:volspike@127.0.0.1:5432/volspike"
# Settings inherited from the caller's shell that would change the system under test.
OVERRIDDEN_SETTING_PREFIXES = ("OI_", "BINANCE_", "LIQUIDITY_", "CELERY_", "EXCHANGE_INFO_", "SIM_")

# Thresholds above every volume the simulator makes up, so only the volumes set here count.
LIQUIDITY_ENTER = "100000000"
LIQUIDITY_EXIT = "50000000"
LIQUID_QUOTE_VOLUME = "900000000"
ILLIQUID_QUOTE_VOLUME = "1000"


def run_main(run: Callable[[argparse.Namespace, ExitStack], bool], args: argparse.Namespace) -> int:
    """Run a bench whose processes `run` registers on the stack: they are stopped on return,
    on Ctrl-C and on SIGTERM. 0 when `run` reports its targets met, else 1 (130 if interrupted)."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # clean up on kill, as on Ctrl-C
    with ExitStack() as stack:
        try:
            return 0 if run(args, stack) else 1
        except KeyboardInterrupt:
            print("interrupted; stopping processes")
            return 130


def now_ms() -> int:
    return time.time_ns() // 1_000_000


# --- isolation: database and Redis ---------------------------------------------------------------


def isolation_args_add(
    parser: argparse.ArgumentParser, *, database_name: str, redis_url: str
) -> None:
    """--database-name and --redis-url, defaulting to $BENCH_DATABASE_NAME / $BENCH_REDIS_URL,
    else to the benchmark's own defaults."""
    parser.add_argument(
        "--database-name",
        default=os.environ.get("BENCH_DATABASE_NAME", database_name),
        help=f"Postgres database of this run, created if missing and migrated "
        f"(default $BENCH_DATABASE_NAME or {database_name})",
    )
    parser.add_argument(
        "--redis-url",
        default=os.environ.get("BENCH_REDIS_URL", redis_url),
        help=f"Redis database of this run, flushed at start (default $BENCH_REDIS_URL or "
        f"{redis_url})",
    )


def maintenance_database_url() -> str:
    return os.environ.get("DATABASE_URL", DEFAULT_DATABASE_URL)


def database_url_for(name: str) -> str:
    """The project's DATABASE_URL (host, role, password) with another database name."""
    base = urlsplit(maintenance_database_url())
    return urlunsplit(base._replace(path=f"/{name}"))


def database_create_if_missing(name: str) -> None:
    """Create the bench database (the role has CREATEDB), connecting to the project's own."""
    with psycopg.connect(maintenance_database_url(), autocommit=True) as connection:
        exists = connection.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", [name]
        ).fetchone()
        if not exists:
            connection.execute(f'CREATE DATABASE "{name}"')
            print(f"created database {name}")


def redis_flush(url: str) -> redis.Redis:
    """A client on the run's own Redis database, emptied."""
    client = redis.Redis.from_url(url, decode_responses=True)
    client.flushdb()
    return client


def web_only_env(database_name: str, redis_url: str, **extra: str) -> tuple[str, dict[str, str]]:
    """The run's database (created if missing) and emptied Redis for a bench of the web process
    alone (no worker or beat, so no exchange is called); its database URL and environment."""
    database_create_if_missing(database_name)
    redis_flush(redis_url)
    database_url = database_url_for(database_name)
    env = process_env(
        simulator_url="http://127.0.0.1:9",  # never called: no worker or beat runs
        database_url=database_url,
        redis_url=redis_url,
        DJANGO_DEBUG="false",
        **extra,
    )
    return database_url, env


def process_env(
    *, simulator_url: str, database_url: str, redis_url: str, **extra: str
) -> dict[str, str]:
    """The environment of every project process (and of this one, for Django and Celery):
    the caller's, without settings that would change the system under test, plus `extra`."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(OVERRIDDEN_SETTING_PREFIXES)
    }
    env.update(
        DJANGO_SETTINGS_MODULE="volspike.settings.local",
        DJANGO_ALLOWED_HOSTS="127.0.0.1,localhost",
        DATABASE_URL=database_url,
        REDIS_URL=redis_url,
        CELERY_BROKER_URL=redis_url,
        BINANCE_BASE_URL=simulator_url,
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


def liquidity_env() -> dict[str, str]:
    """Thresholds that leave the liquid set to `make_exactly_liquid`."""
    return {
        "LIQUIDITY_ENTER_QUOTE_VOLUME": LIQUIDITY_ENTER,
        "LIQUIDITY_EXIT_QUOTE_VOLUME": LIQUIDITY_EXIT,
    }


def django_setup(env: dict[str, str], *, migrate: bool = True, flush: bool = False) -> None:
    """Configure Django in this process with the processes' environment; migrate (and flush)."""
    os.environ.clear()
    os.environ.update(env)
    import django
    from django.core.management import call_command

    django.setup()
    if migrate:
        call_command("migrate", interactive=False, verbosity=0)
    if flush:
        call_command("flush", interactive=False, verbosity=0)


# --- processes -----------------------------------------------------------------------------------


class Process:
    """A subprocess logging to <log_dir>/<name>.log; stop() ends it and then its descendants."""

    def __init__(
        self,
        name: str,
        args: list[str],
        env: dict[str, str],
        log_dir: Path,
        cwd: Path | None = None,
    ) -> None:
        """`cwd`: the code to run (default this checkout; a bench may run another ref's). A
        checkout with a `.venv` of its own runs on it (its requirements, not this one's)."""
        own_python = cwd / ".venv" / "bin" / "python" if cwd else None
        if own_python and own_python.exists() and args and args[0] == sys.executable:
            args = [str(own_python), *args[1:]]
        log_dir.mkdir(parents=True, exist_ok=True)
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        self._log = self.log_path.open("wb")
        self.popen = subprocess.Popen(
            args, cwd=cwd or PROJECT_ROOT, env=env, stdout=self._log, stderr=subprocess.STDOUT
        )

    @property
    def pid(self) -> int:
        return self.popen.pid

    def check_alive(self) -> None:
        if self.popen.poll() is not None:
            raise RuntimeError(f"{self.name} exited ({self.popen.returncode}); see {self.log_path}")

    def wait_for_log(self, text: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.check_alive()
            if text in self.log_path.read_text(errors="replace"):
                return
            time.sleep(0.1)
        raise TimeoutError(f"{self.name} did not log {text!r} in {timeout}s; see {self.log_path}")

    def wait_for_http(self, url: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.check_alive()
            with suppress(requests.ConnectionError, requests.Timeout):  # not up yet, or busy
                requests.get(url, timeout=5)
                return
            time.sleep(0.1)
        raise TimeoutError(f"{self.name} did not answer {url} in {timeout}s; see {self.log_path}")

    def stop(self) -> None:
        descendants = process_tree_pids(self.popen.pid)[1:]
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(15)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()
        for pid in descendants:  # e.g. Celery pool children left behind
            with suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self._log.close()


def celery_worker_args(
    name: str, queues: str, concurrency: int, pool: str = "prefork"
) -> list[str]:
    """A worker command line for `queues` with `pool` and `concurrency`."""
    return [sys.executable, "-m", "celery", "-A", "volspike", "worker", "-Q", queues,
            "--pool", pool, "--concurrency", str(concurrency), "--without-gossip",
            "--without-mingle", "-l", "INFO", "-n", f"{name}@%h"]  # fmt: skip


@dataclass(frozen=True)
class WorkerSpec:
    """One Celery worker process of a pool configuration: its Procfile name and command line
    (the arguments after `celery`)."""

    name: str
    celery_args: tuple[str, ...]

    def args(self, node_prefix: str) -> list[str]:
        node = f"{node_prefix}-{self.name}@%h"
        return [sys.executable, "-m", "celery", *celery_args_renamed(list(self.celery_args), node)]


def _spec(name: str, queues: str, pool: str, concurrency: int) -> WorkerSpec:
    return WorkerSpec(name, tuple(celery_worker_args(name, queues, concurrency, pool)[3:]))


def procfile_workers() -> tuple[WorkerSpec, ...]:
    """The Celery workers of the Procfile as it is (the `worker` line, and `poller` if any)."""
    specs = []
    for name in ("worker", "poller"):
        with suppress(KeyError):
            specs.append(WorkerSpec(name, tuple(procfile_celery_args(name))))
    return tuple(specs)


# Worker pool configurations the system benches can run side by side (--configs).
POOL_CONFIGS: dict[str, Callable[[], tuple[WorkerSpec, ...]]] = {
    # Before issue 14: two prefork trees (2 + 4 children), every child with Django loaded.
    "prefork": lambda: (
        _spec("worker", "default,oi_backfill", "prefork", 2),
        _spec("poller", "oi_poll", "prefork", 4),
    ),
    # The same two workers on thread pools: one process each.
    "threads": lambda: (
        _spec("worker", "default,oi_backfill", "threads", 4),
        _spec("poller", "oi_poll", "threads", 8),
    ),
    # One process on a thread pool consuming every queue.
    "single": lambda: (_spec("worker", "oi_poll,default,oi_backfill", "threads", 12),),
    # Whatever the Procfile runs now.
    "procfile": procfile_workers,
}


def config_code(config: str) -> tuple[str, Path | None]:
    """A configuration's pool and code: `procfile` runs this checkout's code; `procfile@/path`
    another checkout's (e.g. the code before a change, exported with `git archive`), so that
    both run on one simulator, database and backfilled ring, back to back:
    `--configs procfile@/tmp/old,procfile,procfile@/tmp/old,procfile`."""
    pool, _, path = config.partition("@")
    return pool, (Path(path) if path else None)


def config_label(config: str) -> str:
    """The configuration as a file-name part: `procfile@/tmp/old` is `procfile-old`."""
    pool, cwd = config_code(config)
    return f"{pool}-{cwd.name}" if cwd else pool


def pool_config(name: str) -> tuple[WorkerSpec, ...]:
    if name not in POOL_CONFIGS:
        raise SystemExit(f"unknown pool configuration {name!r}; known: {', '.join(POOL_CONFIGS)}")
    return POOL_CONFIGS[name]()


def celery_beat_args(schedule_dir: str) -> list[str]:
    return [sys.executable, "-m", "celery", "-A", "volspike", "beat", "-l", "INFO",
            "--schedule", str(Path(schedule_dir) / "celerybeat-schedule")]  # fmt: skip


def uvicorn_args(port: int) -> list[str]:
    """The ASGI server as in the Procfile."""
    return [sys.executable, "-m", "uvicorn", "volspike.asgi:application",
            "--host", "127.0.0.1", "--port", str(port), "--no-access-log",
            "--ws-max-size", os.environ.get("WS_MAX_MESSAGE_BYTES", "65536")]  # fmt: skip


def start_worker(
    name: str, queues: str, concurrency: int, env: dict[str, str], log_dir: Path
) -> Process:
    worker = Process(name, celery_worker_args(name, queues, concurrency), env, log_dir)
    worker.wait_for_log("ready.", timeout=60)
    return worker


def start_workers(
    specs: tuple[WorkerSpec, ...],
    prefix: str,
    env: dict[str, str],
    log_dir: Path,
    cwd: Path | None = None,
) -> list[Process]:
    """Start the workers of a pool configuration together (`cwd`: another checkout's code);
    wait until each is ready."""
    workers = [
        Process(f"{prefix}-{spec.name}", spec.args(prefix), env, log_dir, cwd) for spec in specs
    ]
    try:
        for worker in workers:
            worker.wait_for_log("ready.", timeout=60)
    except Exception:
        for worker in workers:
            worker.stop()
        raise
    return workers


def start_beat(
    name: str, env: dict[str, str], log_dir: Path, schedule_dir: str, cwd: Path | None = None
) -> Process:
    beat = Process(name, celery_beat_args(schedule_dir), env, log_dir, cwd)
    try:
        beat.wait_for_log("beat: Starting", timeout=60)
    except Exception:
        beat.stop()  # not yet on the caller's stack
        raise
    return beat


def start_web(
    name: str, env: dict[str, str], log_dir: Path, cwd: Path | None = None
) -> tuple[Process, str]:
    """The ASGI server (uvicorn, as in the Procfile) on a free port; returns it and its URL."""
    port = free_port()
    web = Process(name, uvicorn_args(port), env, log_dir, cwd)
    base_url = f"http://127.0.0.1:{port}"
    try:
        web.wait_for_http(f"{base_url}/health")
    except Exception:
        web.stop()  # not yet on the caller's stack
        raise
    return web, base_url


def start_simulator(
    name: str, sim_args: tuple[str, ...], log_dir: Path
) -> tuple[SimulatorHandle, Process]:
    """A simulator of the benchmark's own on a free port; stop the Process (and close the
    handle's session) at the end."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SIM_")}
    process = Process(
        name,
        [sys.executable, "-m", "simulator", "--host", "127.0.0.1", "--port", str(port),
         *sim_args],
        env,
        log_dir,
    )  # fmt: skip
    sim = SimulatorHandle("127.0.0.1", port)
    try:
        process.wait_for_http(f"{sim.base_url}/fapi/v1/ping")
        # Its first symbol listing builds the market's state (10 s on a busy 2-core machine,
        # beyond the control API's timeout); later ones take milliseconds.
        sim.get("/sim/symbols", timeout=120).raise_for_status()
    except Exception:
        process.stop()
        raise
    return sim, process


# --- making exactly N symbols liquid -------------------------------------------------------------


def usdt_perpetuals_trading(sim: SimulatorHandle) -> list[str]:
    info = sim.get("/fapi/v1/exchangeInfo").json()
    return sorted(
        entry["symbol"]
        for entry in info["symbols"]
        if entry["contractType"] == "PERPETUAL"
        and entry["quoteAsset"] == "USDT"
        and entry["status"] == "TRADING"
    )


def settable(symbol: str) -> bool:
    """The control API cannot address non-ASCII names (it does not percent-decode paths)."""
    return symbol.isascii()


def make_exactly_liquid(sim: SimulatorHandle, n_liquid: int) -> list[str]:
    """Give n_liquid TRADING USDT perpetuals a 24h volume above ENTER and every other symbol one
    below EXIT (with `liquidity_env()` in the processes); symbols the control API cannot address
    must already be below ENTER."""
    candidates = [symbol for symbol in usdt_perpetuals_trading(sim) if settable(symbol)]
    if len(candidates) < n_liquid:
        raise SystemExit(f"the simulator has only {len(candidates)} TRADING USDT perpetuals")
    liquid = candidates[:n_liquid]
    liquid_set = set(liquid)
    for entry in sim.control("GET", "/sim/symbols"):
        symbol = entry["symbol"]
        if not settable(symbol):
            if float(entry["quoteVolume"]) >= float(LIQUIDITY_ENTER):
                raise SystemExit(f"{symbol} is liquid and cannot be changed; raise LIQUIDITY_ENTER")
            continue
        volume = LIQUID_QUOTE_VOLUME if symbol in liquid_set else ILLIQUID_QUOTE_VOLUME
        sim.set_symbol(symbol, quoteVolume=volume)
    return liquid


# --- /proc: CPU time, RSS and PSS of a process tree ---------------------------------------------------

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE_BYTES = os.sysconf("SC_PAGE_SIZE")


def tree_cpu_seconds(root_pid: int) -> float:
    """utime+stime of every live process in the tree, plus what they reaped from exited children."""
    ticks = 0
    for pid in process_tree_pids(root_pid):
        if fields := proc_stat_fields(pid):
            ticks += sum(int(fields[index]) for index in (11, 12, 13, 14))  # fields 14..17
    return ticks / CLOCK_TICKS


def tree_rss_bytes(root_pid: int) -> int:
    """Sum of the RSS of every process in the tree (shared pages counted per process)."""
    total_pages = 0
    for pid in process_tree_pids(root_pid):
        if fields := proc_stat_fields(pid):
            total_pages += int(fields[21])  # field 24: rss in pages
    return total_pages * PAGE_BYTES


def pss_bytes(pid: int) -> int:
    """The proportional set size of one process (/proc/<pid>/smaps_rollup): its private pages
    plus its share of each page it shares, so a sum over processes counts every page once."""
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def tree_pss_bytes(root_pid: int) -> int:
    """Sum of the PSS of every process in the tree."""
    return sum(pss_bytes(pid) for pid in process_tree_pids(root_pid))


# Realtime snapshot rows for the benches that read stored history (export, backtest): one row per
# symbol (B000USDT...) and time, time-ordered as the poller writes them, values of realistic size.
# Parameters: start (timestamptz), step (interval text), times, symbols.
SNAPSHOTS_GENERATE_SQL = """
INSERT INTO open_interest_snapshots (symbol, ts, open_interest, open_interest_usd, mark_price,
                                     source)
SELECT 'B' || lpad(s::text, 3, '0') || 'USDT', %(start)s + t * %(step)s::interval, oi,
       round(oi * mark, 12), mark, 'realtime'
FROM generate_series(0, %(times)s - 1) AS t
CROSS JOIN generate_series(0, %(symbols)s - 1) AS s
CROSS JOIN LATERAL (SELECT round((1000000 + s * 1000 + t * 0.37)::numeric, 3) AS oi,
                           round((1 + s * 0.25 + (t %% 100) * 0.0001)::numeric, 6) AS mark) AS v
ORDER BY t, s
"""
