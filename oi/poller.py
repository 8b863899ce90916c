"""The realtime open-interest poller: what is due when (dispatch), and running a shard.

Beat fires `poll_dispatch` every OI_WINDOW_SEC. Dispatch claims each upcoming window once in
Redis (so a second beat started by mistake adds nothing), lists the polls due in it (each symbol
at its own phase, see oi.schedule) and splits them into shards. A shard hands its polls to the
process's poll loop, which sends each at its due time over non-blocking connections. One
flusher per process gathers what came back to every shard it runs and hands it, within
OI_BATCH_FLUSH_MS, as one checked batch to the sample pipeline (oi.pipeline: Postgres, the
ring, the feed, the alerts).
"""

import asyncio
import hashlib
import json
import logging
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from functools import lru_cache

from django.conf import settings
from django.db import close_old_connections, connections
from django.utils import timezone

from common.errors import InvalidInput
from common.redis import get_redis
from common.timeutil import ms_from_datetime, now_ms
from exchange.budget import Booking
from exchange.client import BinanceFuturesClient, OpenInterest, PremiumIndex
from exchange.errors import BudgetExhausted, ExchangeError
from exchange.factory import build_client
from exchange.streams import MarkPriceUpdate
from liquidity.selectors import (
    liquid_symbol_list,
    universe_published_membership,
    universe_symbols_published,
)
from oi.batches import SnapshotRow, amount_checked, exchange_sample_row
from oi.egress import (
    group_plan_read,
    group_plan_record,
    groups_live,
    own_budget,
    own_egress_id,
    worker_starts,
)
from oi.keys import (
    BACKFILL_DONE_KEY,
    BACKFILL_QUEUED_KEY,
    CONSECUTIVE_FAILURES_KEY,
    COUNTERS_KEY,
    EPOCH_KEY,
    LAST_FAILURE_KEY,
    LAST_WINDOW_KEY,
    MARK_PRICE_KEY,
    MARK_SOURCE_LAST_KEY,
    PLAN_SIGNATURE_KEY,
    SEGMENTS_KEY,
    SHARD_STARTED_KEY,
    STATUS_KEY,
    UNIVERSE_REQUESTED_KEY,
    WEIGHT_BUCKET_KEY,
    WINDOW_CLAIM_KEY,
)
from oi.models import SnapshotSource
from oi.pipeline import BatchOrigin, SampleBatch, sample_batch_process
from oi.ring import RingSample, ring_append
from oi.schedule import (
    MARK_PRICE_JOB,
    DuePoll,
    GroupPlan,
    ScheduleSegment,
    groups_plan,
    segment_following,
    segment_polls_due,
    split_into_shards,
)
from streams.selectors import mark_price_stream_fresh
from streams.services import MarkPriceSource
from streams.services import mark_prices_store as mark_prices_write

logger = logging.getLogger(__name__)

BACKFILL_QUEUED_TTL_SEC = 120


# Windows planned ahead by each dispatch (each claimed once), so that a dispatch running late,
# behind busy worker processes, still plans every window in time, and so that a beat restart
# misses none: after the last dispatch, 5 windows (10-12 s at 2 s) cover systemd's RestartSec=5
# (respawn.sh waits 2 s) and a beat start of up to 5 s on a loaded machine. At 3 windows a
# SIGKILLed beat that took 6.8 s to start again on a loaded CI machine missed a window, and a
# symbol waited two intervals. A SIGKILLed oi_poll worker takes these windows' reserved shards
# with it; they are planned again when its successor starts (worker_starts in the signature).
DISPATCH_LOOKAHEAD_WINDOWS = 5


@dataclass(frozen=True)
class ShardPlan:
    window_start_ms: int
    window_end_ms: int
    polls: list[tuple[int, str]]
    """(due time in ms, symbol or MARK_PRICE_JOB), in time order."""
    egress_id: str = ""
    """The group whose queue (oi.egress.poll_queue) runs it."""
    epoch: int = 0
    """The plan it belongs to: a shard whose window was re-planned since is dropped unrun."""


@dataclass(frozen=True)
class DispatchPlan:
    shards: list[ShardPlan]
    backfill: list[str]
    n_symbols: int
    interval_sec: float


def universe_symbols() -> list[str]:
    """The liquid universe from Redis, or from Postgres (re-published) if Redis lost it."""
    symbols = universe_symbols_published()
    if symbols:
        return sorted(symbols)
    from_postgres = [member.symbol for member in liquid_symbol_list()]
    if from_postgres:
        from liquidity.services import universe_publish_to_redis

        universe_publish_to_redis()
    return sorted(from_postgres)


def universe_refresh_requested() -> bool:
    """True for the first caller in a minute: the universe is empty, someone should fill it."""
    return bool(get_redis().set(UNIVERSE_REQUESTED_KEY, 1, nx=True, ex=60))


PREMIUM_INDEX_WEIGHT = 10
PLAN_BUDGET_SHARE = 0.99
"""The share of a group's budget the schedule plans to spend. The rest lets the budget's queue
drain: polls due at once (a window's overdue polls after a gap in dispatching, the premiumIndex
call) or bunched by their hashed phases wait behind each other, and at 100% such a queue, once
built, never drains (every poll then left up to a second late, and booked its slot in two
calls instead of one; bench/poller_budget.py)."""
SHARD_LEAD_MS = 250
"""A shard is queued to start this long before its window (oi.tasks)."""
SEGMENTS_KEPT = 20


