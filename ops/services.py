"""One run of the ops checks, and what is done with each event.

Where things are kept, and what survives which outage:

- **Conditions' state** (streaks, open incidents, the checks' marks): one JSON value in Redis
  (``ops:state``), written after every run and mirrored in this process's memory. When Redis does
  not answer, the run goes on from the memory copy (a worker process that restarts during the
  outage starts from clear: its streaks begin again). When Redis has lost the state (a restart
  without persistence), the open incidents are taken back from Postgres.
- **Events**: an OpsIncident row per incident in Postgres (opened, reminders, recovered). Recording
  it is also the claim that decides who sends: at most one open row per condition, so two
  processes that each saw the condition (the watchdogs of two workers while Redis is down) send
  once. When Postgres does not answer, the event is parked in Redis (``ops:pending``, the newest
  PENDING_MAX) and recorded and sent once Postgres answers; when Redis does not answer either, it
  is parked in this process's memory: a restart before a store is back loses it, and only its log
  line remains.
- **The log line** is written when the event is recorded or parked, never twice: WARNING when a
  condition opens (and for reminders), INFO when it recovers.
- **Only one run at a time** (a Redis lock with a TTL). While Redis is down no lock can be taken:
  then only the watchdogs run (beat's tasks travel through Redis), and the claim deduplicates.
"""

import json
import logging
import os
import socket
import threading
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from datetime import timedelta
from enum import StrEnum
from functools import cache

from django.conf import settings
from django.db import DatabaseError, connection, transaction
from django.db.models import F, Q
from django.utils.module_loading import import_string
from redis import RedisError

from common.locks import redis_lease
from common.redis import get_redis
from common.timeutil import datetime_from_ms, ms_from_datetime, now_ms
from ops.checks import OPS_CHECKS, CheckContext, checks_run
from ops.conditions import (
    ConditionState,
    OpsCondition,
    OpsEvent,
    OpsEventKind,
    Persistence,
    conditions_step,
)
from ops.keys import CHECK_LOCK_KEY, PENDING_KEY, STATE_KEY
from ops.models import OpsIncident

logger = logging.getLogger(__name__)

PENDING_MAX = 1000
"""Events parked (in Redis or memory) while Postgres does not answer; older ones are dropped."""
REPLAY_MAX = 100
"""Parked events recorded per run (the rest at the next)."""
STATE_TTL_SEC = 7 * 86400


class CheckOutcome(StrEnum):
    RAN = "ran"
    BUSY = "busy"
    """Another process holds the lock."""


_memory_state: dict | None = None
_process_turn = threading.Lock()
_memory_pending: deque[dict] = deque(maxlen=PENDING_MAX)


def ops_persistence() -> dict[OpsCondition, Persistence]:
    """Each condition's persistence rule (ops.conditions), from the settings."""
    default = Persistence(
        open_checks=settings.OPS_OPEN_AFTER_CHECKS, clear_checks=settings.OPS_CLEAR_AFTER_CHECKS
    )
    rules = {condition: default for condition in OpsCondition}
    # A 429/418 is never a flap: it opens at once.
    rules[OpsCondition.EXCHANGE_BANNED] = Persistence(
        open_checks=1, clear_checks=settings.OPS_CLEAR_AFTER_CHECKS
    )
    # Any other back-off: once active for OPS_BACKOFF_MAX_SEC.
    rules[OpsCondition.EXCHANGE_BACKOFF] = Persistence(
        open_checks=1,
        open_min_sec=settings.OPS_BACKOFF_MAX_SEC,
        clear_checks=settings.OPS_CLEAR_AFTER_CHECKS,
    )
    # A dead letter is a fact: opens at once, recovers after a quiet spell.
    rules[OpsCondition.DEAD_LETTERS] = Persistence(
        open_checks=1, clear_checks=1, clear_min_sec=settings.OPS_DEAD_LETTER_QUIET_SEC
    )
    return rules


