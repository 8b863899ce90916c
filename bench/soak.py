"""Soak: the whole system at the full budget with 400 liquid symbols for 30 minutes.

Runs the processes of the Procfile as real subprocesses against a simulator of its own (650
symbols, seed 4242, 4 random OI events per symbol per day as in the Procfile, so alerts happen):
the ASGI server (uvicorn), the Celery workers as the Procfile runs them (`worker` for
default,oi_backfill and `poller` for oi_poll, each one process on a thread pool) and one beat.
Exactly --symbols TRADING USDT perpetuals are made liquid (bench/_system.py), the budget keeps
its default (OI_MAX_REQ_PER_MIN 2000).

Two settings differ from production, so that a 30-minute run says something about the steady
state: OI_RING_WINDOW_SEC=600 (the rings keep 10 minutes instead of 3 hours, so they are full,
and Redis memory should stop growing, after 10 minutes; the second half of the run is then all
steady state), and, to keep alerts possible with that window, OI_ALERT_W_LOW_SEC=60 and
OI_ALERT_W_HIGH_SEC=540 (the baseline is the samples 1..9 minutes old). DJANGO_DEBUG is off,
as in production (with it on, Django keeps the last 9,000 queries of every connection).

Load on the web process: one WebSocket client subscribed to the whole feed (every oi.update batch
and every alert), and once per poll interval a few HTTP reads of the API (poller status,
screener, the latest samples of one symbol, the alert list, /metrics).

Every --every seconds it prints one row: elapsed time, RSS of each process tree (worker, poller,
web, beat), Redis used_memory and key count, the snapshots and alerts tables' total size (with
indexes) and row counts, realtime samples stored since polling began vs expected (N symbols x
elapsed / interval), and the simulator's 429/418 counts. At the end: the growth per hour of each
figure from a least-squares line over the second half of the run, and a verdict: RSS, Redis
memory and Redis keys should be flat; the snapshots table grows by design (and the alerts table
with the events).

Rerun (uses Postgres database volspike_soak and Redis database 14 unless told otherwise):

    python bench/soak.py --minutes 30
    python bench/soak.py --minutes 30 --database-name volspike_bench_h8 \
        --redis-url redis://127.0.0.1:6379/11

Process logs go to test-artifacts/soak-*.log.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import redis
import requests
from websockets.sync.client import connect

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import _system

LOG_DIR = _system.PROJECT_ROOT / "test-artifacts"
LOG_PREFIX = "soak"
SIM_ARGS = ("--seed", "4242", "--symbols", "650", "--event-rate-per-day", "4")
MIB = 2**20
FLAT_SHARE_PER_HOUR = 0.05  # "flat": the fitted growth is under 5% of the mean per hour ...


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=30, help="length (default 30)")
    parser.add_argument("--every", type=float, default=60, help="seconds between rows (60)")
    parser.add_argument("--symbols", type=int, default=400, help="liquid symbols (default 400)")
    parser.add_argument(
        "--ring-window-sec", type=int, default=600, help="OI_RING_WINDOW_SEC (default 600)"
    )
    _system.isolation_args_add(
        parser, database_name="volspike_soak", redis_url="redis://127.0.0.1:6379/14"
    )
    return parser.parse_args()


# --- load on the web process ---------------------------------------------------------------------


class FeedClient(threading.Thread):
    """A WebSocket client subscribed to the whole feed; counts frames, reconnects if dropped."""

    def __init__(self, ws_url: str) -> None:
        super().__init__(name="soak-feed", daemon=True)
        self.ws_url = ws_url
        self.frames: dict[str, int] = {}
        self.reconnects = 0
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.is_set():
            try:
                with connect(self.ws_url, max_size=None, open_timeout=10) as ws:
                    while not self.stopping.is_set():
                        try:
                            raw = ws.recv(timeout=0.5)
                        except TimeoutError:
                            continue
                        kind = json.loads(raw).get("type", "?")
                        self.frames[kind] = self.frames.get(kind, 0) + 1
            except Exception:  # noqa: BLE001 - counted, and connected again
                self.reconnects += 1
                self.stopping.wait(1)

    def stop(self) -> None:
        self.stopping.set()
        self.join(5)


class ApiReader(threading.Thread):
    """A few HTTP reads of the API once per poll interval."""

    def __init__(self, base_url: str, symbol: str, interval_sec: float) -> None:
        super().__init__(name="soak-api", daemon=True)
        self.paths = [
            "/api/market/open-interest/poller",
            "/api/market/open-interest/screener",
            f"/api/market/open-interest/samples?symbol={symbol}&limit=100",
            "/api/open-interest-alerts",
            "/metrics",
        ]
        self.base_url = base_url
        self.interval_sec = interval_sec
        self.session = requests.Session()
        self.ok = 0
        self.failed: dict[str, int] = {}
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.wait(self.interval_sec):
            for path in self.paths:
                try:
                    status = self.session.get(self.base_url + path, timeout=10).status_code
                except requests.RequestException as exc:
                    status = type(exc).__name__
                if status == 200:
                    self.ok += 1
                else:
                    key = f"{path.split('?')[0]} {status}"
                    self.failed[key] = self.failed.get(key, 0) + 1

    def stop(self) -> None:
        self.stopping.set()
        self.join(15)
        self.session.close()


# --- one row of figures --------------------------------------------------------------------------


@dataclass
class Row:
    elapsed_s: float
    rss: dict[str, int]
    redis_used: int
    redis_keys: int
    snapshots_bytes: int
    snapshots_rows: int
    alerts_bytes: int
    alerts_rows: int
    stored: int
    expected: float
    count_429: int
    count_418: int

    def series(self) -> dict[str, float]:
        figures = {f"{name} RSS MiB": value / MIB for name, value in self.rss.items()}
        figures.update(
            {
                "Redis used_memory MiB": self.redis_used / MIB,
                "Redis keys": self.redis_keys,
                "snapshots table MiB": self.snapshots_bytes / MIB,
                "snapshots rows": self.snapshots_rows,
                "alerts table MiB": self.alerts_bytes / MIB,
                "alerts rows": self.alerts_rows,
            }
        )
        return figures


HEADER = (
    f"{'elapsed':>7} {'worker':>7} {'poller':>7} {'web':>6} {'beat':>6} {'redisMiB':>8} "
    f"{'keys':>6} {'snapMiB':>8} {'snapRows':>9} {'alrtMiB':>7} {'alerts':>6} "
    f"{'stored/expected':>20} {'429':>4} {'418':>4}"
)


def row_format(row: Row) -> str:
    rss = [row.rss[name] / MIB for name in ("worker", "poller", "web", "beat")]
    share = row.stored / row.expected if row.expected else 0.0
    stored = f"{row.stored}/{row.expected:.0f} {share:.1%}"
    return (
        f"{row.elapsed_s / 60:6.1f}m {rss[0]:6.0f}M {rss[1]:6.0f}M {rss[2]:5.0f}M {rss[3]:5.0f}M "
        f"{row.redis_used / MIB:8.1f} {row.redis_keys:6d} {row.snapshots_bytes / MIB:8.1f} "
        f"{row.snapshots_rows:9d} {row.alerts_bytes / MIB:7.2f} {row.alerts_rows:6d} "
        f"{stored:>20} {row.count_429:4d} {row.count_418:4d}"
    )


def table_figures(table: str) -> tuple[int, int]:
    from django.db import connection

    with connection.cursor() as cursor:
        # table names are this module's constants
        cursor.execute(f"SELECT pg_total_relation_size('{table}'), count(*) FROM {table}")  # noqa: S608
        size, rows = cursor.fetchone()
    return int(size), int(rows)


def realtime_stored_since(start_ms: int) -> int:
    from datetime import UTC, datetime

    from oi.models import OpenInterestSnapshot

    return OpenInterestSnapshot.objects.filter(
        source="realtime", ts__gte=datetime.fromtimestamp(start_ms / 1000, tz=UTC)
    ).count()


def exchange_rate_limits(sim) -> tuple[int, int]:
    ips = sim.stats()["ips"].values()
    return sum(i["count_429"] for i in ips), sum(i["count_418"] for i in ips)


def row_read(
    started: float,
    polling_since_ms: int,
    interval_sec: float,
    n_symbols: int,
    processes: dict[str, _system.Process],
    redis_client: redis.Redis,
    sim,
) -> Row:
    snapshots = table_figures("open_interest_snapshots")
    alerts = table_figures("open_interest_alerts")
    count_429, count_418 = exchange_rate_limits(sim)
    return Row(
        elapsed_s=time.monotonic() - started,
        rss={name: _system.tree_rss_bytes(p.pid) for name, p in processes.items()},
        redis_used=int(redis_client.info("memory")["used_memory"]),
        redis_keys=int(redis_client.dbsize()),
        snapshots_bytes=snapshots[0],
        snapshots_rows=snapshots[1],
        alerts_bytes=alerts[0],
        alerts_rows=alerts[1],
        stored=realtime_stored_since(polling_since_ms),
        expected=n_symbols * (_system.now_ms() - polling_since_ms) / (interval_sec * 1000),
        count_429=count_429,
        count_418=count_418,
    )


# --- summary -------------------------------------------------------------------------------------


def line_fit(points: list[tuple[float, float]]) -> tuple[float, float]:
    """Least-squares line of (seconds, value) points: its slope per hour, and the standard
    deviation of the points around it (the noise)."""
    n = len(points)
    if n < 3:
        return float("nan"), float("nan")
    mean_x = sum(x for x, _ in points) / n
    mean_y = sum(y for _, y in points) / n
    sxx = sum((x - mean_x) ** 2 for x, _ in points)
    slope = sum((x - mean_x) * (y - mean_y) for x, y in points) / sxx
    residuals = [y - (mean_y + slope * (x - mean_x)) for x, y in points]
    noise = (sum(r * r for r in residuals) / (n - 2)) ** 0.5
    return slope * 3600, noise


GROWS_BY_DESIGN = ("snapshots", "alerts")


def flat_verdict(growth_per_hour: float, noise: float, mean: float, span_h: float) -> str:
    """Flat: the fitted growth is under FLAT_SHARE_PER_HOUR of the mean per hour, or what the
    line rises over the span is within twice the noise around it (a wobble, not a trend)."""
    if mean and abs(growth_per_hour / mean) < FLAT_SHARE_PER_HOUR:
        return "flat (should be flat)"
    if abs(growth_per_hour * span_h) <= 2 * noise:
        return "flat within its noise (should be flat)"
    return "NOT FLAT (should be flat)"


def summary(rows: list[Row], ring_window_sec: int) -> list[str]:
    total_s = rows[-1].elapsed_s
    second_half = [row for row in rows if row.elapsed_s >= total_s / 2]
    span_h = (second_half[-1].elapsed_s - second_half[0].elapsed_s) / 3600
    lines = [
        f"growth per hour, least-squares line over the second half of the run "
        f"({second_half[0].elapsed_s / 60:.1f}..{total_s / 60:.1f} min, {len(second_half)} rows; "
        f"rings full after OI_RING_WINDOW_SEC = {ring_window_sec} s):"
    ]
    for name in second_half[0].series():
        points = [(row.elapsed_s, row.series()[name]) for row in second_half]
        growth, noise = line_fit(points)
        values = [y for _, y in points]
        mean = sum(values) / len(values)
        share = growth / mean if mean else 0.0
        if name.split()[0] in GROWS_BY_DESIGN:
            verdict = "grows by design"
        else:
            verdict = flat_verdict(growth, noise, mean, span_h)
        lines.append(
            f"  {name:<22} {growth:+12.1f}/h ({share:+.1%} of its mean {mean:.1f} per hour; "
            f"{min(values):.1f}..{max(values):.1f}, noise {noise:.2f})  {verdict}"
        )
    return lines


# --- main ----------------------------------------------------------------------------------------


def wait_until(condition, timeout: float, what: str, processes) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for process in processes:
            process.check_alive()
        if condition():
            return
        time.sleep(0.5)
    raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")


def run(args: argparse.Namespace, stack: ExitStack) -> bool:
    _system.database_create_if_missing(args.database_name)
    redis_client = _system.redis_flush(args.redis_url)
    stack.callback(redis_client.close)
    sim, sim_process = _system.start_simulator(f"{LOG_PREFIX}-simulator", SIM_ARGS, LOG_DIR)
    stack.callback(sim_process.stop)
    stack.callback(sim.session.close)
    symbols = _system.make_exactly_liquid(sim, args.symbols)

    env = _system.process_env(
        simulator_url=sim.base_url,
        database_url=_system.database_url_for(args.database_name),
        redis_url=args.redis_url,
        **_system.liquidity_env(),
        OI_RING_WINDOW_SEC=str(args.ring_window_sec),
        OI_ALERT_W_LOW_SEC="60",
        OI_ALERT_W_HIGH_SEC=str(min(540, args.ring_window_sec - 60)),
        # As in production: with DEBUG on, Django keeps each connection's last 9,000 queries,
        # which would show up here as memory growth of the processes.
        DJANGO_DEBUG="False",
        LOG_LEVEL="INFO",
    )
    _system.django_setup(env, migrate=True, flush=True)
    from liquidity.services import REDIS_UNIVERSE_KEY
    from oi.keys import STATUS_KEY

    schedule_dir = stack.enter_context(tempfile.TemporaryDirectory(prefix="soak-beat-"))
    processes: dict[str, _system.Process] = {}
    web, base_url = _system.start_web(f"{LOG_PREFIX}-web", env, LOG_DIR)
    stack.callback(web.stop)
    # The Celery workers as the Procfile runs them (bench/_system.py procfile_workers).
    for worker in _system.start_workers(_system.procfile_workers(), LOG_PREFIX, env, LOG_DIR):
        processes[worker.name.removeprefix(f"{LOG_PREFIX}-")] = worker
        stack.callback(worker.stop)
    processes["web"] = web
    processes["beat"] = _system.start_beat(f"{LOG_PREFIX}-beat", env, LOG_DIR, schedule_dir)
    stack.callback(processes["beat"].stop)
    everything = [*processes.values(), sim_process]

    from volspike.celery import app

    app.send_task("liquidity.universe_refresh", queue="default")
    wait_until(
        lambda: redis_client.scard(REDIS_UNIVERSE_KEY) == len(symbols), 90, "the universe",
        everything,
    )  # fmt: skip
    wait_until(
        lambda: redis_client.hget(STATUS_KEY, "n_symbols") == str(len(symbols)),
        30,
        "the poller to dispatch the whole universe",
        everything,
    )
    polling_since_ms = _system.now_ms()
    interval_sec = float(redis_client.hget(STATUS_KEY, "interval_sec"))
    feed = FeedClient(base_url.replace("http://", "ws://") + "/ws/open-interest/")
    feed.start()
    stack.callback(feed.stop)
    reader = ApiReader(base_url, symbols[0], interval_sec)
    reader.start()
    stack.callback(reader.stop)
    print(
        f"soak: {len(symbols)} liquid symbols, interval {interval_sec:g} s, "
        f"OI_RING_WINDOW_SEC={args.ring_window_sec}, {args.minutes:g} min, a row every "
        f"{args.every:g} s; simulator {sim.base_url}, web {base_url}; database "
        f"{args.database_name}, Redis {args.redis_url}",
        flush=True,
    )
    print("RSS: sum over each process tree (shared pages counted per process)", flush=True)
    print(HEADER, flush=True)

    started = time.monotonic()
    end = started + args.minutes * 60
    rows: list[Row] = []
    next_row = started + args.every
    while True:
        for process in everything:
            process.check_alive()
        now = time.monotonic()
        if now >= next_row or now >= end:
            rows.append(
                row_read(
                    started, polling_since_ms, interval_sec, len(symbols), processes,
                    redis_client, sim,
                )
            )  # fmt: skip
            print(row_format(rows[-1]), flush=True)
            next_row += args.every
        if now >= end:
            break
        time.sleep(max(0.0, min(1.0, next_row - time.monotonic(), end - time.monotonic())))

    print()
    lines = summary(rows, args.ring_window_sec)
    last = rows[-1]
    lines.append(
        f"samples stored {last.stored} of {last.expected:.0f} expected "
        f"({last.stored / last.expected:.1%}); 429s {last.count_429}, 418s {last.count_418}"
    )
    lines.append(
        f"WebSocket client: frames {dict(sorted(feed.frames.items()))}, reconnects "
        f"{feed.reconnects}; API reads: {reader.ok} OK, failed {reader.failed or 0}"
    )
    lines.append(
        f"rerun: python bench/soak.py --minutes {args.minutes:g} --every {args.every:g} "
        f"--symbols {args.symbols} --ring-window-sec {args.ring_window_sec} "
        f"--database-name {args.database_name} --redis-url {args.redis_url}"
    )
    print("\n".join(lines), flush=True)
    return not any("NOT FLAT" in line for line in lines)


def main() -> int:
    return _system.run_main(run, parse_args())


if __name__ == "__main__":
    sys.exit(main())