def planned_budgets(*, at_ms: int | None = None) -> dict[str, float]:
    """The live groups' usable budgets (weight/min); with no heartbeat at all (a poller worker
    not started yet, or a single host whose worker runs without one), this host's own group."""
    live = groups_live(at_ms=at_ms)
    if live:
        return {group.egress_id: group.budget.usable_per_min for group in live}
    return {own_egress_id(): own_budget().usable_per_min}


def current_plan(
    symbols: list[str], *, rest_mark_prices: bool = True, budgets: dict[str, float] | None = None
) -> GroupPlan:
    """The interval and each symbol's group for the live groups; the premiumIndex call's weight
    counts only while mark prices come from REST (while the stream is fresh, that weight goes to
    open-interest polls)."""
    budgets = planned_budgets() if budgets is None else budgets
    return _groups_plan_cached(
        tuple(symbols),
        tuple(sorted(budgets.items())),
        settings.OI_MIN_INTERVAL_SEC,
        settings.OI_MAX_INTERVAL_SEC,
        PREMIUM_INDEX_WEIGHT if rest_mark_prices else 0,
    )


@lru_cache(maxsize=2)
def _groups_plan_cached(
    symbols: tuple[str, ...],
    budgets: tuple[tuple[str, float], ...],
    min_interval_sec: float,
    max_interval_sec: float,
    per_interval_weight: int,
) -> GroupPlan:
    """The plan of the last inputs seen, kept: every dispatch (each window) asks again, and the
    universe and the groups rarely change between two. (Callers only read the plan.)"""
    return groups_plan(
        symbols,
        dict(budgets),
        min_interval_sec=min_interval_sec,
        max_interval_sec=max_interval_sec,
        per_interval_weight=per_interval_weight,
        budget_share=PLAN_BUDGET_SHARE,
    )


def _mark_source_now() -> MarkPriceSource:
    """The stream while it is fresh; REST (premiumIndex) otherwise."""
    return MarkPriceSource.STREAM if mark_price_stream_fresh() else MarkPriceSource.REST


def _segments_read(redis) -> list[ScheduleSegment]:
    raw = redis.get(SEGMENTS_KEY)
    return [ScheduleSegment(*entry) for entry in json.loads(raw)] if raw else []


def _segment_at(segments: list[ScheduleSegment], at_ms: int) -> ScheduleSegment | None:
    return next((seg for seg in reversed(segments) if seg.start_ms <= at_ms), None)


def _segment_for(
    redis, segments: list[ScheduleSegment], *, start_ms: int, interval_ms: int
) -> ScheduleSegment:
    """The segment in force from `start_ms` (a window planned now): the one in force then if it
    has this interval, else a new one from there (later ones, superseded, dropped)."""
    previous = _segment_at(segments, start_ms)
    if previous is not None and previous.interval_ms == interval_ms:
        return previous
    segment = segment_following(previous, start_ms=start_ms, interval_ms=interval_ms)
    kept = [seg for seg in segments if seg.start_ms < start_ms][-SEGMENTS_KEPT:]
    segments[:] = [*kept, segment]
    redis.set(
        SEGMENTS_KEY,
        json.dumps([[seg.start_ms, seg.anchor_ms, seg.interval_ms] for seg in segments]),
        ex=86_400,
    )
    return segment


