"""End-to-end alert latency: an OI jump on the exchange to an alert frame on a WebSocket client.

Runs the whole system as in the Procfile, as real subprocesses against a simulator of its own
(650 symbols, seed 4242, no random events; about 350 are liquid at the default thresholds): the
ASGI server (uvicorn), the Celery workers of each pool configuration given (`--configs`, see
bench/_system.py POOL_CONFIGS; default `procfile`, what the Procfile runs; `prefork` is the
configuration before issue 14; `procfile@/path` runs another checkout's code, see
bench/_system.py config_code) and beat. Several configurations run one after the other on the
same simulator, database and Redis (the second finds the rings backfilled), each spiking symbols
that have not alerted yet, and their figures are printed side by side. Every default alert rule is on, with no contracts minimum,
so any symbol can alert; the figures are those of the design's rule (one alert per rule).
It uses its own Postgres database (volspike_alertbench, created and migrated if missing) and
Redis database 12 (flushed at start), so it does not disturb other runs; --database-name /
--redis-url (or $BENCH_DATABASE_NAME / $BENCH_REDIS_URL) choose others. The set-up is
bench/_system.py's, shared with the other system benchmarks.

Once the universe's ring buffers are backfilled (all members, or at least 50 after
--backfill-timeout), one WebSocket client subscribes to every symbol, and a +20% OI spike is
injected on 50 members picked evenly over the sorted list (so over the whole backfill order),
spread over 20 s; alerts are collected until two poll intervals after the last spike. Each event's `at` lies on the simulator's 1 s OI sampling grid, so the first openInterest
request the simulator answers at or after `at` is the first response carrying the jump.
For each symbol it measures:

* latency = WebSocket receipt of the alert - that response (target: p99 < 250 ms);
* polling wait = that response - `at` (context: it depends on the poll interval only);
* the split of the latency at the alert row's created_at (Postgres now() at insert).

The simulator answers in well under a millisecond, so the arrival time it records for a request
stands for its response time. Both clocks are this machine's wall clock (time.time()).
Alerts are counted per symbol from the WebSocket frames and from the alerts table: every
symbol must raise the design rule's alert exactly once (none lost, none doubled).

Rerun:

    python bench/alert_latency.py [--configs prefork,procfile]

Process logs and per-symbol results (results-<config>.json) go to bench-artifacts/alert-latency/.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import threading
import time
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import redis
from websockets.sync.client import connect

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import _system
from bench._system import PROJECT_ROOT, Process, SimulatorHandle

RERUN_COMMAND = "python bench/alert_latency.py"
# Every default rule runs (each spike raises one alert per rule); latency and the exactly-once
# counts are measured on the design's rule.
MEASURED_RULE = "design-median-30-60m-5pct"
ARTIFACTS = PROJECT_ROOT / "bench-artifacts" / "alert-latency"
DATABASE_NAME = "volspike_alertbench"
REDIS_URL = "redis://127.0.0.1:6379/12"
SIM_ARGS = ("--seed", "4242", "--event-rate-per-day", "0")

SPIKE_PCT = 20
OI_SAMPLE_MS = 1000  # the simulator's OI sampling grid (--oi-sample-ms default)
BACKFILLED_RING_MEMBERS = 36  # a ring with more members than this has its backfilled baseline
TARGET_P99_MS = 250.0


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--alerts", type=int, default=50, help="symbols spiked (default 50)")
    parser.add_argument(
        "--spread", type=float, default=20, help="seconds the spikes are spread over (default 20)"
    )
    parser.add_argument(
        "--sim-symbols", type=int, default=650, help="symbols in the simulator (default 650)"
    )
    parser.add_argument(
        "--backfill-timeout",
        type=float,
        default=300,
        help="longest wait for the whole universe's backfill before going on (default 300)",
    )
    parser.add_argument(
        "--warmup",
        type=float,
        default=45,
        help="least seconds each configuration runs before the spikes (default 45): its "
        "processes build their alert trackers on their first polls",
    )
    parser.add_argument(
        "--configs",
        default="procfile",
        help="worker pool configurations, run one after the other (bench/_system.py "
        f"POOL_CONFIGS: {', '.join(_system.POOL_CONFIGS)}; default procfile)",
    )
    _system.isolation_args_add(parser, database_name=DATABASE_NAME, redis_url=REDIS_URL)
    return parser.parse_args()


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def utc(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%H:%M:%S.%f")[:-3]


def percentile(values: list[float], share: float) -> float:
    """Nearest-rank percentile (with 50 values, p99 is the largest)."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


