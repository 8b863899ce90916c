"""Scale-out across egress IPs: samples/min and the per-symbol interval with k = 1, 2, 3 poller
hosts, each with its own IP, in one run; then re-planning (a host leaving, the universe growing)
and an overload run. Needs root: the hosts are Linux network namespaces (tests/fixtures/netns.py).

Runs as in production: a simulator of its own listening on the namespaces' bridge, in the hub
namespace (it counts request weight per source IP, as Binance does), the Procfile's `worker` and
beat on this host (reaching the simulator through a relay), and one Procfile `poller` worker per
namespace (`ip netns exec`), each with its own BINANCE_EGRESS_ID and budget (OI_MAX_REQ_PER_MIN,
and the same "poller" consumer budget), reaching Redis and Postgres over the network (socat relays
on the bridge address). Mark prices come from REST premiumIndex
(STREAMS_ENABLED=false). Its own Postgres database (volspike_bench_scale) and Redis database 7
(--database-name / --redis-url or $BENCH_DATABASE_NAME / $BENCH_REDIS_URL choose others).

Phases, each measured from the simulator's arrival times of openInterest requests:

1. k = 1, 2, 3 live hosts (each started in turn): samples/min and the interval p50/p99 (gaps
   between a symbol's requests), each as a ratio to k = 1; goal: samples/min ≥ 0.97 × k times
   k = 1's, interval p99 ≤ 1.1 × the planned interval; every IP's most weight in any sliding
   minute against its budget; 429s (goal 0).
2. Re-planning: host h2 leaves cleanly (SIGTERM: its heartbeat is removed), then the universe
   grows by --grow symbols (the liquidity job picks them up), then h2 joins again. Every gap of
   every symbol over this phase as a ratio to the longer of the planned intervals in force at its
   two ends: p99 and max (goal p99 ≤ 1.1).
3. Overload: one host whose budget cannot poll the universe within OI_MAX_INTERVAL_SEC (20 s):
   the interval stretches (stated in the poller status as overloaded), and every symbol is still
   sampled about once per stretched interval (none without samples).

Rerun (as root):

    .venv/bin/python bench/scale_out.py

Process logs go to test-artifacts/bench-scale-out/.
"""

from __future__ import annotations

import argparse
import itertools
import json
import signal
import statistics
import sys
import threading
import time
from contextlib import ExitStack
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._system import (
    PROJECT_ROOT,
    Process,
    celery_beat_args,
    database_create_if_missing,
    database_url_for,
    django_setup,
    isolation_args_add,
    liquidity_env,
    make_exactly_liquid,
    now_ms,
    process_env,
    redis_flush,
    run_main,
)
from tests.fixtures.netns import NetnsHosts
from tests.fixtures.processes import celery_args_renamed, free_port, procfile_celery_args
from tests.fixtures.simulator import SimulatorHandle

LOG_DIR = PROJECT_ROOT / "test-artifacts" / "bench-scale-out"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