def poller_dispatch(*, at_ms: int | None = None) -> DispatchPlan:
    """Plan the next windows (each claimed once across all dispatchers) and the backfills.

    Each symbol goes to one live egress group (oi.schedule.groups_plan), each group's polls to
    its own shards. When the set of groups (or a usable budget, a group's worker, the mark-price
    source, the universe) changes, the windows already planned but not started are planned
    again, so a dead group's symbols are taken over, and a new group is used, from the next
    window on; the shards planned before are dropped unrun (their epoch is no longer their
    window's)."""
    at_ms = at_ms or now_ms()
    redis = get_redis()
    symbols = universe_symbols()
    window_ms = int(settings.OI_WINDOW_SEC * 1000)
    current_window = at_ms // window_ms
    mark_source = _mark_source_now()
    rest_marks = mark_source is MarkPriceSource.REST
    budgets = planned_budgets(at_ms=at_ms)
    plan = current_plan(symbols, rest_mark_prices=rest_marks, budgets=budgets)
    interval_sec = plan.interval_sec
    interval_ms = round(interval_sec * 1000)
    # What the windows planned ahead depend on: the groups, their budgets, when each group's
    # worker last started (a SIGKILLed worker took the shards it had reserved with it; planned
    # again, its symbols are polled from the next window after the new worker's start, not 5
    # windows later), the mark-price source (premiumIndex calls stop, or start, with the next
    # window rather than after the windows planned ahead) and the universe (a newcomer is polled
    # from the next window on).
    starts = worker_starts()
    signature = json.dumps(
        {
            "groups": [
                [group, budget, starts.get(group, 0)] for group, budget in sorted(budgets.items())
            ],
            "markPrices": str(mark_source),
            "universe": hashlib.blake2b(
                ",".join(sorted(symbols)).encode(), digest_size=8
            ).hexdigest(),
        }
    )
    previous_signature = redis.getset(PLAN_SIGNATURE_KEY, signature)
    plan_inputs_changed = previous_signature is not None and previous_signature != signature
    # the groups of the last plan that are in this one no more, with their symbols then (read
    # before this plan is recorded over it)
    departed_groups_members: dict[str, list[str]] = {}
    if plan_inputs_changed:
        redis.hincrby(COUNTERS_KEY, "replans", 1)
        logger.info(
            "the universe, the egress groups, a group's worker or the mark-price source changed: "
            "windows not started are planned again",
            extra={"plan": signature, "before": previous_signature},
        )
        departed_groups_members = {
            group: record.get("symbols", [])
            for group, record in group_plan_read().items()
            if group not in budgets
        }
    _status_record(n_symbols=len(symbols), plan=plan, budgets=budgets, at_ms=at_ms)
    previous_source = redis.getset(MARK_SOURCE_LAST_KEY, mark_source)
    if not symbols:
        return DispatchPlan([], [], 0, interval_sec)

    by_group: dict[str, list[str]] = {}
    for symbol, group in plan.assignment.items():
        if rest_marks or symbol != MARK_PRICE_JOB:
            by_group.setdefault(group, []).append(symbol)
    epoch = redis.incr(EPOCH_KEY)
    shards: list[ShardPlan] = []
    mark_group = plan.assignment.get(MARK_PRICE_JOB)
    if rest_marks and previous_source == MarkPriceSource.STREAM and mark_group:
        # The stream went stale: the windows planned ahead hold no premiumIndex call, so one is
        # sent now (REST within this window), not a whole interval later.
        logger.warning("mark-price stream stale: mark prices from REST premiumIndex")
        # (epoch 0: outside the window plans, never superseded by a re-plan)
        shards.append(ShardPlan(at_ms, at_ms + window_ms, [(at_ms, MARK_PRICE_JOB)], mark_group))
    segments = _segments_read(redis)
    # The current window too: it is normally claimed already (by an earlier dispatch's
    # lookahead), but after a gap in dispatching (beat restarting) its polls are sent at once
    # rather than each of its symbols waiting a whole extra interval.
    for window in range(current_window, current_window + 1 + DISPATCH_LOOKAHEAD_WINDOWS):
        start_ms, end_ms = window * window_ms, (window + 1) * window_ms
        claim_key = WINDOW_CLAIM_KEY.format(window)
        not_started = start_ms - SHARD_LEAD_MS > at_ms
        if not redis.set(claim_key, epoch, nx=True, ex=300):
            if not (plan_inputs_changed and not_started):
                if departed_groups_members:  # (a window under way is not planned again)
                    shards += _taken_over(
                        redis, departed_groups_members, segments, plan.assignment, window,
                        window_ms, at_ms,
                    )  # fmt: skip
                continue
            redis.set(claim_key, epoch, ex=300)
        segment = _segment_for(redis, segments, start_ms=start_ms, interval_ms=interval_ms)
        for group, members in sorted(by_group.items()):
            due = segment_polls_due(members, segment, start_ms, end_ms)
            shard_start = start_ms
            if window == current_window:
                shard_start = at_ms
                due = [DuePoll(max(poll.due_ms, at_ms), poll.symbol) for poll in due]
            for shard in split_into_shards(due, settings.OI_SHARD_MAX_POLLS):
                polls = [(poll.due_ms, poll.symbol) for poll in shard]
                shards.append(ShardPlan(shard_start, end_ms, polls, group, epoch))
    _missed_windows_check(current_window)
    return DispatchPlan(shards, _symbols_needing_backfill(symbols), len(symbols), interval_sec)


def _taken_over(
    redis,
    departed: dict[str, list[str]],
    segments: list[ScheduleSegment],
    assignment: dict[str, str],
    window: int,
    window_ms: int,
    at_ms: int,
) -> list[ShardPlan]:
    """A window already under way, planned in part to groups now gone: the polls of each whose
    shard of it never started (its worker stopped, or died, with the shard reserved) go to the
    groups that have those symbols now, sent at once where due. Epoch 0: a later re-plan does not
    drop them (their window is not planned again)."""
    segment = _segment_at(segments, window * window_ms)
    if segment is None:
        return []
    groups = sorted(departed)
    started = redis.mget([SHARD_STARTED_KEY.format(window=window, group=g) for g in groups])
    start_ms, end_ms = window * window_ms, (window + 1) * window_ms
    by_group: dict[str, list[DuePoll]] = {}
    for group, stamp in zip(groups, started, strict=True):
        if stamp is not None:
            continue
        members = [symbol for symbol in departed[group] if symbol in assignment]
        for poll in segment_polls_due(members, segment, start_ms, end_ms):
            taken = DuePoll(max(poll.due_ms, at_ms), poll.symbol)
            by_group.setdefault(assignment[poll.symbol], []).append(taken)
    shards = [
        ShardPlan(max(start_ms, at_ms), end_ms, [(p.due_ms, p.symbol) for p in shard], group)
        for group, polls in sorted(by_group.items())
        for shard in split_into_shards(sorted(polls), settings.OI_SHARD_MAX_POLLS)
    ]
    if shards:
        taken_count = sum(len(shard.polls) for shard in shards)
        redis.hincrby(COUNTERS_KEY, "polls_taken_over", taken_count)
        logger.info(
            "a window under way had polls of a group gone: the others take them",
            extra={"window": window, "groups": groups, "polls": taken_count},
        )
    return shards