# --- processes -------------------------------------------------------------------------------


def start_simulator(stack: ExitStack, sim_symbols: int) -> tuple[SimulatorHandle, Process]:
    sim, process = _system.start_simulator(
        "simulator", ("--symbols", str(sim_symbols), *SIM_ARGS), ARTIFACTS
    )
    stack.callback(process.stop)
    stack.callback(sim.session.close)
    return sim, process


def start_system(
    stack: ExitStack, env: dict[str, str], schedule_dir: str, config: str
) -> tuple[str, list]:
    """ASGI server, the Celery workers of pool configuration `config` and beat, started
    together. Returns the server's base URL and the processes."""
    port = _system.free_port()
    pool, cwd = _system.config_code(config)
    prefix = f"alertbench-{_system.config_label(config)}"
    processes = [Process(f"{prefix}-asgi-server", _system.uvicorn_args(port), env, ARTIFACTS, cwd)]
    stack.callback(processes[0].stop)
    workers = [
        Process(f"{prefix}-{spec.name}", spec.args(prefix), env, ARTIFACTS, cwd)
        for spec in _system.pool_config(pool)
    ]
    for worker in workers:
        stack.callback(worker.stop)
    beat = Process(f"{prefix}-beat", _system.celery_beat_args(schedule_dir), env, ARTIFACTS, cwd)
    stack.callback(beat.stop)
    base_url = f"http://127.0.0.1:{port}"
    processes[0].wait_for_http(f"{base_url}/health")
    for worker in workers:
        worker.wait_for_log("ready.")
    beat.wait_for_log("beat: Starting")
    return base_url, [*processes, *workers, beat]


# --- waiting for a backfilled universe ---------------------------------------------------------


def backfilled_members(redis_client: redis.Redis) -> tuple[list[str], list[str]]:
    """The universe, and its members whose ring buffer holds the backfilled baseline."""
    from liquidity.services import REDIS_UNIVERSE_KEY
    from oi.ring import ring_key

    members = sorted(redis_client.smembers(REDIS_UNIVERSE_KEY))
    with redis_client.pipeline(transaction=False) as pipe:
        for symbol in members:
            pipe.zcard(ring_key(symbol))
        sizes = pipe.execute()
    ready = [s for s, size in zip(members, sizes, strict=True) if size > BACKFILLED_RING_MEMBERS]
    return members, ready


def wait_for_backfill(
    redis_client: redis.Redis, processes: list[Process], needed: int, timeout: float
) -> list[str]:
    """Wait until the whole universe (at least `needed` members) is backfilled, or until
    `timeout` if `needed` members are by then; returns the backfilled members."""
    started = time.monotonic()
    next_progress = started
    while True:
        for process in processes:
            process.check_alive()
        members, ready = backfilled_members(redis_client)
        waited = time.monotonic() - started
        if len(ready) >= needed and (len(ready) == len(members) or waited > timeout):
            print(f"universe: {len(members)} members, {len(ready)} backfilled ({waited:.0f} s)")
            return ready
        if waited > timeout * 2:
            raise TimeoutError(f"only {len(ready)} of {len(members)} members backfilled")
        if time.monotonic() >= next_progress:
            print(f"  ... universe {len(members)}, backfilled {len(ready)}", flush=True)
            next_progress += 15
        time.sleep(1)


def symbols_not_cooling_down(redis_client: redis.Redis, symbols: list[str]) -> list[str]:
    """Symbols with no UP alert stored yet (one would hold back the injected spike's alert)."""
    from alerts.models import OpenInterestAlert

    alerted = set(
        OpenInterestAlert.objects.filter(symbol__in=symbols, direction="UP").values_list(
            "symbol", flat=True
        )
    )
    return [symbol for symbol in symbols if symbol not in alerted]


