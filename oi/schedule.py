"""When each symbol is polled. Pure: no Django, Redis or HTTP.

The interval follows the design's formula (§4.2), interval = 60 / (MAX_REQ_PER_MIN / N), clamped
to [MIN_INTERVAL_SEC, MAX_INTERVAL_SEC], with two changes so that it never asks for more than
the budget: the premiumIndex call made once per interval (weight 10) counts as 10 more symbols
while mark prices come from REST (`per_interval_weight`; 0 while the mark-price stream is fresh,
see oi.poller.current_plan), and the result is rounded *up* to 0.1 s instead of to the nearest second (rounding to the nearest
second can exceed the budget by up to 4%, e.g. N = 395 at 2000/min gives 12 s = 2025/min).

Each symbol keeps its own phase inside the interval, a fixed fraction of it from a hash of its
name, so requests leave at a steady rate and a symbol joining or leaving the universe moves no
other symbol; an interval change keeps every symbol's place in the cycle (ScheduleSegment).

With several egress groups (poller hosts with their own IPs, oi.egress), `groups_plan` gives each
symbol a group in proportion to the groups' budgets and the interval that keeps every group
within its own budget; past OI_MAX_INTERVAL_SEC the interval stretches (OverloadBehaviour).
"""

import hashlib
import math
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache

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


@lru_cache(maxsize=8192)
def _stable_rank_key(symbol: str) -> bytes:
    """(Kept per symbol: every dispatch plans the whole universe again, every window.)"""
    return hashlib.blake2b(symbol.encode(), digest_size=8).digest()


@dataclass(frozen=True, slots=True, order=True)
class DuePoll:
    due_ms: int
    symbol: str


def split_into_shards(polls: list[DuePoll], max_per_shard: int) -> list[list[DuePoll]]:
    """Split a window's polls into shards of at most `max_per_shard`, interleaved so that every
    shard spans the whole window (each worker keeps a steady pace instead of one doing the start)."""
    if not polls:
        return []
    n_shards = math.ceil(len(polls) / max_per_shard)
    return [polls[index::n_shards] for index in range(n_shards)]


# --- phases that survive re-planning, and egress groups -------------------------------------------
#
# Each symbol keeps a fixed fraction of the interval (from a hash of its name), so a symbol
# joining or leaving the universe moves no other symbol. The schedule is a list of segments, each
# a time from which one interval holds; a new segment keeps the cycle position the previous one had
# at its start, so a symbol whose last poll was a fraction e of the old interval I1 ago waits
# (1 − e) of the new interval I2: its gap is e·I1 + (1 − e)·I2, never more than max(I1, I2).


def symbol_phase_fraction(symbol: str) -> float:
    """The symbol's fixed place in every interval, in [0, 1)."""
    return int.from_bytes(_stable_rank_key(symbol), "big") / 2**64


@dataclass(frozen=True, slots=True)
class ScheduleSegment:
    """From `start_ms` on, symbol s is due at anchor_ms + (fraction(s) + n) · interval_ms."""

    start_ms: int
    anchor_ms: int
    interval_ms: int


def segment_following(previous: ScheduleSegment | None, *, start_ms: int, interval_ms: int):
    """The segment that starts at `start_ms` with `interval_ms`, at the cycle position the
    previous one had then (so no symbol's gap exceeds the longer of the two intervals)."""
    if interval_ms <= 0:
        raise ValueError("interval_ms must be positive")
    if previous is None:
        return ScheduleSegment(start_ms, 0, interval_ms)
    cycle = ((start_ms - previous.anchor_ms) % previous.interval_ms) / previous.interval_ms
    return ScheduleSegment(start_ms, start_ms - round(cycle * interval_ms), interval_ms)


def segment_polls_due(
    symbols: Iterable[str], segment: ScheduleSegment, start_ms: int, end_ms: int
) -> list[DuePoll]:
    """Every poll of `symbols` due in [start_ms, end_ms) under `segment`, in time order."""
    interval = segment.interval_ms
    due: list[DuePoll] = []
    for symbol in symbols:
        fraction = 0.0 if symbol == MARK_PRICE_JOB else symbol_phase_fraction(symbol)
        phase = segment.anchor_ms + round(fraction * interval)
        due_ms = phase + math.ceil((start_ms - phase) / interval) * interval
        while due_ms < end_ms:
            due.append(DuePoll(due_ms, symbol))
            due_ms += interval
    due.sort(key=lambda poll: (poll.due_ms, poll.symbol))
    return due


def _rendezvous_score(symbol: str, group: str, weight: float) -> float:
    """Weighted rendezvous (highest random weight) score: a group wins a share of the symbols
    proportional to its weight, and a symbol changes group only when its group leaves or a new
    one outbids it."""
    return -weight / math.log(_rendezvous_uniform(symbol, group))