def shard_started_record(shard: ShardPlan) -> None:
    """This group's shard of its window has started (see _taken_over)."""
    if shard.epoch and shard.egress_id:
        window = shard.window_end_ms // int(settings.OI_WINDOW_SEC * 1000) - 1
        key = SHARD_STARTED_KEY.format(window=window, group=shard.egress_id)
        get_redis().set(key, 1, ex=300)


def shard_still_planned(shard: ShardPlan) -> bool:
    """False when the shard's window was planned again since (the groups changed): dropped."""
    if not shard.epoch:
        return True
    window = shard.window_end_ms // int(settings.OI_WINDOW_SEC * 1000) - 1
    claimed = get_redis().get(WINDOW_CLAIM_KEY.format(window))
    if claimed is None or int(claimed) == shard.epoch:
        return True
    get_redis().hincrby(COUNTERS_KEY, "shards_replanned", 1)
    return False


def _missed_windows_check(current_window: int) -> None:
    redis = get_redis()
    previous = redis.getset(LAST_WINDOW_KEY, current_window + DISPATCH_LOOKAHEAD_WINDOWS)
    if previous is None:
        return
    # windows after the last planned one and before the current one (which is planned now)
    missed = current_window - 1 - int(previous)
    if missed > 0:
        redis.hincrby(COUNTERS_KEY, "windows_missed", missed)
        logger.warning("poll windows missed: dispatch ran late", extra={"windows": missed})


def _status_record(
    *, n_symbols: int, plan: GroupPlan, budgets: dict[str, float], at_ms: int
) -> None:
    get_redis().hset(
        STATUS_KEY,
        mapping={
            "n_symbols": n_symbols,
            "interval_sec": plan.interval_sec,
            "wanted_interval_sec": plan.wanted_interval_sec,
            "overloaded": int(plan.overloaded),
            "window_sec": settings.OI_WINDOW_SEC,
            "max_req_per_min": round(sum(budgets.values())),
            "dispatched_at_ms": at_ms,
        },
    )
    members: dict[str, list[str]] = {group: [] for group in budgets}
    for symbol, group in plan.assignment.items():
        if symbol != MARK_PRICE_JOB:
            members[group].append(symbol)
    group_plan_record(
        {
            group: {
                "usablePerMin": budgets[group],
                "plannedWeightPerMin": round(plan.weight_per_min[group], 1),
                "symbols": sorted(members[group]),
                "markPrices": plan.assignment.get(MARK_PRICE_JOB) == group,
            }
            for group in budgets
        }
    )


def _symbols_needing_backfill(symbols: list[str]) -> list[str]:
    """Symbols whose ring buffer was never backfilled (new, or expired), claimed for queuing."""
    redis = get_redis()
    # One MGET, not a pipeline of one EXISTS per symbol: this runs every window for the whole
    # universe, and 400 commands cost the poller more CPU than one with 400 keys.
    stamps = redis.mget([BACKFILL_DONE_KEY.format(symbol) for symbol in symbols])
    candidates = [symbol for symbol, stamp in zip(symbols, stamps, strict=True) if stamp is None]
    if not candidates:
        return []
    with redis.pipeline(transaction=False) as pipe:
        for symbol in candidates:
            pipe.set(BACKFILL_QUEUED_KEY.format(symbol), 1, nx=True, ex=BACKFILL_QUEUED_TTL_SEC)
        claimed = pipe.execute()
    return [symbol for symbol, ok in zip(candidates, claimed, strict=True) if ok]


# --- running a shard -----------------------------------------------------------------------------

_thread_clients = threading.local()


def _poller_client() -> BinanceFuturesClient:
    """This thread's blocking client (the poll loop has one of its own)."""
    client = getattr(_thread_clients, "client", None)
    if client is None:
        client = _thread_clients.client = _client_build()
    return client


def _client_build() -> BinanceFuturesClient:
    return build_client(
        "poller",
        max_wait=settings.OI_POLL_MAX_BUDGET_WAIT_SEC,
        max_retries=settings.OI_POLL_MAX_RETRIES,
        read_timeout=settings.OI_POLL_READ_TIMEOUT_SEC,
    )


_process_lock = threading.Lock()