def rules_prepare() -> None:
    """The default rules, all on, with no contracts minimum so any symbol's spike alerts."""
    from alerts.models import AlertRule
    from alerts.services import alert_rules_install_defaults

    alert_rules_install_defaults()
    AlertRule.objects.update(enabled=True, min_delta_contracts=None)


def spread_pick(symbols: list[str], count: int) -> list[str]:
    """`count` symbols spread evenly over the sorted list (so over the whole backfill order)."""
    step = len(symbols) / count
    return [symbols[int(index * step)] for index in range(count)]


# --- the WebSocket client ----------------------------------------------------------------------


class AlertListener(threading.Thread):
    """One client subscribed to every symbol; records (receipt ms, frame) of each alert frame."""

    def __init__(self, ws_url: str) -> None:
        super().__init__(name="alert-listener", daemon=True)
        self.ws_url = ws_url
        self.alert_frames: list[tuple[int, dict]] = []
        self.update_frames = 0
        self.subscribed = threading.Event()
        self.stopping = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            with connect(self.ws_url, max_size=None) as ws:
                while not self.stopping.is_set():
                    try:
                        raw = ws.recv(timeout=0.5)
                    except TimeoutError:
                        continue
                    received_ms = now_ms()
                    self._record(received_ms, json.loads(raw))
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            self.error = exc
            self.subscribed.set()

    def _record(self, received_ms: int, frame: dict) -> None:
        if frame["type"] == "open_interest_alert":
            self.alert_frames.append((received_ms, frame))
        elif frame["type"] == "open_interest_update":
            self.update_frames += 1
        elif frame["type"] == "subscribed":
            self.subscribed.set()

    def stop(self) -> None:
        self.stopping.set()
        self.join(5)


def listener_start(stack: ExitStack, base_url: str) -> AlertListener:
    listener = AlertListener(base_url.replace("http://", "ws://") + "/ws/open-interest/")
    listener.start()
    stack.callback(listener.stop)
    if not listener.subscribed.wait(10) or listener.error:
        raise RuntimeError(f"the WebSocket client did not subscribe: {listener.error!r}")
    return listener


# --- injecting and collecting ------------------------------------------------------------------


def inject_spikes(sim: SimulatorHandle, symbols: list[str], spread_sec: float) -> dict[str, int]:
    """A +SPIKE_PCT% event per symbol, `at` spread over spread_sec on the OI sampling grid (so
    a request arriving at or after `at` is answered with the jump). Returns {symbol: at ms}."""
    first_ms = now_ms() + 2000
    step_ms = spread_sec * 1000 / len(symbols)
    at_by_symbol = {}
    for index, symbol in enumerate(symbols):
        at_ms = math.ceil((first_ms + index * step_ms) / OI_SAMPLE_MS) * OI_SAMPLE_MS
        sim.inject_event(symbol, "spike", SPIKE_PCT, at=at_ms)
        at_by_symbol[symbol] = at_ms
    return at_by_symbol


def collect(
    listener: AlertListener, processes: list[Process], until_ms: int
) -> list[tuple[int, dict]]:
    while now_ms() < until_ms:
        for process in processes:
            process.check_alive()
        if listener.error:
            raise RuntimeError(f"the WebSocket client failed: {listener.error!r}")
        time.sleep(0.5)
    return list(listener.alert_frames)


def poll_interval_sec(redis_client: redis.Redis) -> float:
    from oi.keys import STATUS_KEY

    return float(redis_client.hget(STATUS_KEY, "interval_sec") or 20)


def latest_alert_id() -> int:
    from alerts.models import OpenInterestAlert

    return OpenInterestAlert.objects.order_by("-id").values_list("id", flat=True).first() or 0


def stored_alerts(symbols: list[str], after_id: int) -> dict[str, list[tuple[int, datetime]]]:
    """{symbol: [(id, created_at), ...]} of the UP alerts stored after `after_id`."""
    from alerts.models import OpenInterestAlert

    rows = OpenInterestAlert.objects.filter(
        symbol__in=symbols, direction="UP", id__gt=after_id, rule_name=MEASURED_RULE
    ).values_list("symbol", "id", "created_at")
    stored: dict[str, list[tuple[int, datetime]]] = {symbol: [] for symbol in symbols}
    for symbol, alert_id, created_at in rows:
        stored[symbol].append((alert_id, created_at))
    return stored


