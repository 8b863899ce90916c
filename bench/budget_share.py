"""How much of the shared Binance request budget 1, 2 and 4 processes use, and at what cost.

Starts its own simulator (exchange limit 2400 weight/min), then for each configuration runs N
processes that call /fapi/v1/openInterest (weight 1) as fast as the shared budget lets them for
``--seconds``. Prints requests/min achieved as a share of the budget's IP rate, the simulator's
429 and 418 counts (GET /sim/stats), and the limiter's cost: Redis time per admitted request
under load, and per acquire of an uncontended budget.

    .venv/bin/python bench/budget_share.py              # 60 s per configuration, ~3.5 min
    .venv/bin/python bench/budget_share.py --seconds 10
"""

import argparse
import multiprocessing
import os
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import redis
import requests

PROJECT_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT_ROOT))

from exchange.budget import BudgetConfig, RequestBudget  # noqa: E402
from exchange.client import BinanceFuturesClient  # noqa: E402
from exchange.errors import BudgetExhausted, ExchangeError  # noqa: E402

SYMBOL = "BTCUSDT"
EXCHANGE_LIMIT = 2400


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_simulator(port: int) -> subprocess.Popen:
    command = [
        sys.executable, "-m", "simulator", "--port", str(port), "--symbols", "20",
        "--weight-limit", str(EXCHANGE_LIMIT), "--event-rate-per-day", "0",
    ]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if not k.startswith("SIM_")}
    process = subprocess.Popen(command, cwd=PROJECT_ROOT, env=env, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if requests.get(f"http://127.0.0.1:{port}/fapi/v1/ping", timeout=1).ok:
                return process
        except requests.RequestException:
            time.sleep(0.1)
    process.kill()
    raise SystemExit("simulator did not start")


def worker(
    base_url: str, redis_url: str, config: BudgetConfig, start_at: float, seconds: float, out
) -> None:
    budget = RequestBudget(redis.Redis.from_url(redis_url), config)
    client = BinanceFuturesClient(base_url, budget, consumer="bench", max_retries=0)
    end = start_at + seconds
    time.sleep(max(start_at - time.time(), 0))
    ok = errors = 0
    while True:
        client.max_wait = end - time.time()
        if client.max_wait <= 0:
            break
        try:
            client.open_interest(SYMBOL)
            ok += 1
        except BudgetExhausted:
            break
        except ExchangeError:
            errors += 1
    out.put((ok, errors, budget.stats.redis_seconds, budget.stats.redis_calls))


def uncontended_cost(redis_url: str, calls: int = 5000) -> float:
    config = BudgetConfig(egress_id=f"bench-cost-{uuid.uuid4().hex[:8]}", ip_weight_limit=10**9)
    budget = RequestBudget(redis.Redis.from_url(redis_url), config)
    budget.acquire(1)
    started = time.perf_counter()
    for _ in range(calls):
        budget.acquire(1, max_wait=0)
    cost = (time.perf_counter() - started) / calls * 1e6
    budget.reset()
    return cost


def run(processes: int, seconds: float, base_url: str, redis_url: str) -> dict:
    requests.post(base_url + "/sim/reset", timeout=5)
    config = BudgetConfig(egress_id=f"bench-{uuid.uuid4().hex[:8]}", consumer_budgets={})
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    start_at = time.time() + 3.0
    procs = [
        context.Process(target=worker, args=(base_url, redis_url, config, start_at, seconds, queue))
        for _ in range(processes)
    ]
    for proc in procs:
        proc.start()
    results = [queue.get(timeout=seconds + 60) for _ in procs]
    for proc in procs:
        proc.join(timeout=10)
    RequestBudget(redis.Redis.from_url(redis_url), config).reset()

    stats = requests.get(base_url + "/sim/stats", timeout=5).json()
    ip = stats["ips"].get("127.0.0.1", {})
    ok = sum(r[0] for r in results)
    budget_per_min = config.ip_rate_per_min(EXCHANGE_LIMIT)
    return {
        "processes": processes,
        "ok": ok,
        "errors": sum(r[1] for r in results),
        "per_min": ok / seconds * 60,
        "budget_per_min": budget_per_min,
        "share": ok / seconds * 60 / budget_per_min,
        "count_429": ip.get("count_429", 0),
        "count_418": ip.get("count_418", 0),
        "sim_requests": ip.get("requests", 0),
        "us_per_request": sum(r[2] for r in results) / ok * 1e6 if ok else 0.0,
        "redis_calls_per_request": sum(r[3] for r in results) / ok if ok else 0.0,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="per configuration")
    parser.add_argument("--processes", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument(
        "--redis-url", default=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    )
    args = parser.parse_args()

    port = free_port()
    simulator = start_simulator(port)
    base_url = f"http://127.0.0.1:{port}"
    try:
        cost = uncontended_cost(args.redis_url)
        config = BudgetConfig(consumer_budgets={})
        print(
            f"exchange limit {EXCHANGE_LIMIT}/min; budget {config.ip_rate_per_min()}/min "
            f"(margin {config.safety_margin:.0%}, burst {config.burst}); "
            f"{args.seconds:g} s per configuration"
        )
        print(f"uncontended acquire: {cost:.0f} us")
        print(
            f"{'procs':>5} {'req/min':>9} {'budget':>7} {'share':>7} {'429':>4} {'418':>4} "
            f"{'errors':>6} {'sim req':>7} {'us/req':>7} {'redis/req':>9}"
        )
        for processes in args.processes:
            row = run(processes, args.seconds, base_url, args.redis_url)
            print(
                f"{row['processes']:>5} {row['per_min']:>9.1f} {row['budget_per_min']:>7} "
                f"{row['share']:>7.2%} {row['count_429']:>4} {row['count_418']:>4} "
                f"{row['errors']:>6} {row['sim_requests']:>7} {row['us_per_request']:>7.0f} "
                f"{row['redis_calls_per_request']:>9.2f}",
                flush=True,
            )
    finally:
        simulator.terminate()
        simulator.wait(timeout=10)
    rerun = " ".join(["python", "bench/budget_share.py", *sys.argv[1:]])
    print(f"rerun: cd {PROJECT_ROOT} && . .venv/bin/activate && {rerun}")


if __name__ == "__main__":
    main()
