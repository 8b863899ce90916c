"""Egress groups: the poller hosts that leave from their own IP, each with its own weight budget.

Every poller worker keeps a heartbeat of its group (BINANCE_EGRESS_ID) in Redis while it runs,
with the group's usable budget: the smaller of its configured share (OI_MAX_REQ_PER_MIN, capped
by the "poller" consumer budget) and what the exchange's learned REQUEST_WEIGHT limit leaves after
the safety margin, the burst and the other configured consumers. The dispatcher plans for the
groups whose heartbeat is fresh (oi.poller.poller_dispatch) and sends each group's polls to its
own queue, `oi_poll.<egress id>`, which only that group's workers consume.
"""

import json
import logging
import re
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from redis import RedisError

from common.redis import get_redis
from common.timeutil import now_ms
from exchange.factory import build_budget

logger = logging.getLogger(__name__)

POLL_QUEUE = "oi_poll"
"""Beat's dispatch queue; every poller worker consumes it, and its own group's queue too."""
GROUPS_KEY = "oi:egress:groups"
"""Hash: egress id → JSON heartbeat (budget, usable budget, learned limit, host, seen at)."""
WORKER_STARTS_KEY = "oi:egress:worker_starts"
"""Hash: egress id → when a poller worker of that group last started (ms): the dispatcher plans
again the windows not started when it changes, since a killed worker took their shards along."""
PLAN_KEY = "oi:egress:plan"
"""JSON: the dispatcher's latest plan per group (symbols, planned weight/min)."""
FORGET_AFTER_SEC = 3600
EGRESS_ID_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,40}$")


def poll_queue(egress_id: str) -> str:
    """The queue of one group's poll shards."""
    return f"{POLL_QUEUE}.{egress_id}"


def own_egress_id() -> str:
    egress_id = settings.BINANCE_EGRESS_ID
    if not EGRESS_ID_PATTERN.match(egress_id):
        raise ImproperlyConfigured(
            f"BINANCE_EGRESS_ID {egress_id!r} is invalid: 1-40 letters, digits, '_' or '-'"
        )
    return egress_id


@dataclass(frozen=True)
class EgressBudget:
    configured_per_min: int
    """OI_MAX_REQ_PER_MIN, capped by the "poller" consumer budget."""
    usable_per_min: int
    """What the plan may use: the configured share or, if lower, what the learned limit leaves."""
    ip_limit: int
    """The REQUEST_WEIGHT limit in force (learned from exchangeInfo, or configured)."""
    learned: bool


def own_budget() -> EgressBudget:
    """This host's group budget, from its settings and what its exchange budget learned."""
    budget = build_budget()
    config = budget.config
    configured = settings.OI_MAX_REQ_PER_MIN
    if "poller" in config.consumer_budgets:
        configured = min(configured, config.consumer_budgets["poller"])
    # REQUEST_WEIGHT is the same for every IP: a host that never asked exchangeInfo itself (the
    # liquidity job runs on one host) takes the limit another group learned
    learned = budget.learned_ip_limit() or _limit_learned_by_others()
    ip_limit = min(learned, config.ip_weight_limit) if learned else config.ip_weight_limit
    others = sum(rate for name, rate in config.consumer_budgets.items() if name != "poller")
    left = config.ip_rate_per_min(ip_limit) - others
    return EgressBudget(configured, max(min(configured, left), 1), ip_limit, learned is not None)


def _limit_learned_by_others() -> int | None:
    learned = []
    for raw in get_redis().hvals(GROUPS_KEY):
        try:
            record = json.loads(raw)
            if record.get("learned"):
                learned.append(int(record["ipLimit"]))
        except (ValueError, KeyError, TypeError):
            continue
    return min(learned, default=None)


@dataclass(frozen=True)
class EgressGroup:
    egress_id: str
    budget: EgressBudget
    host: str
    seen_at_ms: int

    @property
    def queue(self) -> str:
        return poll_queue(self.egress_id)


def heartbeat_ttl_ms() -> int:
    return int(settings.OI_EGRESS_HEARTBEAT_TTL_SEC * 1000)


def egress_heartbeat(*, at_ms: int | None = None) -> EgressGroup:
    """Record this host's group as alive (and its usable budget) now."""
    at_ms = at_ms or now_ms()
    budget = own_budget()
    group = EgressGroup(own_egress_id(), budget, socket.gethostname(), at_ms)
    record = {
        "configuredPerMin": budget.configured_per_min,
        "usablePerMin": budget.usable_per_min,
        "ipLimit": budget.ip_limit,
        "learned": budget.learned,
        "host": group.host,
        "seenAtMs": at_ms,
    }
    get_redis().hset(GROUPS_KEY, group.egress_id, json.dumps(record))
    return group


def worker_start_record(*, at_ms: int | None = None) -> None:
    """This host's poller worker has (re)started: see WORKER_STARTS_KEY."""
    get_redis().hset(WORKER_STARTS_KEY, own_egress_id(), at_ms or now_ms())


def worker_starts() -> dict[str, int]:
    """Egress id → when its poller worker last started (ms)."""
    return {
        (key.decode() if isinstance(key, bytes) else key): int(value)
        for key, value in get_redis().hgetall(WORKER_STARTS_KEY).items()
    }