# --- analysis ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SymbolResult:
    symbol: str
    at_ms: int
    jump_responses_ms: list[int]  # openInterest answers at or after at_ms, in time order
    ws_alerts: list[tuple[int, dict]]  # (receipt ms, payload) of its UP alerts
    stored: list[tuple[int, datetime]]  # (id, created_at) of its UP rows

    @property
    def response_ms(self) -> int | None:
        """The first response carrying the jump."""
        return self.jump_responses_ms[0] if self.jump_responses_ms else None

    @property
    def received_ms(self) -> int | None:
        return self.ws_alerts[0][0] if self.ws_alerts else None

    @property
    def latency_ms(self) -> int | None:
        if self.response_ms is None or self.received_ms is None:
            return None
        return self.received_ms - self.response_ms

    @property
    def polling_wait_ms(self) -> int | None:
        return None if self.response_ms is None else self.response_ms - self.at_ms

    @property
    def stored_ms(self) -> int | None:
        """The first alert row's created_at (the inserting transaction's start)."""
        return round(self.stored[0][1].timestamp() * 1000) if self.stored else None

    @property
    def alert_sample_ms(self) -> int | None:
        if not self.ws_alerts:
            return None
        return round(datetime.fromisoformat(self.ws_alerts[0][1]["timestamp"]).timestamp() * 1000)

    @property
    def polls_missed(self) -> int:
        """Jump-carrying responses answered before the one whose sample raised the alert."""
        if self.alert_sample_ms is None:
            return len(self.jump_responses_ms)
        return sum(1 for t in self.jump_responses_ms if t < self.alert_sample_ms)

    @property
    def alert_from_first_response(self) -> bool:
        """The alert's sample time is the one the first jump-carrying response reported."""
        if self.response_ms is None or self.alert_sample_ms is None:
            return False
        return self.alert_sample_ms == self.response_ms - self.response_ms % OI_SAMPLE_MS


def symbol_results(
    sim: SimulatorHandle,
    at_by_symbol: dict[str, int],
    frames: list[tuple[int, dict]],
    after_id: int,
) -> list[SymbolResult]:
    symbols = list(at_by_symbol)
    request_times = sim.stats(symbols=symbols)["open_interest_times"]
    stored = stored_alerts(symbols, after_id)
    ws_alerts: dict[str, list[tuple[int, dict]]] = {symbol: [] for symbol in symbols}
    for received_ms, frame in frames:
        payload = frame["data"]
        if (
            payload["id"] > after_id
            and payload["direction"] == "UP"
            and payload["rule"] == MEASURED_RULE
            and payload["symbol"] in ws_alerts
        ):
            ws_alerts[payload["symbol"]].append((received_ms, payload))
    return [
        SymbolResult(
            symbol=symbol,
            at_ms=at_ms,
            jump_responses_ms=[t for t in request_times.get(symbol, []) if t >= at_ms],
            ws_alerts=ws_alerts[symbol],
            stored=stored[symbol],
        )
        for symbol, at_ms in at_by_symbol.items()
    ]


