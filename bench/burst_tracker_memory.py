"""Memory and CPU of the liquidation-burst trackers (alerts.liquidation_rules), pure, in-process:
what the streams process holds per liquidation in its windows, and what each costs to evaluate.

Feeds one liquidation per symbol per second (Binance's ceiling: at most one per symbol per second)
for --seconds, over --symbols symbols, to trackers running the given rule windows, then prints
the bytes held per liquidation in the windows (tracemalloc) and the time per liquidation, and the
worst case that follows for a full window at that rate.

    .venv/bin/python bench/burst_tracker_memory.py --symbols 650 --seconds 900 --windows 60,300,900
"""

from __future__ import annotations

import argparse
import gc
import random
import sys
import time
import tracemalloc
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from alerts.liquidation_rules import BurstRule, BurstTracker, LiquidatedSide, LiquidationEvent

COMMAND = ".venv/bin/python bench/burst_tracker_memory.py"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--symbols", type=int, default=650)
    parser.add_argument("--seconds", type=int, default=900)
    parser.add_argument("--windows", default="60,300,900")
    args = parser.parse_args()
    windows = [int(w) for w in args.windows.split(",")]
    rules = [
        BurstRule(rule_id=n, name=f"r{n}", window_sec=w, threshold_usd=Decimal(50_000) * (n + 1))
        for n, w in enumerate(windows)
    ]
    symbols = [f"S{n:04d}USDT" for n in range(args.symbols)]

    def liquidations(rng: random.Random, second: int) -> list[LiquidationEvent]:
        """One second's liquidations, as the stream gives them (Decimal USD to 8 places)."""
        return [
            LiquidationEvent(
                second * 1000 + n % 1000,
                LiquidatedSide.LONG if rng.random() < 0.5 else LiquidatedSide.SHORT,
                Decimal(f"{200 * 2.718 ** (4 * rng.random()):.8f}"),
            )
            for n in range(args.symbols)
        ]

    # memory: the windows hold the only reference to each liquidation, as in the process
    trackers = {symbol: BurstTracker(symbol) for symbol in symbols}
    rng = random.Random(7)
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    fired = 0
    for second in range(args.seconds):
        for symbol, event in zip(symbols, liquidations(rng, second), strict=True):
            fired += len(trackers[symbol].observe(event, rules, None))
    gc.collect()
    held_bytes = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    # time: the same liquidations made beforehand, so only the evaluation is timed
    rng = random.Random(7)
    made = [liquidations(rng, second) for second in range(args.seconds)]
    timed = {symbol: BurstTracker(symbol) for symbol in symbols}
    started = time.perf_counter()
    for second_events in made:
        for symbol, event in zip(symbols, second_events, strict=True):
            timed[symbol].observe(event, rules, None)
    elapsed = time.perf_counter() - started
    held = sum(len(w.events) for t in trackers.values() for w in t.windows.values())
    fed = args.symbols * args.seconds
    longest = max(windows)
    print(f"{args.symbols} symbols, one liquidation each per second for {args.seconds} s "
          f"({fed:,} liquidations), rule windows {windows} s: {fired} verdicts")  # fmt: skip
    print(f"  held in the windows   {held:,} liquidation entries, {held_bytes / 2**20:.1f} MiB "
          f"({held_bytes / len(symbols) / min(args.seconds, max(windows)):.0f} B per liquidation held, one entry per window it is in)")  # fmt: skip
    print(f"  evaluation            {1e6 * elapsed / fed:.1f} µs per liquidation "
          f"({len(rules)} rules)")  # fmt: skip
    per_symbol_second = held_bytes / (args.symbols * min(args.seconds, longest))
    print(f"  a full {longest} s window at this rate: {per_symbol_second * args.symbols * longest / 2**20:.0f} MiB; "
          f"at the 3,600 s maximum: {per_symbol_second * args.symbols * 3600 / 2**20:.0f} MiB")  # fmt: skip
    print(
        f"rerun: {COMMAND} --symbols {args.symbols} --seconds {args.seconds} --windows {args.windows}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
