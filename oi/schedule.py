"""When each symbol is polled. Pure: no Django, Redis or HTTP.

The interval follows the design's formula (§4.2), interval = 60 / (MAX_REQ_PER_MIN / N), clamped
to [MIN_INTERVAL_SEC, MAX_INTERVAL_SEC], with two changes so that it never asks for more than
the budget: the premiumIndex call made once per interval (weight 10) counts as 10 more symbols
while mark prices come from REST (`per_interval_weight`; 0 while the mark-price stream is fresh,
see oi.poller.current_interval_sec), and the result is rounded *up* to 0.1 s instead of to the nearest second (rounding to the nearest
second can exceed the budget by up to 4%, e.g. N = 395 at 2000/min gives 12 s = 2025/min).

Each symbol keeps its own phase inside the interval: symbols are ordered by a stable hash and
spread evenly, so requests leave at a steady rate instead of in bursts, and a symbol joining or
leaving the universe moves the others' phases by at most interval / N.
"""

import hashlib
import math
from collections.abc import Iterable
from dataclasses import dataclass

MARK_PRICE_JOB = "*premiumIndex"
"""The once-per-interval premiumIndex call, scheduled at phase 0 like a symbol."""


def poll_interval_sec(
    *,
    n_symbols: int,
    max_weight_per_min: float,
    min_interval_sec: float,
    max_interval_sec: float,
    per_interval_weight: int = 10,
) -> float:
    if max_weight_per_min <= 0:
        raise ValueError("max_weight_per_min must be positive")
    if min_interval_sec <= 0 or max_interval_sec < min_interval_sec:
        raise ValueError("need 0 < min_interval_sec <= max_interval_sec")
    weight_per_interval = max(n_symbols, 1) + per_interval_weight
    raw_interval = 60.0 * weight_per_interval / max_weight_per_min
    rounded_up = math.ceil(round(raw_interval * 10, 6)) / 10
    return min(max_interval_sec, max(min_interval_sec, rounded_up))


def _stable_rank_key(symbol: str) -> bytes:
    return hashlib.blake2b(symbol.encode(), digest_size=8).digest()


def symbol_phases_ms(symbols: Iterable[str], interval_ms: int) -> dict[str, int]:
    """Each symbol's offset inside the interval; the mark-price job holds offset 0."""
    ordered = sorted(set(symbols), key=_stable_rank_key)
    slots = len(ordered) + 1
    phases = {MARK_PRICE_JOB: 0}
    for rank, symbol in enumerate(ordered, start=1):
        phases[symbol] = rank * interval_ms // slots
    return phases


@dataclass(frozen=True, slots=True, order=True)
class DuePoll:
    due_ms: int
    symbol: str


def polls_due(
    phases_ms: dict[str, int], interval_ms: int, start_ms: int, end_ms: int
) -> list[DuePoll]:
    """Every poll due in [start_ms, end_ms), in time order (a window may hold several cycles)."""
    if end_ms <= start_ms:
        return []
    due: list[DuePoll] = []
    for symbol, phase in phases_ms.items():
        first_cycle = math.ceil((start_ms - phase) / interval_ms)
        due_ms = phase + first_cycle * interval_ms
        while due_ms < end_ms:
            due.append(DuePoll(due_ms, symbol))
            due_ms += interval_ms
    due.sort(key=lambda poll: (poll.due_ms, poll.symbol))
    return due


def split_into_shards(polls: list[DuePoll], max_per_shard: int) -> list[list[DuePoll]]:
    """Split a window's polls into shards of at most `max_per_shard`, interleaved so that every
    shard spans the whole window (each worker keeps a steady pace instead of one doing the start)."""
    if not polls:
        return []
    n_shards = math.ceil(len(polls) / max_per_shard)
    return [polls[index::n_shards] for index in range(n_shards)]