class Run:
    def __init__(self, args, stack: ExitStack) -> None:
        self.args, self.stack = args, stack
        self.hosts = NetnsHosts(3)
        stack.callback(self.hosts.close)
        port = free_port()
        sim_proc = Process(
            "simulator",
            self.hosts.hub_exec_args(
                [sys.executable, "-m", "simulator", "--host", self.hosts.gateway,
                 "--port", str(port), "--seed", "4242", "--symbols", "300",
                 "--event-rate-per-day", "0"]
            ),
            {}, LOG_DIR,
        )  # fmt: skip
        stack.callback(sim_proc.stop)
        # in the hub, where the hosts reach it from their own IPs; this machine through a relay
        self.sim_url_for_hosts = f"http://{self.hosts.gateway}:{port}"
        self.sim = SimulatorHandle("127.0.0.1", self.hosts.expose(port))
        sim_proc.wait_for_http(f"{self.sim.base_url}/fapi/v1/ping")
        self.sim.get("/sim/symbols", timeout=120).raise_for_status()
        self.liquid = make_exactly_liquid(self.sim, args.symbols)

        database_create_if_missing(args.database_name)
        self.redis = redis_flush(args.redis_url)
        database_url = database_url_for(args.database_name)
        self.env = process_env(
            simulator_url=self.sim.base_url, database_url=database_url, redis_url=args.redis_url,
            DJANGO_DEBUG="false", STREAMS_ENABLED="false", LIQUIDITY_REFRESH_SEC="15",
            OI_MIN_INTERVAL_SEC="1", **liquidity_env(),
        )  # fmt: skip
        django_setup(self.env, flush=True)
        # Redis and Postgres over the network for the hosts
        db = urlsplit(database_url)
        pg_port = self.hosts.relay(db.port or 5432, db.hostname or "127.0.0.1")
        self.host_database_url = urlunsplit(
            db._replace(netloc=f"{db.username}:{db.password}@{self.hosts.gateway}:{pg_port}")
        )
        rd = urlsplit(args.redis_url)
        redis_port = self.hosts.relay(rd.port or 6379, rd.hostname or "127.0.0.1")
        self.host_redis_url = urlunsplit(rd._replace(netloc=f"{self.hosts.gateway}:{redis_port}"))
        worker = Process(
            "worker",
            [sys.executable, "-m", "celery",
             *celery_args_renamed(procfile_celery_args("worker"), "bench-worker@%h")],
            self.env, LOG_DIR,
        )  # fmt: skip
        stack.callback(worker.stop)
        worker.wait_for_log("ready.", timeout=90)
        schedule_dir = LOG_DIR / "beat"
        schedule_dir.mkdir(parents=True, exist_ok=True)
        beat = Process("beat", celery_beat_args(str(schedule_dir)), self.env, LOG_DIR)
        stack.callback(beat.stop)
        beat.wait_for_log("beat: Starting", timeout=90)
        self.pollers: dict[int, Process] = {}
        self.started = 0
        self.timeline: list[tuple[int, float]] = []  # (ms, planned interval)
        self._watching = threading.Event()
        threading.Thread(target=self._watch_interval, daemon=True).start()
        stack.callback(self._watching.set)

    def _watch_interval(self) -> None:
        while not self._watching.wait(0.25):
            interval = self.redis.hget("oi:poller:status", "interval_sec")
            if interval and (not self.timeline or self.timeline[-1][1] != float(interval)):
                self.timeline.append((now_ms(), float(interval)))

    def interval_at(self, at_ms: float) -> float:
        return next((i for t, i in reversed(self.timeline) if t <= at_ms), self.timeline[0][1])

    def start_poller(self, index: int, budget: int) -> None:
        env = dict(self.env, DATABASE_URL=self.host_database_url, REDIS_URL=self.host_redis_url,
                   CELERY_BROKER_URL=self.host_redis_url, BINANCE_EGRESS_ID=f"h{index}",
                   BINANCE_BASE_URL=self.sim_url_for_hosts,
                   OI_MAX_REQ_PER_MIN=str(budget), BINANCE_CONSUMER_BUDGETS=f"poller={budget}")  # fmt: skip
        args = celery_args_renamed(
            procfile_celery_args("poller"), f"bench-h{index}-{self.started}@%h"
        )
        poller = Process(
            f"poller-h{index}-{self.started}",
            self.hosts.exec_args(index, [sys.executable, "-m", "celery", *args]),
            env, LOG_DIR,
        )  # fmt: skip
        self.started += 1
        self.stack.callback(poller.stop)
        self.pollers[index] = poller
        poller.wait_for_log("ready.", timeout=90)

    def stop_poller(self, index: int) -> None:
        poller = self.pollers.pop(index)
        poller.popen.send_signal(signal.SIGTERM)
        poller.stop()

    def plan(self) -> dict:
        raw = self.redis.get("oi:egress:plan")
        return json.loads(raw) if raw else {}

    def wait_plan(self, groups: set[str], n_symbols: int, timeout: float = 90) -> float:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            plan = self.plan()
            status = self.redis.hgetall("oi:poller:status")
            if (
                set(plan) == groups
                and sum(len(g["symbols"]) for g in plan.values()) == n_symbols
                and int(status.get("n_symbols", 0)) == n_symbols
            ):
                return float(status["interval_sec"])
            time.sleep(0.2)
        raise SystemExit(f"the plan never held {sorted(groups)} with {n_symbols} symbols")

    def oi_times(self, symbols: list[str]) -> dict[str, list[int]]:
        return self.sim.stats(symbols=symbols)["open_interest_times"]

    def measure(self, interval: float, intervals: int) -> dict:
        time.sleep(interval)
        start = now_ms()
        time.sleep(interval * intervals)
        end = now_ms()
        times = self.oi_times(self.universe)
        inside = {s: [t for t in times.get(s, []) if start <= t < end] for s in self.universe}
        gaps = [b - a for ts in inside.values() for a, b in itertools.pairwise(ts)]
        return {
            "samples_per_min": sum(map(len, inside.values())) / (end - start) * 60_000,
            "p50": percentile(gaps, 0.5) / 1000,
            "p99": percentile(gaps, 0.99) / 1000,
            "interval": interval,
        }

    def gap_ratios(self, start: int, end: int) -> list[tuple[float, str, int, int]]:
        """Each gap between a symbol's samples as (ratio to the planned interval, symbol, from,
        to)."""
        times = self.oi_times(self.universe)
        ratios = []
        for symbol in self.universe:
            ts = [t for t in times.get(symbol, []) if start <= t < end]
            for a, b in itertools.pairwise(ts):
                interval = max(self.interval_at(a), self.interval_at(b))
                ratios.append(((b - a) / 1000 / interval, symbol, a, b))
        return ratios