def egress_forget(egress_id: str) -> None:
    """Drop a group at once (its worker stopping cleanly), rather than after its heartbeat's TTL."""
    get_redis().hdel(GROUPS_KEY, egress_id)


def groups_live(*, at_ms: int | None = None) -> list[EgressGroup]:
    """The groups whose heartbeat is fresher than OI_EGRESS_HEARTBEAT_TTL_SEC, by id; groups
    silent for an hour are forgotten."""
    at_ms = at_ms or now_ms()
    redis = get_redis()
    live, forgotten = [], []
    for raw_id, raw in redis.hgetall(GROUPS_KEY).items():
        egress_id = raw_id.decode() if isinstance(raw_id, bytes) else raw_id
        try:
            record = json.loads(raw)
            seen = int(record["seenAtMs"])
            budget = EgressBudget(
                int(record["configuredPerMin"]), int(record["usablePerMin"]),
                int(record["ipLimit"]), bool(record["learned"]),
            )  # fmt: skip
        except (ValueError, KeyError, TypeError) as exc:
            logger.warning("egress heartbeat unreadable", extra={"egress": egress_id, "cause": exc})
            forgotten.append(egress_id)
            continue
        if at_ms - seen > FORGET_AFTER_SEC * 1000:
            forgotten.append(egress_id)
        elif at_ms - seen <= heartbeat_ttl_ms():
            live.append(EgressGroup(egress_id, budget, str(record.get("host", "")), seen))
    if forgotten:
        redis.hdel(GROUPS_KEY, *forgotten)
        redis.hdel(WORKER_STARTS_KEY, *forgotten)
    return sorted(live, key=lambda group: group.egress_id)


def group_plan_record(plan: dict) -> None:
    get_redis().set(PLAN_KEY, json.dumps(plan), ex=3600)


def group_plan_read() -> dict:
    raw = get_redis().get(PLAN_KEY)
    return json.loads(raw) if raw else {}


# --- the heartbeat thread of a poller worker ------------------------------------------------------

_started = threading.Event()
_stopping = threading.Event()
_forget_lock = threading.Lock()
_forgotten = False
_left_callbacks: list[Callable[[], None]] = []


def on_group_left(callback: Callable[[], None]) -> None:
    """`callback` runs once this worker's group has left the plan at a clean stop (oi.tasks asks
    for a dispatch then: the windows it was planned are planned to the others at once)."""
    _left_callbacks.append(callback)


def heartbeat_start() -> bool:
    """Start this process's heartbeat thread (once); True when this call started it."""
    if _started.is_set():
        return False
    own_egress_id()  # a bad id stops the worker here, not in every heartbeat
    _started.set()
    egress_heartbeat()  # at once: the next dispatch plans this group in
    worker_start_record()  # and plans again the windows whose shards a killed worker took
    threading.Thread(target=_heartbeat_loop, name="oi-egress-heartbeat", daemon=True).start()
    logger.info("egress heartbeat started", extra={"egress": settings.BINANCE_EGRESS_ID})
    return True


def heartbeat_stop_soon() -> None:
    """A stop begins (SIGTERM; safe in a signal handler: it only sets an event): the heartbeat
    thread removes the group at once. A warm shutdown first finishes the shard it is running, up
    to a window; with the group still live, the dispatcher went on planning it windows that the
    stopping worker never runs, and its symbols missed a poll."""
    if _started.is_set():
        _stopping.set()


def heartbeat_stop() -> None:
    """A clean stop (the worker's last step): the group leaves the plan at the next dispatch, not
    after the TTL; removed here if the heartbeat thread has not yet."""
    if _started.is_set():
        _stopping.set()
        _forget_once()


def _forget_once() -> None:
    global _forgotten
    with _forget_lock:
        if _forgotten:
            return
        _forgotten = True
    try:
        egress_forget(own_egress_id())
        logger.info("egress heartbeat removed", extra={"egress": settings.BINANCE_EGRESS_ID})
    except RedisError as exc:
        logger.warning("egress heartbeat not removed", extra={"cause": str(exc)})
        return
    for callback in _left_callbacks:
        try:
            callback()
        except Exception as exc:  # noqa: BLE001 - beat's next dispatch re-plans anyway
            logger.warning(
                "no dispatch after the egress group left",
                extra={
                    "egress": settings.BINANCE_EGRESS_ID,
                    "cause": f"{type(exc).__name__}: {exc}",
                },
            )


def _heartbeat_loop() -> None:
    period = settings.OI_EGRESS_HEARTBEAT_TTL_SEC / 4
    while True:
        if _stopping.wait(period):
            _forget_once()
            return
        try:
            with _forget_lock:  # never a heartbeat written after the removal
                if _forgotten:
                    return
                egress_heartbeat()
        except Exception as exc:  # noqa: BLE001 - the heartbeat must outlive any one failure
            logger.warning(
                "egress heartbeat failed",
                extra={
                    "egress": settings.BINANCE_EGRESS_ID,
                    "cause": f"{type(exc).__name__}: {exc}",
                },
            )