def report(results: list[SymbolResult], interval_sec: float, listener: AlertListener) -> bool:
    def figures(values: list[int | None]) -> str:
        known = [v for v in values if v is not None]
        return f"p50 {percentile(known, 0.5):.0f} ms, p99 {percentile(known, 0.99):.0f} ms"

    expected = len(results)
    latencies = [r.latency_ms for r in results if r.latency_ms is not None]
    p99 = percentile(latencies, 0.99)
    received = sum(1 for r in results if r.ws_alerts)
    ws_duplicates = sum(max(0, len(r.ws_alerts) - 1) for r in results)
    rows = sum(len(r.stored) for r in results)
    row_duplicates = sum(max(0, len(r.stored) - 1) for r in results)
    not_first = [r.symbol for r in results if r.ws_alerts and not r.alert_from_first_response]
    never_answered = [r.symbol for r in results if r.response_ms is None]
    lost = [r.symbol for r in results if not r.ws_alerts]
    p99_ok = p99 < TARGET_P99_MS
    counts_ok = received == expected and ws_duplicates == 0 and rows == expected

    print()
    print(f"=== alert latency: {expected} symbols spiked +{SPIKE_PCT}%, one WebSocket client ===")
    print(
        "latency = WebSocket receipt of the alert - the simulator's first response carrying the "
        "jump (its request arrival time: the simulator answers in well under 1 ms); both are "
        "this machine's wall clock (time.time())"
    )
    print(
        f"latency:       {figures(latencies)}, max {max(latencies, default=math.nan):.0f} ms "
        f"(target p99 < {TARGET_P99_MS:.0f} ms)  {'OK' if p99_ok else 'MISS'}"
    )
    print(
        f"  of which response -> alert row created_at: "
        f"{figures([_diff(r.stored_ms, r.response_ms) for r in results])}; "
        f"created_at -> WebSocket receipt: "
        f"{figures([_diff(r.received_ms, r.stored_ms) for r in results])}"
    )
    print(
        f"polling wait (injection at -> that response, context only): "
        f"{figures([r.polling_wait_ms for r in results])} (poll interval {interval_sec:g} s)"
    )
    print(
        f"alerts received: {received}/{expected} expected; duplicates: {ws_duplicates} "
        f"(WebSocket); alerts table: {rows} rows for the {expected} symbols, "
        f"{row_duplicates} duplicates  {'OK' if counts_ok else 'MISS'}"
    )
    if lost:
        print(f"  lost: {', '.join(lost)}")
    if never_answered:
        print(f"  never polled after the jump: {', '.join(never_answered)}")
    if not_first:
        first_only = [r.latency_ms for r in results if r.alert_from_first_response]
        late = [f"{r.symbol} (+{r.polls_missed})" for r in results if r.symbol in not_first]
        print(
            f"  {len(not_first)} alerts came from a later poll than the first response carrying "
            f"the jump (+ jump-carrying polls that raised nothing): {', '.join(late)}"
        )
        print(
            f"  latency of the {len(first_only)} alerts raised by the first response: "
            f"{figures(first_only)}"
        )
    print(f"({listener.update_frames} open_interest_update frames seen by the client meanwhile)")
    print(
        f"rerun: {RERUN_COMMAND}   (process logs and per-symbol results-<config>.json: "
        f"{ARTIFACTS.relative_to(PROJECT_ROOT)}/)"
    )
    return p99_ok and counts_ok


def results_write(results: list[SymbolResult], config: str) -> Path:
    """Per-symbol figures, for looking into a miss."""
    path = ARTIFACTS / f"results-{_system.config_label(config)}.json"
    rows = [
        {
            "symbol": r.symbol,
            "at_ms": r.at_ms,
            "jump_responses_ms": r.jump_responses_ms,
            "alert_sample_ms": r.alert_sample_ms,
            "stored_ms": r.stored_ms,
            "received_ms": [received_ms for received_ms, _ in r.ws_alerts],
            "alert_ids": [alert_id for alert_id, _ in r.stored],
            "latency_ms": r.latency_ms,
            "polling_wait_ms": r.polling_wait_ms,
        }
        for r in results
    ]
    path.write_text(json.dumps(rows, indent=1))
    return path


def _diff(later: int | None, earlier: int | None) -> int | None:
    return None if later is None or earlier is None else later - earlier


# --- main --------------------------------------------------------------------------------------


def run(args: argparse.Namespace, stack: ExitStack) -> bool:
    configs = [name.strip() for name in args.configs.split(",") if name.strip()]
    for name in configs:
        _system.pool_config(
            _system.config_code(name)[0]
        )  # unknown names fail before anything starts
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    redis_client = _system.redis_flush(args.redis_url)  # this benchmark's own database
    stack.callback(redis_client.close)

    sim, simulator_process = start_simulator(stack, args.sim_symbols)
    env = _system.process_env(
        simulator_url=sim.base_url,
        database_url=_system.database_url_for(args.database_name),
        redis_url=args.redis_url,
        OI_MIN_DELTA_CONTRACTS="0",
    )
    _system.database_create_if_missing(args.database_name)
    _system.django_setup(env, migrate=True, flush=False)
    rules_prepare()
    rows = []
    for config in configs:
        with ExitStack() as config_stack:
            rows.append(run_config(config, args, config_stack, env, sim, simulator_process,
                                   redis_client))  # fmt: skip
    if len(rows) > 1:
        side_by_side(rows)
    print(f"rerun: {RERUN_COMMAND} --configs {','.join(configs)}")
    return all(ok for _, ok, _ in rows)


