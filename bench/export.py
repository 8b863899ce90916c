"""A day of open interest exported as CSV through the API, side by side with `psql \\copy` of the
same rows in the same run.

The bench database gets one day of 400 symbols sampled every 10 s (400 x 8,640 = 3,456,000 rows),
made by one INSERT ... SELECT over generate_series (kept between runs when it already holds
exactly that day). Then, in the same run and on the same warm database:
- the API: GET /api/market/open-interest/export for the whole day through the real ASGI server
  (uvicorn with the Procfile's pool setting), read by a streaming client that counts lines and
  bytes; the web process's RSS is sampled from /proc every 20 ms, and its VmHWM (the kernel's
  peak RSS since start) read before and after;
- psql: `\\copy (the same SELECT, parameters inlined by psycopg) TO STDOUT WITH CSV HEADER`, read
  and counted the same way.
Printed: rows, MB, seconds, rows/s of each, and the web process's RSS before, peak during, and
VmHWM. The two outputs are checked to be byte for byte the same size and line count.

Rerun (uses Postgres database volspike_bench_export and Redis database 11 unless told otherwise):

    python bench/export.py
    python bench/export.py --symbols 40 --hours 2          # a quick check (28,800 rows)

The web process's log goes to test-artifacts/export-web.log.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import threading
import time
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import _system
from bench._system import PROJECT_ROOT

DATABASE_NAME = "volspike_bench_export"
REDIS_URL = "redis://127.0.0.1:6379/11"
LOG_DIR = PROJECT_ROOT / "test-artifacts"
EXPORT_PATH = "/api/market/open-interest/export"
START = datetime(2025, 12, 1, tzinfo=UTC)
READ_BYTES = 1024 * 1024


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--symbols", type=int, default=400, help="symbols (default 400)")
    parser.add_argument("--hours", type=float, default=24, help="hours of data (default 24)")
    parser.add_argument("--interval", type=int, default=10, help="seconds apart (default 10)")
    _system.isolation_args_add(parser, database_name=DATABASE_NAME, redis_url=REDIS_URL)
    return parser.parse_args()


def data_prepare(database_url: str, *, symbols: int, times: int, interval: int) -> int:
    """The day's rows in the bench database (made again unless they are there already)."""
    expected = symbols * times
    with psycopg.connect(database_url, autocommit=True) as connection:
        count, first, last = connection.execute(
            "SELECT count(*), min(ts), max(ts) FROM open_interest_snapshots"
        ).fetchone()
        wanted_last = START + timedelta(seconds=interval * (times - 1))
        if (count, first, last) == (expected, START if expected else None, wanted_last):
            print(f"data: {count:,} rows kept from an earlier run")
            return count
        began = time.monotonic()
        connection.execute("TRUNCATE open_interest_snapshots")
        connection.execute(
            _system.SNAPSHOTS_GENERATE_SQL,
            {"start": START, "step": f"{interval} seconds", "times": times, "symbols": symbols},
        )
        connection.execute("VACUUM ANALYZE open_interest_snapshots")
        print(f"data: {expected:,} rows generated in {time.monotonic() - began:.1f} s")
        return expected


class RssSampler(threading.Thread):
    """The highest RSS of one process seen every `period` seconds, from /proc/<pid>/status."""

    def __init__(self, pid: int, period: float = 0.02) -> None:
        super().__init__(daemon=True)
        self.pid, self.period, self.peak = pid, period, 0
        self._done = threading.Event()

    def run(self) -> None:
        while not self._done.is_set():
            self.peak = max(self.peak, proc_status_kib(self.pid, "VmRSS"))
            time.sleep(self.period)

    def stop(self) -> int:
        self._done.set()
        self.join()
        return self.peak


def proc_status_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def uvicorn_pid(web: _system.Process) -> int:
    """The uvicorn process itself (Process runs it directly; no shell in between)."""
    return web.pid


def count_stream(chunks) -> tuple[int, int]:
    """(lines, bytes) of a stream of byte chunks, read to the end."""
    lines = size = 0
    for chunk in chunks:
        lines += chunk.count(b"\n")
        size += len(chunk)
    return lines, size