def ops_check_run(*, source: str = "beat") -> CheckOutcome:
    """Run every check once, emit the events of the transitions, keep the state. Bounded: the
    checks are a few reads each, REPLAY_MAX parked events at most."""
    with _check_turn() as turn:
        if not turn:
            return CheckOutcome.BUSY
        at_ms = now_ms()
        snapshot = _state_load()
        if snapshot is None:
            snapshot = {"first_check_ms": at_ms, "conditions": _states_from_postgres()}
        pending_replay()
        ctx = CheckContext(
            now_ms=at_ms,
            first_check_ms=int(snapshot.get("first_check_ms", at_ms)),
            marks=dict(snapshot.get("marks", {})),
        )
        observations = checks_run(ctx, OPS_CHECKS)
        states = {
            OpsCondition(name): ConditionState.from_dict(raw)
            for name, raw in snapshot.get("conditions", {}).items()
            if name in OpsCondition._value2member_map_
        }
        states, events = conditions_step(
            states,
            observations,
            now_ms=at_ms,
            persistence=ops_persistence(),
            reminder_sec=settings.OPS_REMINDER_SEC,
        )
        for event in events:
            ops_event_dispatch(event)
        _state_save(
            {
                "first_check_ms": ctx.first_check_ms,
                "checked_at_ms": at_ms,
                "checked_by": f"{_process_name()} ({source})",
                "marks": ctx.marks,
                "conditions": {str(c): state.as_dict() for c, state in states.items()},
            }
        )
        return CheckOutcome.RAN


def ops_memory_forget() -> None:
    """Drop this process's copy of the state and its parked events (a test starting afresh)."""
    global _memory_state
    _memory_state = None
    _memory_pending.clear()


def ops_last_check_ms() -> int | None:
    """When the checks last ran (any process); None if never. Raises RedisError."""
    raw = get_redis().get(STATE_KEY)
    if not raw:
        return None
    checked = json.loads(raw).get("checked_at_ms")
    return int(checked) if checked is not None else None


def ops_event_dispatch(event: OpsEvent) -> None:
    """Record the event (the claim); when this process claimed it: its log line, then every
    sink of OPS_EVENT_SINKS. When Postgres does not answer: its log line, and it is parked."""
    try:
        claimed = ops_event_record(event)
    except DatabaseError as exc:
        _event_log(event, parked=True)
        logger.warning(
            "ops event parked until Postgres answers",
            extra={"condition": str(event.condition), "cause": f"{type(exc).__name__}: {exc}"},
        )
        _event_park(event)
        return
    if not claimed:
        logger.debug("ops event already recorded by another process: %s", event.dedup_key)
        return
    _event_log(event, parked=False)
    _event_sinks_run(event)


def ops_event_record(event: OpsEvent) -> bool:
    """The event into its OpsIncident row. True when this call recorded it (so its caller sends it);
    False when another process did, or it no longer applies (a reminder or recovery of an
    incident not open; an opening inside an incident already recorded). Raises DatabaseError."""
    at = datetime_from_ms(event.at_ms)
    opened_at = datetime_from_ms(event.opened_at_ms)
    with transaction.atomic():
        with connection.cursor() as cursor:  # one writer per condition at a time
            cursor.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [f"ops:{event.condition}"])
        rows = OpsIncident.objects.filter(condition=event.condition)
        if event.kind is OpsEventKind.OPENED:
            covering = rows.filter(Q(recovered_at__isnull=True) | Q(recovered_at__gte=opened_at))
            if covering.exists():
                return False
            OpsIncident.objects.create(
                condition=event.condition,
                opened_at=opened_at,
                detail=event.detail,
                last_detail=event.detail,
                notified_at=at,
                recorded_by=_process_name(),
            )
            return True
        open_rows = rows.filter(recovered_at__isnull=True)
        if event.kind is OpsEventKind.REMINDER:
            due = at - _reminder_slack()
            return bool(
                open_rows.filter(notified_at__lte=due).update(
                    notified_at=at,
                    last_detail=event.detail,
                    reminders=F("reminders") + 1,
                )
            )
        return bool(
            open_rows.filter(opened_at__lte=at).update(recovered_at=at, last_detail=event.detail)
        )


def pending_replay() -> int:
    """Record and send the events parked while Postgres did not answer, oldest first (memory,
    then Redis); stops at the first Postgres failure. How many were handled."""
    handled = 0
    while _memory_pending and handled < REPLAY_MAX:
        if not _replay_one(_memory_pending[0]):
            return handled
        _memory_pending.popleft()
        handled += 1
    try:
        redis = get_redis()
        while handled < REPLAY_MAX and (raw := redis.lindex(PENDING_KEY, 0)) is not None:
            if not _replay_one(json.loads(raw)):
                break
            redis.lpop(PENDING_KEY)
            handled += 1
    except RedisError:
        pass
    return handled


