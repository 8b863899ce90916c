"""The checks behind the ops conditions: each reads what the system already exposes
(volspike.readiness for the stores, beat, poller, polling and universe; the exchange budget for
back-offs and 429/418 answers; oi.selectors for dead letters) and turns it into Observations.

A new condition (e.g. a market stream silent) is one function here and one line in OPS_CHECKS.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.db import DatabaseError
from redis import RedisError

from common.health import ComponentHealth, system_health
from common.redaction import redact
from common.timeutil import datetime_from_ms
from exchange.factory import build_budget
from oi.selectors import dead_letter_last_id, dead_letters_after
from ops.conditions import Observation, OpsCondition
from streams.selectors import streams_health
from streams.watchdog import EXPECTED_CADENCE_SEC, StreamState
from volspike.readiness import system_readiness

BAN_STATUSES = ("418", "429")


@dataclass
class CheckContext:
    """What one run of the checks shares: the readiness parts (read once), the marks kept
    between runs (counters already seen; updated in place) and the clock."""

    now_ms: int
    first_check_ms: int
    marks: dict = field(default_factory=dict)
    components: dict[str, ComponentHealth] = field(default_factory=dict)

    @property
    def in_startup_grace(self) -> bool:
        return self.now_ms - self.first_check_ms < settings.OPS_STARTUP_GRACE_SEC * 1000

    @property
    def postgres_ok(self) -> bool:
        part = self.components.get("postgres")
        return part is not None and part.ok

    @property
    def redis_ok(self) -> bool:
        part = self.components.get("redis")
        return part is not None and part.ok


Check = Callable[[CheckContext], list[Observation]]


def stores_observe(ctx: CheckContext) -> list[Observation]:
    """Postgres and Redis, as this process reaches them (/health's parts)."""
    return [
        _part_observation(ctx, OpsCondition.POSTGRES_UNREACHABLE, ["postgres"]),
        _part_observation(ctx, OpsCondition.REDIS_UNREACHABLE, ["redis"]),
    ]


def polling_observe(ctx: CheckContext) -> list[Observation]:
    """Beat sending poll dispatches, an oi_poll worker running them, every liquid symbol
    sampled within a few intervals (/health/ready's beat, poller and polling)."""
    return [_part_observation(ctx, OpsCondition.POLLING_STALLED, ["beat", "poller", "polling"])]


def universe_observe(ctx: CheckContext) -> list[Observation]:
    return [_part_observation(ctx, OpsCondition.UNIVERSE_STALE, ["universe"])]


def exchange_observe(ctx: CheckContext) -> list[Observation]:
    """A 429/418 answer since the last check (the budget counts every answer by status) or a
    back-off set by one; any other back-off (its minimum duration is the condition's
    Persistence). /health/ready's exchange part only fails on a 418 or a long back-off."""
    if not ctx.redis_ok:
        return _unknown(OpsCondition.EXCHANGE_BANNED, OpsCondition.EXCHANGE_BACKOFF)
    budget = build_budget()
    try:
        counts = budget.outcome_counts()
        backoff = budget.backoff_until()
    except RedisError:
        return _unknown(OpsCondition.EXCHANGE_BANNED, OpsCondition.EXCHANGE_BACKOFF)
    new_answers = {}
    for status in BAN_STATUSES:
        seen = ctx.marks.get(f"outcomes_{status}")
        ctx.marks[f"outcomes_{status}"] = counts.get(status, 0)
        if seen is not None and counts.get(status, 0) > seen:
            new_answers[status] = counts.get(status, 0) - seen
    banned_reason = backoff is not None and backoff[1].startswith(BAN_STATUSES)
    banned = bool(new_answers) or banned_reason
    causes = []
    if backoff is not None:
        until, reason = backoff
        left = (until - datetime_from_ms(ctx.now_ms)).total_seconds()
        causes.append(f"every request backs off until {until.isoformat()} ({left:.0f} s): {reason}")
    if new_answers:
        answered = ", ".join(f"{n} × {status}" for status, n in sorted(new_answers.items()))
        causes.insert(0, f"the exchange answered {answered} since the last check")
    if "418" in new_answers or (banned_reason and backoff[1].startswith("418")):
        causes.insert(0, "the exchange banned this IP")
    return [
        Observation(
            OpsCondition.EXCHANGE_BANNED, banned, "; ".join(causes) if banned else "no 429/418"
        ),
        Observation(
            OpsCondition.EXCHANGE_BACKOFF,
            backoff is not None and not banned_reason,
            "; ".join(causes) if backoff is not None else "no back-off",
        ),
    ]


def market_streams_observe(ctx: CheckContext) -> list[Observation]:
    """The market streams with a cadence (streams.watchdog) stale or never heard while enabled;
    liquidations have none and follow their connection. Never heard counts only after the
    start-up grace (the streams process may still be connecting)."""
    if not ctx.redis_ok:
        return _unknown(OpsCondition.MARKET_STREAM_SILENT)
    try:
        health = streams_health(now_ms=ctx.now_ms)
    except RedisError:
        return _unknown(OpsCondition.MARKET_STREAM_SILENT)
    if all(h.state is StreamState.DISABLED for h in health.values()):
        return [Observation(OpsCondition.MARKET_STREAM_SILENT, False, "streams disabled")]
    silent = [
        h
        for stream, h in health.items()
        if EXPECTED_CADENCE_SEC[stream] is not None
        and h.state in (StreamState.STALE, StreamState.NEVER)
    ]
    if not silent:
        return [Observation(OpsCondition.MARKET_STREAM_SILENT, False, "market streams fresh")]
    if ctx.in_startup_grace and all(h.state is StreamState.NEVER for h in silent):
        return _unknown(OpsCondition.MARKET_STREAM_SILENT)
    causes = [
        f"{h.stream}: no frame ever received (a wrong STREAMS_PATH connects and stays silent)"
        if h.last_frame_age_sec is None
        else f"{h.stream}: last frame {h.last_frame_age_sec:.0f} s ago (stale after "
        f"{h.stale_after_sec:g} s)"
        for h in silent
    ]
    return [
        Observation(
            OpsCondition.MARKET_STREAM_SILENT,
            True,
            "; ".join(causes) + "; mark prices come from REST premiumIndex meanwhile",
        )
    ]


def dead_letters_observe(ctx: CheckContext) -> list[Observation]:
    """Snapshot batches dead-lettered since the last check (the first check looks back one
    period)."""
    if not ctx.postgres_ok:
        return _unknown(OpsCondition.DEAD_LETTERS)
    since = datetime_from_ms(ctx.now_ms) - timedelta(seconds=settings.OPS_CHECK_EVERY_SEC)
    seen_id = ctx.marks.get("dead_letter_id")
    try:
        new = dead_letters_after(after_id=seen_id, since=since)
        if new.last_id is None and seen_id is None:
            seen_id = dead_letter_last_id() or 0
    except DatabaseError:
        return _unknown(OpsCondition.DEAD_LETTERS)
    ctx.marks["dead_letter_id"] = new.last_id if new.last_id is not None else seen_id
    if new.count == 0:
        return [Observation(OpsCondition.DEAD_LETTERS, False, "no new dead letter")]
    return [
        Observation(
            OpsCondition.DEAD_LETTERS,
            True,
            f"{new.count} snapshot batch(es), {new.rows} rows, refused for good since the last "
            f"check; the latest: {redact(new.last_cause)[:300]} (admin: Snapshot dead letters)",
        )
    ]


OPS_CHECKS: tuple[Check, ...] = (
    stores_observe,
    polling_observe,
    universe_observe,
    exchange_observe,
    dead_letters_observe,
    market_streams_observe,
)


def checks_run(ctx: CheckContext, checks: tuple[Check, ...] = OPS_CHECKS) -> list[Observation]:
    """Every check's observations. Readiness is read once; a store down leaves the parts behind
    it unknown."""
    try:
        parts = system_readiness()
    except (RedisError, DatabaseError):  # a store went away between its health check and a read
        parts = system_health()
    ctx.components = {part.name: part for part in parts}
    observations: list[Observation] = []
    for check in checks:
        observations.extend(check(ctx))
    return observations


def _part_observation(ctx: CheckContext, condition: OpsCondition, names: list[str]) -> Observation:
    parts = [ctx.components[name] for name in names if name in ctx.components]
    if not parts:  # not asked: a store did not answer
        return Observation(condition, None, "")
    failing = [part for part in parts if not part.ok]
    stores = {"postgres", "redis"}
    if failing and ctx.in_startup_grace and not stores & set(names):
        return Observation(condition, None, "")
    if not failing:
        return Observation(condition, False, "; ".join(f"{p.name}: {p.detail}" for p in parts))
    return Observation(condition, True, redact("; ".join(f"{p.name}: {p.detail}" for p in failing)))


def _unknown(*conditions: OpsCondition) -> list[Observation]:
    return [Observation(condition, None, "") for condition in conditions]
