"""What the 4 h and 24 h windows cost in Redis: the coarse ring (first sample per 5 minutes, 25 h)
beside the 3 h full-resolution ring, against the 24 h full-resolution ring it replaces.

400 symbols, samples every 10 s with realistic members ("<ms>:<contracts>:p<price>"). Measured on
an emptied Redis database of its own: INFO memory's used_memory before and after each set of keys,
and the sum of MEMORY USAGE over them. Also the cost of a write: one batch of one new sample for
each of the 400 symbols through oi.ring.ring_append, without and with the coarse ring (the Lua
script per symbol), median of 50 batches.

    .venv/bin/python bench/coarse_ring_memory.py
    .venv/bin/python bench/coarse_ring_memory.py --symbols 400 --redis-url redis://127.0.0.1:6379/11
"""

import argparse
import random
import statistics
import sys
import time
from decimal import Decimal
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT_ROOT))

import _system  # noqa: E402

from oi.coarse import COARSE_BUCKET_MS  # noqa: E402
from oi.ring import (  # noqa: E402
    RingSample,
    coarse_ring_key,
    encode_member,
    ring_append,
    ring_key,
)

REDIS_URL = "redis://127.0.0.1:6379/11"
STEP_MS = 10_000
FINE_MS = 3 * 3600_000
COARSE_MS = 25 * 3600_000
DAY_MS = 24 * 3600_000
T0 = 1_764_590_400_000


def sample(rng: random.Random, t_ms: int, oi: float) -> RingSample:
    return RingSample(
        t_ms, Decimal(f"{oi:.3f}"), mark_price=Decimal(f"{rng.uniform(0.01, 9e4):.5f}")
    )


def used(client) -> int:
    return int(client.info("memory")["used_memory"])


def keys_usage(client, pattern: str) -> tuple[int, int]:
    keys = list(client.scan_iter(pattern, count=1000))
    with client.pipeline(transaction=False) as pipe:
        for key in keys:
            pipe.memory_usage(key, samples=0)
        sizes = pipe.execute()
    return len(keys), sum(sizes)


def zadd_all(client, symbols, key_of, span_ms, step_ms, rng) -> None:
    """Members written directly (ZADD), each symbol's span of samples every step."""
    for symbol in symbols:
        members = {}
        for t_ms in range(T0, T0 + span_ms, step_ms):
            members[encode_member(sample(rng, t_ms, 1e6 * rng.random()))] = t_ms
        client.zadd(key_of(symbol), members)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--symbols", type=int, default=400)
    parser.add_argument("--redis-url", default=REDIS_URL)
    args = parser.parse_args()
    client = _system.redis_flush(args.redis_url)
    rng = random.Random(1)
    symbols = [f"SYM{i:04d}USDT" for i in range(args.symbols)]
    mib = 1024 * 1024

    base = used(client)
    zadd_all(client, symbols, ring_key, FINE_MS, STEP_MS, rng)
    after_fine = used(client)
    fine_keys, fine_bytes = keys_usage(client, "oi:ring:*")
    # the coarse ring as the sink leaves it: the first sample of each 5-minute bucket, 25 h
    zadd_all(client, symbols, coarse_ring_key, COARSE_MS, COARSE_BUCKET_MS, rng)
    after_coarse = used(client)
    coarse_keys, coarse_bytes = keys_usage(client, "oi:ring5m:*")
    members = client.zcard(coarse_ring_key(symbols[0]))

    # the alternative not taken: a 24 h full-resolution ring
    zadd_all(client, symbols, lambda s: f"bench:ring24h:{s}", DAY_MS, STEP_MS, rng)
    after_full = used(client)
    full_keys, full_bytes = keys_usage(client, "bench:ring24h:*")
    client.delete(*[f"bench:ring24h:{s}" for s in symbols])

    # the write path: one sample per symbol per batch, as the ring sink sends it
    costs = {False: [], True: []}
    t_ms = T0 + COARSE_MS
    for round_ in range(100):
        with_coarse = bool(round_ % 2)
        t_ms += STEP_MS
        batch = {s: [sample(rng, t_ms, 1e6 * rng.random())] for s in symbols}
        started = time.perf_counter()
        ring_append(client, batch, window_ms=FINE_MS, now_ms=t_ms,
                    coarse_window_ms=COARSE_MS if with_coarse else None)  # fmt: skip
        costs[with_coarse].append((time.perf_counter() - started) * 1000)

    print(f"Redis memory for {args.symbols} symbols, a sample every {STEP_MS // 1000} s "
          f"({args.redis_url}, emptied first)")  # fmt: skip
    print(f"  3 h full-resolution rings (today):   {fine_keys} keys x "
          f"{FINE_MS // STEP_MS} members: used_memory +{(after_fine - base) / mib:.1f} MiB, "
          f"MEMORY USAGE {fine_bytes / mib:.1f} MiB ({fine_bytes / fine_keys / 1024:.0f} KiB/key)")  # fmt: skip
    print(f"  + 25 h coarse rings (5-min buckets): {coarse_keys} keys x {members} members: "
          f"used_memory +{(after_coarse - after_fine) / mib:.1f} MiB, MEMORY USAGE "
          f"{coarse_bytes / mib:.1f} MiB ({coarse_bytes / coarse_keys / 1024:.0f} KiB/key)")  # fmt: skip
    print(f"  instead of 24 h full-resolution rings: {full_keys} keys x {DAY_MS // STEP_MS} "
          f"members: used_memory +{(after_full - after_coarse) / mib:.1f} MiB, MEMORY USAGE "
          f"{full_bytes / mib:.1f} MiB")  # fmt: skip
    print(f"  the long windows cost {coarse_bytes / fine_bytes:.0%} of the rings in use today, "
          f"{coarse_bytes / full_bytes:.1%} of a 24 h full-resolution ring")  # fmt: skip
    print(f"Write of one batch (one sample for each of {args.symbols} symbols), median of 50: "
          f"full-resolution ring only {statistics.median(costs[False]):.1f} ms, with the coarse "
          f"ring {statistics.median(costs[True]):.1f} ms")  # fmt: skip
    client.flushdb()
    print(f"rerun: cd {PROJECT_ROOT} && .venv/bin/python bench/coarse_ring_memory.py "
          f"{' '.join(sys.argv[1:])}".rstrip())  # fmt: skip


if __name__ == "__main__":
    main()