def _replay_one(raw: dict) -> bool:
    event = OpsEvent.from_dict(raw)
    try:
        claimed = ops_event_record(event)
    except DatabaseError:
        return False
    if claimed:
        _event_sinks_run(event)
    return True


def _event_park(event: OpsEvent) -> None:
    try:
        redis = get_redis()
        with redis.pipeline(transaction=True) as pipe:
            pipe.rpush(PENDING_KEY, json.dumps(event.as_dict()))
            pipe.ltrim(PENDING_KEY, -PENDING_MAX, -1)
            pipe.execute()
    except RedisError:
        _memory_pending.append(event.as_dict())


def _event_log(event: OpsEvent, *, parked: bool) -> None:
    level = logging.INFO if event.recovered else logging.WARNING
    logger.log(
        level,
        "ops %s %s",
        event.condition,
        event.kind,
        extra={
            "condition": str(event.condition),
            "event": str(event.kind),
            "cause": event.detail,
            "since": datetime_from_ms(event.opened_at_ms).isoformat(),
            "parked": parked,
        },
    )


def _event_sinks_run(event: OpsEvent) -> None:
    """Every configured sink, each on its own: one failing is logged and the others still run."""
    for path, sink in zip(
        settings.OPS_EVENT_SINKS, _sinks(tuple(settings.OPS_EVENT_SINKS)), strict=True
    ):
        try:
            sink(
                dedup_key=event.message_key,
                title=event.title,
                text=event.text,
                recovered=event.recovered,
            )
        except Exception as exc:  # noqa: BLE001 - a sink's failure must not stop the others
            logger.error(
                "ops event sink failed",
                extra={
                    "sink": path,
                    "condition": str(event.condition),
                    "cause": f"{type(exc).__name__}: {exc}",
                },
            )


@cache
def _sinks(paths: tuple[str, ...]) -> tuple:
    return tuple(import_string(path) for path in paths)


def _states_from_postgres() -> dict[str, dict]:
    """The open incidents as open states (Redis lost the state); {} when Postgres is down."""
    try:
        rows = list(OpsIncident.objects.filter(recovered_at__isnull=True))
    except DatabaseError:
        return {}
    return {
        row.condition: ConditionState(
            open=True,
            opened_at_ms=ms_from_datetime(row.opened_at),
            notified_at_ms=ms_from_datetime(row.notified_at),
            detail=row.last_detail,
        ).as_dict()
        for row in rows
    }


def _state_load() -> dict | None:
    global _memory_state
    try:
        raw = get_redis().get(STATE_KEY)
    except RedisError:
        return _memory_state
    if raw:
        _memory_state = json.loads(raw)
    # else Redis lost it (a restart without persistence): go on from this process's copy, if any
    return _memory_state


def _state_save(snapshot: dict) -> None:
    global _memory_state
    _memory_state = snapshot
    with suppress(RedisError):
        get_redis().set(STATE_KEY, json.dumps(snapshot), ex=STATE_TTL_SEC)


@contextmanager
def _check_turn() -> Iterator[bool]:
    """True when this run may go: it holds the lock, or Redis does not answer (no lock to take;
    the claim in Postgres deduplicates)."""
    if not _process_turn.acquire(blocking=False):  # a thread of this process is checking
        yield False
        return
    try:
        ttl_sec = max(settings.OPS_CHECK_EVERY_SEC * 2, 30.0)
        try:
            lease = redis_lease(get_redis(), CHECK_LOCK_KEY, ttl_sec=ttl_sec)
            acquired = lease.__enter__()
        except RedisError:
            yield True
            return
        try:
            yield acquired
        finally:
            with suppress(RedisError):  # the lock expires by itself
                lease.__exit__(None, None, None)
    finally:
        _process_turn.release()


def _reminder_slack() -> timedelta:
    return timedelta(seconds=settings.OPS_REMINDER_SEC / 2)


def _process_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"