@lru_cache(maxsize=8192)
def _rendezvous_uniform(symbol: str, group: str) -> float:
    """The pair's fixed draw in (0, 1)."""
    digest = hashlib.blake2b(f"{group}\x00{symbol}".encode(), digest_size=8).digest()
    return (int.from_bytes(digest, "big") + 0.5) / 2**64


def groups_assign(
    symbols: Iterable[str], budgets: dict[str, float], *, preloaded: dict[str, int] | None = None
) -> dict[str, str]:
    """Each symbol's egress group: by weighted rendezvous hashing, bounded so that no group holds
    more than its budget's share of the symbols, in whole symbols (a plain hash would leave some group
    several percent over its share, and so over its budget). `preloaded`: weight a group already
    carries per interval (the premiumIndex call). Deterministic: the same symbols and groups
    give the same answer on every host."""
    preloaded = preloaded or {}
    live = {group: budget for group, budget in budgets.items() if budget > 0}
    if not live:
        raise ValueError("no group with a positive budget")
    ordered = sorted(set(symbols), key=_stable_rank_key)
    total = sum(live.values())
    weight = len(ordered) + sum(preloaded.values())
    # each group's share of the weight, in whole symbols by largest remainder (Hamilton)
    quota = {group: weight * budget / total for group, budget in live.items()}
    seats = {group: math.floor(share) for group, share in quota.items()}
    by_remainder = sorted(live, key=lambda group: (seats[group] - quota[group], group))
    for group in by_remainder[: weight - sum(seats.values())]:
        seats[group] += 1
    capacity = {group: seats[group] - preloaded.get(group, 0) for group in live}
    assigned: dict[str, str] = {}
    for symbol in ordered:
        ranked = sorted(
            live, key=lambda group: (-_rendezvous_score(symbol, group, live[group]), group)
        )
        group = next((g for g in ranked if capacity[g] > 0), ranked[0])
        capacity[group] -= 1
        assigned[symbol] = group
    return assigned


class OverloadBehaviour(StrEnum):
    STRETCH = "stretch"
    """The interval stretches past OI_MAX_INTERVAL_SEC: every symbol is still polled, all less
    often, and no IP is asked for more than its budget."""


@dataclass(frozen=True, slots=True)
class GroupPlan:
    interval_sec: float
    assignment: dict[str, str]
    """symbol → group (the mark-price job included, on `mark_group`)."""
    weight_per_min: dict[str, float]
    """The weight each group is planned to spend per minute (≤ its budget)."""
    overloaded: bool
    """True when even the maximum interval would ask a group for more than its budget."""
    wanted_interval_sec: float
    """The interval the budgets allow (before the minimum clamp)."""


def groups_plan(
    symbols: Iterable[str],
    budgets: dict[str, float],
    *,
    min_interval_sec: float,
    max_interval_sec: float,
    per_interval_weight: int = 10,
    budget_share: float = 1.0,
) -> GroupPlan:
    """The interval and each symbol's group for the live groups' usable budgets (weight/min).

    The interval is the shortest that keeps every group within `budget_share` of its budget
    (rounded up to 10 ms, not below the minimum). Above the maximum the interval stretches
    (OverloadBehaviour.STRETCH) rather than asking for more than the budgets hold: every symbol
    keeps being polled."""
    if not 0 < budget_share <= 1:
        raise ValueError("budget_share must be in (0, 1]")
    if min_interval_sec <= 0 or max_interval_sec < min_interval_sec:
        raise ValueError("need 0 < min_interval_sec <= max_interval_sec")
    symbol_list = sorted(set(symbols))
    live = {group: budget for group, budget in budgets.items() if budget > 0}
    if not live:
        raise ValueError("no group with a positive budget")
    # the premiumIndex call goes to the group with the most budget (ties by name)
    mark_group = max(sorted(live), key=lambda group: live[group])
    preloaded = {mark_group: per_interval_weight}
    assignment = groups_assign(symbol_list, live, preloaded=preloaded) if symbol_list else {}
    loads = dict.fromkeys(live, 0)
    for group in assignment.values():
        loads[group] += 1
    if per_interval_weight:
        loads[mark_group] += per_interval_weight
        assignment[MARK_PRICE_JOB] = mark_group
    if not symbol_list and not per_interval_weight:
        loads[mark_group] = 1
    raw = max(60.0 * loads[group] / (live[group] * budget_share) for group in live)
    wanted = math.ceil(round(raw * 100, 6)) / 100
    interval = max(min_interval_sec, wanted)
    return GroupPlan(
        interval_sec=interval,
        assignment=assignment,
        weight_per_min={group: 60.0 * loads[group] / interval for group in live},
        overloaded=wanted > max_interval_sec,
        wanted_interval_sec=wanted,
    )