def api_export(base_url: str, key: str, params: dict) -> tuple[int, int, float]:
    began = time.monotonic()
    with requests.get(
        f"{base_url}{EXPORT_PATH}",
        params=params,
        headers={"Authorization": f"Token {key}"},
        stream=True,
        timeout=600,
    ) as response:
        response.raise_for_status()
        lines, size = count_stream(response.iter_content(READ_BYTES))
    return lines, size, time.monotonic() - began


def psql_export(database_url: str, statement: str) -> tuple[int, int, float]:
    """psql's \\copy of `statement` (a SELECT) to its stdout, read by this process."""
    command = f"\\copy ({statement}) TO STDOUT WITH (FORMAT csv, HEADER true)"
    began = time.monotonic()
    with subprocess.Popen(
        ["psql", "--no-psqlrc", "-q", "-v", "ON_ERROR_STOP=1", database_url, "-c", command],
        stdout=subprocess.PIPE,
    ) as psql:
        lines, size = count_stream(iter(lambda: psql.stdout.read(READ_BYTES), b""))
    if psql.returncode:
        raise SystemExit(f"psql failed ({psql.returncode})")
    return lines, size, time.monotonic() - began


def run(args: argparse.Namespace, stack: ExitStack) -> bool:
    database_url, env = _system.web_only_env(
        args.database_name,
        args.redis_url,
        DB_POOL_MAX_SIZE=os.environ.get("WEB_DB_POOL_MAX_SIZE", "10"),  # the Procfile's web
    )
    _system.django_setup(env)
    from common.services import api_token_create
    from oi.selectors import snapshot_export

    times = int(args.hours * 3600 // args.interval)
    rows = data_prepare(database_url, symbols=args.symbols, times=times, interval=args.interval)
    _, key = api_token_create(name=f"bench-export-{time.time_ns()}", read_only=True)
    until = START + timedelta(seconds=args.interval * times)
    export = snapshot_export(since=START, until=until)
    with psycopg.connect(database_url) as connection:
        statement = psycopg.ClientCursor(connection).mogrify(export.select, export.params)
        connection.execute("SELECT count(*) FROM open_interest_snapshots")  # warm the cache

    web, base_url = _system.start_web("export-web", env, LOG_DIR)
    stack.callback(web.stop)
    pid = uvicorn_pid(web)
    params = {"from": START.isoformat(), "to": until.isoformat()}
    # a small export first, so the figures below are of the export, not of the first request
    api_export(base_url, key, {**params, "to": (START + timedelta(minutes=1)).isoformat()})
    rss_before = proc_status_kib(pid, "VmRSS")
    sampler = RssSampler(pid)
    sampler.start()
    api_lines, api_bytes, api_sec = api_export(base_url, key, params)
    rss_peak = sampler.stop()
    hwm = proc_status_kib(pid, "VmHWM")
    psql_lines, psql_bytes, psql_sec = psql_export(database_url, statement)

    mib = 1024 * 1024
    print(f"\n{rows:,} rows ({args.symbols} symbols x {times:,} times, {args.interval} s apart)")
    api_label, psql_label = "API (uvicorn)", "psql \\copy"
    print(f"{'':<22}{api_label:>16}{psql_label:>16}")
    print(f"{'rows':<22}{api_lines - 1:>16,}{psql_lines - 1:>16,}")
    print(f"{'MiB':<22}{api_bytes / mib:>16.1f}{psql_bytes / mib:>16.1f}")
    print(f"{'seconds':<22}{api_sec:>16.2f}{psql_sec:>16.2f}")
    print(f"{'rows/s':<22}{(api_lines - 1) / api_sec:>16,.0f}{(psql_lines - 1) / psql_sec:>16,.0f}")
    print(
        f"web process RSS: {rss_before / 1024:.1f} MiB before, peak {rss_peak / 1024:.1f} MiB "
        f"during the export (sampled every 20 ms); VmHWM {hwm / 1024:.1f} MiB"
    )
    rerun = f"python bench/export.py --symbols {args.symbols} --hours {args.hours:g}"
    print(f"rerun: {rerun} --database-name {args.database_name}")
    same = (api_lines, api_bytes) == (psql_lines, psql_bytes) and api_lines - 1 == rows
    if not same:
        print("the API's CSV and psql's differ in size or lines")
    return same


if __name__ == "__main__":
    sys.exit(_system.run_main(run, parse_args()))
