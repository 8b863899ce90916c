"""CPU per Redis call of redis-py with hiredis (C packing and parsing, what the project installs)
against redis-py's pure-Python packer and parser, side by side in one run.

The calls are the poller's own: the request budget's booking (one EVALSHA per poll, see
exchange/budget.py), a GET, and the dispatch's MGET of 400 keys. Rounds alternate between the
two clients so that a change in the machine's load hits both alike.

    .venv/bin/python bench/redis_client.py [--calls 3000] [--rounds 4] [--redis-url URL]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import redis
from redis._parsers import _RESP2Parser
from redis._parsers.encoders import Encoder
from redis.connection import PythonRespSerializer
from redis.utils import HIREDIS_AVAILABLE

from exchange.budget import BudgetConfig, RequestBudget

COMMAND = ".venv/bin/python bench/redis_client.py"


def client(url: str, *, pure_python: bool) -> redis.Redis:
    options: dict = dict(decode_responses=True, protocol=2)
    if pure_python:
        encoder = Encoder("utf-8", "strict", True)
        options.update(
            parser_class=_RESP2Parser, command_packer=PythonRespSerializer(6000, encoder.encode)
        )
    return redis.Redis.from_url(url, **options)


def cpu_us_per_call(call, calls: int) -> float:
    for _ in range(50):
        call()
    started = time.process_time()
    for _ in range(calls):
        call()
    return (time.process_time() - started) / calls * 1e6


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument(
        "--redis-url", default=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/13")
    )
    args = parser.parse_args()
    if not HIREDIS_AVAILABLE:
        print("hiredis is not installed: pip install -r requirements.txt", file=sys.stderr)
        return 1
    clients = {"hiredis": client(args.redis_url, pure_python=False),
               "pure Python": client(args.redis_url, pure_python=True)}  # fmt: skip
    keys = [f"bench:redis-client:{n}" for n in range(400)]
    clients["hiredis"].mset({key: "1" for key in keys[::2]})
    config = BudgetConfig(
        egress_id="bench-redis-client", consumer_budgets={"poller": 10**8}, ip_weight_limit=10**9
    )  # fmt: skip: never waits, never refuses
    budgets = {name: RequestBudget(c, config) for name, c in clients.items()}
    calls = {
        "budget booking (EVALSHA)": lambda name: (
            lambda: budgets[name]._book(1, "poller", False, 30_000_000, "auto")
        ),
        "GET": lambda name: lambda: clients[name].get(keys[0]),
        "MGET of 400 keys": lambda name: lambda: clients[name].mget(keys),
    }
    results: dict[tuple[str, str], list[float]] = {}
    for _ in range(args.rounds):
        for label, make in calls.items():
            for name in clients:
                n = args.calls if "400" not in label else args.calls // 10
                results.setdefault((label, name), []).append(cpu_us_per_call(make(name), n))
    budgets["hiredis"].reset()
    clients["hiredis"].delete(*keys)

    print(
        f"redis-py {redis.__version__}: CPU µs per call, median of {args.rounds} alternated rounds"
    )
    print(f"{'call':<26} {'hiredis':>9} {'pure Python':>12} {'ratio':>7}")
    for label in calls:
        fast = statistics.median(results[(label, "hiredis")])
        slow = statistics.median(results[(label, "pure Python")])
        print(f"{label:<26} {fast:>9.0f} {slow:>12.0f} {fast / slow:>6.2f}×")
    print(f"\nrerun: {COMMAND} --calls {args.calls} --rounds {args.rounds}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