def run(args: argparse.Namespace, stack: ExitStack) -> bool:
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    r = Run(args, stack)
    budget = args.budget or 5 * (args.symbols + 10)  # a 12 s interval for one host
    r.universe = sorted(r.liquid)
    ok = True

    # 1. k = 1, 2, 3
    results: dict[int, dict] = {}
    for k in (1, 2, 3):
        r.start_poller(k - 1, budget)
        interval = r.wait_plan({f"h{i}" for i in range(k)}, len(r.universe))
        results[k] = r.measure(interval, intervals=max(2, round(args.seconds / interval)))
    base = results[1]
    print(f"\n{len(r.universe)} symbols, budget {budget}/min per host (IP)")
    print(f"{'k':>2} {'interval':>9} {'samples/min':>12} {'ratio':>6} {'goal':>6} "
          f"{'p50 s':>6} {'p99 s':>6} {'p99/target':>10}")  # fmt: skip
    for k, res in results.items():
        ratio = res["samples_per_min"] / base["samples_per_min"]
        p99_ratio = res["p99"] / res["interval"]
        met = ratio >= 0.97 * k and p99_ratio <= 1.1
        ok &= met
        print(f"{k:>2} {res['interval']:>8.2f}s {res['samples_per_min']:>12.1f} {ratio:>6.2f} "
              f"{0.97 * k:>6.2f} {res['p50']:>6.2f} {res['p99']:>6.2f} {p99_ratio:>10.2f}"
              f"{'' if met else '  <- goal missed'}")  # fmt: skip
    ips = r.sim.stats()["ips"]
    for index in range(3):
        ip = ips.get(r.hosts.address(index), {})
        print(f"IP {r.hosts.address(index)} (h{index}): most weight in any sliding minute "
              f"{ip.get('weight_max_60s')} (budget {budget}), 429s {ip.get('count_429')}, "
              f"418s {ip.get('count_418')}")  # fmt: skip
        ok &= ip.get("count_429", 1) == 0 and ip.get("weight_max_60s", 1e9) <= budget + 20

    # 2. re-planning: a host leaves, the universe grows, the host joins again
    start = now_ms()
    events = [(start, "h2 stopped")]
    r.stop_poller(2)
    interval = r.wait_plan({"h0", "h1"}, len(r.universe))
    time.sleep(2 * interval)
    events.append((now_ms(), f"+{args.grow} symbols"))
    grown = make_exactly_liquid(r.sim, args.symbols + args.grow)
    interval = r.wait_plan({"h0", "h1"}, len(grown), timeout=60)
    r.universe = sorted(grown)
    time.sleep(2 * interval)
    events.append((now_ms(), "h2 started"))
    r.start_poller(2, budget)
    interval = r.wait_plan({"h0", "h1", "h2"}, len(r.universe))
    time.sleep(3 * interval)
    gaps = r.gap_ratios(start, now_ms())
    ratios = [gap[0] for gap in gaps]
    p99 = percentile(ratios, 0.99)
    ok &= p99 <= 1.1
    print(f"\nre-planning (h2 leaves, +{args.grow} symbols, h2 joins): {len(ratios)} gaps, "
          f"gap / planned interval p50 {percentile(ratios, 0.5):.2f}, p99 {p99:.2f} (goal <= 1.1), "
          f"max {max(ratios):.2f}; intervals {[i for _, i in r.timeline]}")  # fmt: skip
    print(
        "  events: " + ", ".join(f"{what} at +{(at - start) / 1000:.1f} s" for at, what in events)
    )
    for ratio, symbol, a, b in sorted(gaps, reverse=True)[:3]:
        print(f"  gap {ratio:.2f}x: {symbol} from +{(a - start) / 1000:.1f} s "
              f"to +{(b - start) / 1000:.1f} s")  # fmt: skip

    # 3. overload: one host, a budget that needs a 30 s interval (over OI_MAX_INTERVAL_SEC 20 s)
    for index in list(r.pollers):
        r.stop_poller(index)
    overload_budget = 2 * (len(r.universe) + 10)
    r.start_poller(0, overload_budget)
    interval = r.wait_plan({"h0"}, len(r.universe))
    status = r.redis.hgetall("oi:poller:status")
    time.sleep(interval)
    start = now_ms()
    time.sleep(2 * interval)
    times = r.oi_times(r.universe)
    counts = [len([t for t in times.get(s, []) if t >= start]) for s in r.universe]
    # the gaps between a symbol's samples from one interval before the count's window on: a count
    # of 1 may be a sample at each edge of the window, a gap says whether one was late
    gaps = [
        (b - a) / 1000 / interval
        for s in r.universe
        for a, b in itertools.pairwise(t for t in times.get(s, []) if t >= start - interval * 1000)
    ]
    overloaded = status.get("overloaded") == "1"
    ok &= overloaded and min(counts) >= 1
    print(f"\noverload: budget {overload_budget}/min for {len(r.universe)} symbols: "
          f"overloaded={overloaded}, wanted {status.get('wanted_interval_sec')} s, interval "
          f"{interval} s (stretched past 20 s); samples per symbol over 2 intervals: "
          f"min {min(counts)}, median {statistics.median(counts)}, max {max(counts)}; gap / "
          f"interval p50 {percentile(gaps, 0.5):.2f}, max {max(gaps):.2f}; "
          f"429s {r.sim.stats()['ips'].get(r.hosts.address(0), {}).get('count_429')}")  # fmt: skip
    print("\nrerun: .venv/bin/python bench/scale_out.py" + "".join(f" {a}" for a in sys.argv[1:]))
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--symbols", type=int, default=60, help="liquid symbols (default 60)")
    parser.add_argument("--grow", type=int, default=12, help="symbols added in phase 2")
    parser.add_argument(
        "--budget",
        type=int,
        default=0,
        help="weight/min per host (default: a 12 s interval for one)",
    )
    parser.add_argument(
        "--seconds", type=float, default=36, help="measured span per k (whole intervals)"
    )
    isolation_args_add(
        parser, database_name="volspike_bench_scale", redis_url="redis://127.0.0.1:6379/7"
    )
    return run_main(run, parser.parse_args())


if __name__ == "__main__":
    sys.exit(main())