class _PollLoop:
    """One per process: an event loop in a thread of its own that sends the polls of every shard
    the process runs (a thread-pool worker runs several at once), each at its due time.

    A poll waits for the shared budget and for its answer as a coroutine (at most
    OI_SHARD_THREADS in flight), over the client's non-blocking kept-alive connections
    (``BinanceFuturesClient.open_interest_async``): no thread per poll to wake, and no hand-off
    between threads but the answer's to the flusher. The budget's bookings are short Redis calls
    made as they are, in this thread; its waits are the loop's. The premiumIndex call (its mark
    prices are written through the streams app) and, through a proxy, every poll run on the
    blocking client in a small thread pool instead."""

    def __init__(self) -> None:
        self._loop = _new_event_loop()
        self._blocking = ThreadPoolExecutor(max_workers=2, thread_name_prefix="oi-poll")
        self._client: BinanceFuturesClient | None = None
        self._in_flight: asyncio.Semaphore | None = None
        self._tasks: set[asyncio.Task] = set()
        self._ticks: dict[int, list[_Poll]] = {}
        """Polls not sent yet, by the tick (OI_SEND_TICK_MS) they are sent in."""
        self._thread = threading.Thread(target=self._loop.run_forever, name="oi-poll-loop",
                                        daemon=True)  # fmt: skip
        self._thread.start()

    def send(self, polls: list[tuple[int, "_Poll"]]) -> None:
        """Send each poll at its due time (epoch ms); each goes to its flusher once answered."""
        self._loop.call_soon_threadsafe(self._schedule, polls)

    def close(self) -> None:
        """Stop the loop (tests: a process's poller otherwise lives as long as it)."""
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._blocking.shutdown(wait=False)

    def _schedule(self, polls: list[tuple[int, "_Poll"]]) -> None:
        """Each poll goes in the tick of its due time (of every shard this process runs), and
        each tick's polls leave together when it ends: their answers come back together, and
        the flusher stores them as one batch as soon as the last is in (``_PollFlusher``)
        instead of gathering answers that trickle in one by one. A poll so leaves up to a
        tick after its due time (never before it), by the same amount every interval: its
        phase moves, its interval does not."""
        at_ms = now_ms()
        tick_ms = max(settings.OI_SEND_TICK_MS, 1)
        for due_ms, poll in polls:
            tick = -(-due_ms // tick_ms)  # the first tick at or after its due time
            if (waiting := self._ticks.get(tick)) is None:
                waiting = self._ticks[tick] = []
                start_in_ms = max(tick * tick_ms - at_ms, 0)
                self._loop.call_later(start_in_ms / 1000, self._tick_start, tick)
            waiting.append(poll)

    def _tick_start(self, tick: int) -> None:
        """Send a tick's polls; their budget bookings are made together, in one round trip."""
        polls = [poll for poll in self._ticks.pop(tick, ()) if not poll.given_up]
        if self._client is None:
            self._client = _client_build()
        sent_async = [poll for poll in polls if self._sends_async(poll.symbol)]
        bookings: dict[_Poll, Booking] = {}
        if len(sent_async) > 1:
            try:
                booked = self._client.open_interest_book_ahead(len(sent_async))
                bookings = dict(zip(sent_async, booked, strict=True))
            except ExchangeError:  # the budget's store unreachable: each poll tries on its own
                pass
        for poll in polls:
            poll.run.flusher.sent_add()
            task = self._loop.create_task(self._send_one(poll, bookings.get(poll)))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    def _sends_async(self, symbol: str) -> bool:
        """(The client is built by the tick that sends the poll.)"""
        return symbol != MARK_PRICE_JOB and self._client is not None and self._client.sends_async

    async def _send_one(self, poll: "_Poll", booked: Booking | None) -> None:
        if self._in_flight is None:
            self._in_flight = asyncio.Semaphore(settings.OI_SHARD_THREADS)
        try:
            if booked is not None and (wait_s := booked.wait_left()) > 0:
                # Towards the booked slot outside the in-flight limit: held while waiting for
                # the budget, the limit let 16 polls leave per wait (8 a second behind a 2 s
                # queue) while the ticks went on booking at the planned rate; the queue grew
                # until whole minutes of polls were given up (a restart with a queue to catch up).
                await asyncio.sleep(wait_s)
            async with self._in_flight:
                if not poll.given_up:  # (its shard's deadline may pass while it waits for a slot)
                    poll.result = await self._poll(poll.symbol, booked)
        except Exception as exc:  # noqa: BLE001 - whatever failed is the poll's outcome
            poll.error = exc
        finally:
            poll.run.flusher.completed_add(poll)

    async def _poll(self, symbol: str, booked: Booking | None) -> OpenInterest | None:
        if not self._sends_async(symbol):
            return await self._loop.run_in_executor(self._blocking, _poll_one, symbol)
        return await self._client.open_interest_async(symbol, booked=booked)


def _new_event_loop() -> asyncio.AbstractEventLoop:
    """uvloop's (what the ASGI server runs) where installed: less CPU per poll."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - a runtime requirement; the fallback is asyncio's
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


_poll_loops: dict[int, _PollLoop] = {}


def _poll_loop() -> _PollLoop:
    """This process's poll loop (made once, under a lock; again in a forked child)."""
    with _process_lock:
        if (poll_loop := _poll_loops.get(os.getpid())) is None:
            poll_loop = _poll_loops[os.getpid()] = _PollLoop()
        return poll_loop


@dataclass
class ShardOutcome:
    samples: list[OpenInterest] = field(default_factory=list)
    failures: dict[str, str] = field(default_factory=dict)
    dropped_late: int = 0


def _polls_of_members(polls: list[tuple[int, str]]) -> list[tuple[int, str]]:
    """The polls whose symbol is still in the universe: a shard planned before a symbol left
    does not poll it again. (With no universe published at all, every poll stays.)"""
    if not polls:
        return polls
    members = universe_published_membership([symbol for _, symbol in polls])
    if members is None:
        return polls
    return [
        poll
        for poll, member in zip(polls, members, strict=True)
        if member or poll[1] == MARK_PRICE_JOB
    ]


def poller_run_shard(plan: ShardPlan) -> ShardOutcome:
    """Send each poll at its due time; what comes back is stored by the process's flusher
    (``_PollFlusher``). Returns once every poll is stored, or given up at the shard's deadline.
    Late shards are dropped whole."""
    outcome = ShardOutcome()
    lateness_ms = now_ms() - plan.window_start_ms
    if lateness_ms > settings.OI_WINDOW_SEC * 1000 / 2:
        outcome.dropped_late = len(plan.polls)
        get_redis().hincrby(COUNTERS_KEY, "polls_dropped_late", len(plan.polls))
        logger.warning(
            "poll shard dropped: it would run late",
            extra={"late_ms": lateness_ms, "polls": len(plan.polls)},
        )
        return outcome

    shard_started_record(plan)
    polls = _polls_of_members(plan.polls)
    flusher = _flusher()
    run, scheduled = flusher.run_open(outcome, polls)
    try:
        # The poll loop sends each at its due time; the flusher stores what comes back.
        _poll_loop().send(scheduled)
        last_due_ms = max((due_ms for due_ms, _ in polls), default=now_ms())
        deadline = (
            time.monotonic()
            + max(last_due_ms - now_ms(), 0) / 1000
            + settings.OI_POLL_READ_TIMEOUT_SEC * 2
            + 1
        )
        given_up = flusher.run_wait(run, deadline=deadline)
        run.raise_store_error()
    finally:
        flusher.run_close(run)
    for symbol in given_up:
        outcome.failures[symbol] = "TimeoutError: no answer within the shard's deadline"
    if given_up:
        _failures_record(
            get_redis(), ok_symbols=[], failures={s: outcome.failures[s] for s in given_up},
            weight=sum(_poll_weight(s) for s in given_up), at_ms=now_ms(),
        )  # fmt: skip
    return outcome


def _poll_weight(symbol: str) -> int:
    return 10 if symbol == MARK_PRICE_JOB else 1


@dataclass(eq=False)
class _ShardRun:
    """A running shard as the flusher sees it: its outcome and its polls not stored yet."""

    outcome: ShardOutcome
    flusher: "_PollFlusher"
    pending: set["_Poll"] = field(default_factory=set)
    """Polls neither stored nor given up (sent or not yet)."""
    store_error: BaseException | None = None
    """Why a batch holding one of its polls could not be stored (raised in the shard)."""

    def raise_store_error(self) -> None:
        if self.store_error is not None:
            raise self.store_error


@dataclass(eq=False)
class _Poll:
    symbol: str
    run: _ShardRun
    result: OpenInterest | None = None
    error: Exception | None = None
    taken: bool = False
    """In a batch the flusher is storing."""
    given_up: bool = False
    """Past its shard's deadline: never stored."""


# How often the flusher lets Django close a broken or expired database connection.
CONNECTION_CHECK_EVERY_SEC = 1.0


class _PollFlusher:
    """One per process: stores the completed polls of every shard the process runs (a thread-pool
    worker runs several at once) as one batch.

    The first poll completed after a batch opens the next; the batch closes as soon as no poll
    sent is still awaiting its answer (the poll loop sends a tick's polls together, so that is
    when a tick's answers are all in), and OI_BATCH_FLUSH_MS after it opened at the latest. A
    sample so waits for its tick's slowest answer, and never more than OI_BATCH_FLUSH_MS, while
    the process stores about one batch per tick, and none while nothing comes back."""

    def __init__(self) -> None:
        lock = threading.Lock()
        self._cv = threading.Condition(lock)
        self._batch_ready = threading.Condition(lock)
        """Wakes the flusher thread alone (the shards wait on ``_cv``)."""
        self._sent = 0
        """Polls sent and not completed yet."""
        self._completed: list[_Poll] = []
        self._runs: set[_ShardRun] = set()
        self._thread = threading.Thread(target=self._serve, name="oi-flush", daemon=True)
        self._thread.start()

    def run_open(
        self, outcome: ShardOutcome, polls: list[tuple[int, str]]
    ) -> tuple[_ShardRun, list[tuple[int, _Poll]]]:
        """A shard's run and its polls (with their due times), every one pending."""
        run = _ShardRun(outcome, self)
        scheduled = [(due_ms, _Poll(symbol, run)) for due_ms, symbol in polls]
        with self._cv:
            run.pending.update(poll for _, poll in scheduled)
            self._runs.add(run)
        return run, scheduled

    def sent_add(self) -> None:
        """A poll leaves (its answer is awaited: a batch open meanwhile waits for it)."""
        with self._cv:
            self._sent += 1

    def completed_add(self, poll: _Poll) -> None:
        """A poll answered (or failed): into the next batch, unless its shard gave it up."""
        with self._cv:
            self._sent -= 1
            if poll.given_up:
                return
            self._completed.append(poll)
            if len(self._completed) == 1 or self._sent <= 0:
                self._batch_ready.notify()

    def run_wait(self, run: _ShardRun, *, deadline: float) -> list[str]:
        """Until every poll of ``run`` is stored, a batch holding one of them could not be, or
        ``deadline`` (time.monotonic()); then the polls not being stored (sent or not) are given
        up. Returns their symbols."""
        with self._cv:
            while (
                run.pending
                and run.store_error is None
                and (left := deadline - time.monotonic()) > 0
            ):
                self._cv.wait(left)
            return [poll.symbol for poll in self._give_up(run)]

    def run_close(self, run: _ShardRun) -> None:
        """The shard is over: what it has not had stored is given up (it stopped on an error),
        and once any batch holding its polls is stored, the flusher forgets it."""
        with self._cv:
            self._give_up(run)
            while run.pending:
                self._cv.wait()
            self._runs.discard(run)
            self._cv.notify_all()

    def _give_up(self, run: _ShardRun) -> list[_Poll]:
        """(Under the lock.) Give up ``run``'s polls that no batch holds yet."""
        given_up = [poll for poll in run.pending if not poll.taken]
        if not given_up:
            return []
        for poll in given_up:
            poll.given_up = True
            run.pending.discard(poll)
        self._completed = [poll for poll in self._completed if not poll.given_up]
        return given_up

    def _serve(self) -> None:
        connection_check_at = 0.0
        while True:
            with self._cv:
                while not self._completed:
                    self._batch_ready.wait()
                closes_at = time.monotonic() + settings.OI_BATCH_FLUSH_MS / 1000
                while self._sent > 0 and (left := closes_at - time.monotonic()) > 0:
                    self._batch_ready.wait(left)
                batch, self._completed = self._completed, []
                for poll in batch:
                    poll.taken = True
            error = None
            try:
                _polls_store(batch)
            except Exception as exc:  # raised in its shards; the flusher goes on
                error = exc
                logger.exception(
                    "poll batch not stored", extra={"cause": repr(exc), "polls": len(batch)}
                )
            if error is not None or time.monotonic() >= connection_check_at:
                # What Celery does around each task: drop a broken or old connection (the
                # next use checks the new one first). Not after every batch: that check is
                # a query of its own.
                close_old_connections()
                connection_check_at = time.monotonic() + CONNECTION_CHECK_EVERY_SEC
            with self._cv:
                for poll in batch:
                    if error is not None:
                        poll.run.store_error = error
                    poll.run.pending.discard(poll)
                if not any(run.pending for run in self._runs):
                    # Nothing more to store now: hand the database connection back before the
                    # shards return (a test's database can then be dropped; the next batch
                    # connects again).
                    connections.close_all()
                self._cv.notify_all()


_flushers: dict[int, _PollFlusher] = {}


def _flusher() -> _PollFlusher:
    """This process's flusher (made once, under a lock; again in a forked child)."""
    with _process_lock:
        if (flusher := _flushers.get(os.getpid())) is None:
            flusher = _flushers[os.getpid()] = _PollFlusher()
        return flusher


def _polls_store(batch: list[_Poll]) -> None:
    """Store the completed polls of every running shard as one batch, and note each in its
    shard's outcome."""
    samples: list[OpenInterest] = []
    failures: dict[str, str] = {}
    for poll in batch:
        if (error := poll.error) is not None:
            failures[poll.symbol] = f"{type(error).__name__}: {error}"
            poll.run.outcome.failures[poll.symbol] = failures[poll.symbol]
        elif poll.result is not None:
            samples.append(poll.result)
            poll.run.outcome.samples.append(poll.result)
    poll_results_store(samples, failures, weight=sum(_poll_weight(poll.symbol) for poll in batch))


def _poll_one(symbol: str) -> OpenInterest | None:
    client = _poller_client()
    if symbol == MARK_PRICE_JOB:
        mark_prices_store(client.premium_index())
        return None
    return client.open_interest(symbol)


def mark_prices_store(indexes: list[PremiumIndex]) -> None:
    """The REST fallback's mark prices and funding rates, written through the streams app (the
    store's owner); an impossible mark price (negative, 1e40) is dropped and logged, the symbol
    keeping its previous one."""
    mark_prices_write(
        [
            MarkPriceUpdate(
                symbol=index.symbol,
                mark_price=index.mark_price,
                index_price=index.index_price,
                estimated_settle_price=index.estimated_settle_price,
                funding_rate=index.last_funding_rate,
                next_funding_time_ms=(
                    ms_from_datetime(index.next_funding_time) if index.next_funding_time else None
                ),
                event_time_ms=ms_from_datetime(index.time),
            )
            for index in indexes
            if _mark_price_ok(index)
        ],
        source=MarkPriceSource.REST,
    )


def _mark_price_ok(index: PremiumIndex) -> bool:
    try:
        amount_checked(index.mark_price, field="markPrice", row=None)
    except InvalidInput as exc:
        logger.warning("mark price dropped", extra={"symbol": index.symbol, "cause": str(exc)})
        return False
    return True


def _checked_rows(
    samples: list[OpenInterest], marks: dict[str, Decimal], failures: dict
) -> list[SnapshotRow]:
    """The samples as rows through the ingest API's rules (oi.batches); a sample that fails
    them is dropped and logged with its symbol and cause (as a failure of its poll)."""
    rows = []
    now = timezone.now()
    max_ahead = timedelta(seconds=settings.OI_MAX_CLOCK_AHEAD_SEC)
    for sample in samples:
        fields = dict(symbol=sample.symbol, ts=sample.time, open_interest=sample.open_interest,
                      source=SnapshotSource.REALTIME, now=now, max_ahead=max_ahead)  # fmt: skip
        try:
            try:
                rows.append(exchange_sample_row(mark_price=marks.get(sample.symbol), **fields))
            except InvalidInput as exc:
                if exc.field != "markPrice":
                    raise
                rows.append(exchange_sample_row(mark_price=None, **fields))
        except InvalidInput as exc:
            failures[sample.symbol] = f"InvalidInput: {exc}"
    return rows


def poll_results_store(
    samples: list[OpenInterest], failures: dict[str, str], *, weight: int
) -> None:
    """One shard's batch: the failure bookkeeping, then the checked rows through the sample
    pipeline (oi.pipeline)."""
    redis = get_redis()
    at_ms = now_ms()
    symbols = [sample.symbol for sample in samples]
    raw_marks = redis.hmget(MARK_PRICE_KEY, symbols) if symbols else []
    marks = {s: Decimal(m) for s, m in zip(symbols, raw_marks, strict=True) if m}
    failures = dict(failures)
    rows = _checked_rows(samples, marks, failures)
    ok_symbols = [row.symbol for row in rows]
    _failures_record(redis, ok_symbols=ok_symbols, failures=failures, weight=weight, at_ms=at_ms)
    sample_batch_process(SampleBatch(tuple(rows), BatchOrigin.POLLER, at_ms))


def _failures_record(
    redis, *, ok_symbols: list[str], failures: dict[str, str], weight: int, at_ms: int
) -> None:
    second = at_ms // 1000
    backoff_skips = 0
    # A poll the shared budget held back never reached the exchange: its weight was not used
    # (counting it made the poller API report 180% of the budget while the exchange saw 98%).
    weight -= sum(
        _poll_weight(symbol)
        for symbol, cause in failures.items()
        if cause.startswith(BudgetExhausted.__name__)
    )
    bucket = WEIGHT_BUCKET_KEY.format(settings.BINANCE_EGRESS_ID, second)
    with redis.pipeline(transaction=False) as pipe:
        pipe.incrby(bucket, max(weight, 0))
        pipe.expire(bucket, 180)
        pipe.hincrby(COUNTERS_KEY, "samples_ok", len(ok_symbols))
        if ok_symbols:
            pipe.hdel(CONSECUTIVE_FAILURES_KEY, *ok_symbols)
        for symbol, cause in failures.items():
            pipe.hincrby(CONSECUTIVE_FAILURES_KEY, symbol, 1)
            pipe.hset(LAST_FAILURE_KEY, symbol, f"{at_ms} {cause}"[:300])
            if cause.startswith(BudgetExhausted.__name__):
                backoff_skips += 1
            else:
                logger.warning(
                    "open interest sample skipped", extra={"symbol": symbol, "cause": cause}
                )
        if failures:
            pipe.hincrby(COUNTERS_KEY, "samples_failed", len(failures))
        pipe.execute()
    if backoff_skips:
        logger.warning(
            "open interest samples skipped: the shared budget holds requests back",
            extra={
                "samples": backoff_skips,
                "cause": next(c for c in failures.values() if c.startswith("Budget")),
            },
        )


def ring_backfill(symbols: list[str]) -> dict[str, int]:
    """Fill ring buffers from openInterestHist (5m) so a baseline window exists at once: one
    request per symbol for the coarse ring's span (25 h: 301 entries), the last 3 h of which the
    full-resolution ring keeps too."""
    redis = get_redis()
    client = _poller_client()
    span_sec = max(settings.OI_RING_WINDOW_SEC, settings.OI_COARSE_RING_WINDOW_SEC)
    limit = min(500, span_sec // 300 + 1)
    filled: dict[str, int] = {}
    for symbol in symbols:
        try:
            history = client.open_interest_hist(symbol, "5m", limit=limit)
        except ExchangeError as exc:
            logger.warning(
                "backfill skipped",
                extra={"symbol": symbol, "cause": f"{type(exc).__name__}: {exc}"},
            )
            redis.delete(BACKFILL_QUEUED_KEY.format(symbol))
            continue
        history = [entry for entry in history if _hist_entry_ok(symbol, entry)]
        ring_append(
            redis,
            {
                symbol: [
                    RingSample(
                        ms_from_datetime(h.timestamp),
                        h.sum_open_interest,
                        backfilled=True,
                        mark_price=_price_of(h.sum_open_interest_value, h.sum_open_interest),
                    )
                    for h in history
                ]
            },
            window_ms=settings.OI_RING_WINDOW_SEC * 1000,
            now_ms=now_ms(),
            record_last_sample=False,
            coarse_window_ms=settings.OI_COARSE_RING_WINDOW_SEC * 1000,
        )
        # The stamp (when) tells alert trackers built earlier to re-read the whole window.
        redis.set(BACKFILL_DONE_KEY.format(symbol), now_ms(), ex=settings.OI_RING_WINDOW_SEC)
        filled[symbol] = len(history)
    return filled


def _hist_entry_ok(symbol: str, entry) -> bool:
    """An openInterestHist entry through the same amount rules as every sample (dropped and
    logged otherwise): a hostile history must not reach the ring either."""
    try:
        if entry.symbol != symbol:
            raise InvalidInput(field="symbol", reason=f"is {entry.symbol!r}, asked for {symbol}")
        amount_checked(entry.sum_open_interest, field="sumOpenInterest", row=None)
        amount_checked(entry.sum_open_interest_value, field="sumOpenInterestValue", row=None)
    except InvalidInput as exc:
        logger.warning("backfill entry dropped", extra={"symbol": symbol, "cause": str(exc)})
        return False
    return True


def _price_of(value_usd: Decimal, open_interest: Decimal) -> Decimal | None:
    """The price implied by openInterestHist's value and amount (None when OI is 0)."""
    if not open_interest:
        return None
    return (value_usd / open_interest).quantize(Decimal("1e-8"))