def run_config(
    config: str,
    args: argparse.Namespace,
    stack: ExitStack,
    env: dict[str, str],
    sim: SimulatorHandle,
    simulator_process: Process,
    redis_client: redis.Redis,
) -> tuple[str, bool, dict[str, float]]:
    """Start the system with `config`'s workers, spike symbols that have not alerted yet,
    collect and report; stop it. Returns (config, targets met, figures)."""
    schedule_dir = stack.enter_context(tempfile.TemporaryDirectory(prefix="alertbench-beat-"))
    base_url, processes = start_system(stack, env, schedule_dir, config)
    started = time.monotonic()
    processes.append(simulator_process)
    print(f"--- [{config}] system up: simulator {sim.base_url}, ASGI server {base_url}")

    ready = wait_for_backfill(redis_client, processes, args.alerts, args.backfill_timeout)
    time.sleep(max(0.0, args.warmup - (time.monotonic() - started)))
    candidates = symbols_not_cooling_down(redis_client, ready)
    if len(candidates) < args.alerts:
        raise RuntimeError(f"only {len(candidates)} backfilled symbols are free to alert")
    chosen = spread_pick(candidates, args.alerts)
    after_id = latest_alert_id()
    listener = listener_start(stack, base_url)
    interval_sec = poll_interval_sec(redis_client)

    load_before = Path("/proc/loadavg").read_text().split()[0]
    at_by_symbol = inject_spikes(sim, chosen, args.spread)
    until_ms = max(at_by_symbol.values()) + round(2 * interval_sec * 1000) + 3000
    print(
        f"injected {len(chosen)} spikes at {utc(min(at_by_symbol.values()))} .. "
        f"{utc(max(at_by_symbol.values()))}; collecting for "
        f"{(until_ms - now_ms()) / 1000:.0f} s (2 poll intervals after the last)"
    )
    frames = collect(listener, processes, until_ms)
    load = f"{load_before} -> {Path('/proc/loadavg').read_text().split()[0]}"
    results = symbol_results(sim, at_by_symbol, frames, after_id)
    results_write(results, config)
    print(f"[{config}] 1-min load average during the spikes {load}")
    ok = report(results, interval_sec, listener)
    latencies = [r.latency_ms for r in results if r.latency_ms is not None]
    figures = {
        "latency p50 ms": percentile(latencies, 0.5),
        "latency p99 ms": percentile(latencies, 0.99),
        "alerts received": float(sum(1 for r in results if r.ws_alerts)),
        "duplicates": float(sum(max(0, len(r.ws_alerts) - 1) for r in results)),
        "polling wait p50 ms": percentile(
            [r.polling_wait_ms for r in results if r.polling_wait_ms is not None], 0.5
        ),
    }
    return config, ok, figures


def side_by_side(rows: list[tuple[str, bool, dict[str, float]]]) -> None:
    base_config, _, base = rows[0]
    print()
    print(f"=== side by side (ratio to {base_config}) ===")
    width = max(22, *(len(config) + 2 for config, _, _ in rows))  # long procfile@/path labels
    print(f"{'':<22}" + "".join(f"{config:>{width}}" for config, _, _ in rows))
    for name in base:
        cells = []
        for config, _, figures in rows:
            text = f"{figures[name]:.0f}"
            if config != base_config and base[name]:
                text += f" ({figures[name] / base[name]:.2f}x)"
            cells.append(f"{text:>{width}}")
        print(f"{name:<22}" + "".join(cells))


def main() -> int:
    return _system.run_main(run, parse_args())


if __name__ == "__main__":
    sys.exit(main())
