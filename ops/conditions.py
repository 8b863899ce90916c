"""Ops conditions and their state machine: which system events to send, given each condition's
previous state and what the current check observed. Pure code (no Django, Redis or HTTP).

Each condition is either clear or open. A check observes it as holding, not holding, or unknown
(it could not be checked: e.g. the universe while Postgres does not answer). Rules:

- **Persistence.** A condition opens only once it has held for ``open_checks`` consecutive
  checks spanning at least ``open_min_sec`` (counted from the first check that saw it), and
  clears only once it has not held for ``clear_checks`` consecutive checks spanning at least
  ``clear_min_sec``. A check that disagrees once and agrees again resets the count: a condition
  that flaps from check to check never opens, and an open one that flaps never recovers.
- **One message per incident.** Opening emits OPENED, clearing RECOVERED; nothing in between,
  except a REMINDER every ``reminder_sec`` while it stays open (0: no reminder).
- **Unknown** changes nothing: no progress towards opening or clearing, no reset.

A new condition is one ``OpsCondition`` member, its ``Persistence`` (or the default) and a check
(ops.checks) observing it.
"""

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, replace
from enum import StrEnum


class OpsCondition(StrEnum):
    """What operators are told about; each value is the condition's name in logs, rows and APIs."""

    EXCHANGE_BANNED = "exchange_banned"
    """The exchange answered 429 or 418 (a rate limit or an IP ban)."""
    EXCHANGE_BACKOFF = "exchange_backoff"
    """Every request backs off (another cause than a 429/418) for longer than a minute."""
    POLLING_STALLED = "polling_stalled"
    """Beat, the poller or the samples of the liquid universe stopped (/health/ready's parts)."""
    UNIVERSE_STALE = "universe_stale"
    """The liquid universe's last successful refresh is too old."""
    DEAD_LETTERS = "dead_letters"
    """Snapshot batches refused for good (oi SnapshotDeadLetter rows) appeared."""
    POSTGRES_UNREACHABLE = "postgres_unreachable"
    REDIS_UNREACHABLE = "redis_unreachable"
    MARKET_STREAM_SILENT = "market_stream_silent"
    """A market stream (mark price, mini tickers) silent past its threshold, or never heard (a
    wrong path connects and stays silent): the poller pays premiumIndex weight meanwhile."""

    @property
    def label(self) -> str:
        return _LABELS[self]


_LABELS = {
    OpsCondition.EXCHANGE_BANNED: "exchange rate limit or ban (429/418)",
    OpsCondition.EXCHANGE_BACKOFF: "exchange back-off longer than a minute",
    OpsCondition.POLLING_STALLED: "polling stalled",
    OpsCondition.UNIVERSE_STALE: "liquid universe stale",
    OpsCondition.DEAD_LETTERS: "dead-lettered snapshot batches",
    OpsCondition.POSTGRES_UNREACHABLE: "Postgres unreachable",
    OpsCondition.REDIS_UNREACHABLE: "Redis unreachable",
    OpsCondition.MARKET_STREAM_SILENT: "market stream silent",
}


class OpsEventKind(StrEnum):
    OPENED = "opened"
    REMINDER = "reminder"
    RECOVERED = "recovered"


@dataclass(frozen=True, slots=True)
class Observation:
    """One check's verdict on one condition."""

    condition: OpsCondition
    holding: bool | None
    """None: could not be checked this time (changes nothing)."""
    detail: str = ""


@dataclass(frozen=True, slots=True)
class Persistence:
    """How long a condition must hold before it opens, and stop holding before it clears."""

    open_checks: int = 2
    open_min_sec: float = 0.0
    clear_checks: int = 2
    clear_min_sec: float = 0.0


@dataclass(frozen=True, slots=True)
class ConditionState:
    """A condition's state between checks (stored as JSON: see as_dict / from_dict)."""

    open: bool = False
    streak: int = 0
    """Consecutive checks that disagreed with ``open`` (towards opening or clearing)."""
    streak_since_ms: int | None = None
    """When the first of those checks ran."""
    opened_at_ms: int | None = None
    """While open: when the condition was first seen holding (the incident's start)."""
    notified_at_ms: int | None = None
    """While open: when the last message (OPENED or REMINDER) was emitted."""
    detail: str = ""
    """The latest detail observed."""

    def as_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: Mapping) -> "ConditionState":
        return cls(
            open=bool(raw.get("open", False)),
            streak=int(raw.get("streak", 0)),
            streak_since_ms=_int_or_none(raw.get("streak_since_ms")),
            opened_at_ms=_int_or_none(raw.get("opened_at_ms")),
            notified_at_ms=_int_or_none(raw.get("notified_at_ms")),
            detail=str(raw.get("detail", "")),
        )


@dataclass(frozen=True, slots=True)
class OpsEvent:
    """A transition worth telling operators about."""

    condition: OpsCondition
    kind: OpsEventKind
    detail: str
    at_ms: int
    opened_at_ms: int
    """The incident's start: the same for its OPENED, REMINDERs and RECOVERED."""

    @property
    def recovered(self) -> bool:
        return self.kind is OpsEventKind.RECOVERED

    @property
    def dedup_key(self) -> str:
        """One key per incident (the condition and when it started), shared by its messages."""
        return f"ops:{self.condition}:{self.opened_at_ms}"

    @property
    def message_key(self) -> str:
        """The key a message sink deduplicates on: the incident's for its opening and its
        recovery (told once each), one of its own for each reminder (each is a new message)."""
        if self.kind is OpsEventKind.REMINDER:
            return f"{self.dedup_key}:reminder:{self.at_ms}"
        return self.dedup_key

    @property
    def title(self) -> str:
        prefix = {
            OpsEventKind.OPENED: "Ops",
            OpsEventKind.REMINDER: "Ops, still",
            OpsEventKind.RECOVERED: "Ops",  # sinks mark a recovery (recovered=True) themselves
        }[self.kind]
        return f"{prefix}: {self.condition.label}"

    @property
    def text(self) -> str:
        lasted = (self.at_ms - self.opened_at_ms) / 1000
        if self.kind is OpsEventKind.OPENED:
            return self.detail
        return f"{self.detail} (after {_duration_text(lasted)})"

    def as_dict(self) -> dict:
        return {
            "condition": str(self.condition),
            "kind": str(self.kind),
            "detail": self.detail,
            "at_ms": self.at_ms,
            "opened_at_ms": self.opened_at_ms,
        }

    @classmethod
    def from_dict(cls, raw: Mapping) -> "OpsEvent":
        return cls(
            condition=OpsCondition(raw["condition"]),
            kind=OpsEventKind(raw["kind"]),
            detail=str(raw["detail"]),
            at_ms=int(raw["at_ms"]),
            opened_at_ms=int(raw["opened_at_ms"]),
        )


def condition_step(
    state: ConditionState,
    observation: Observation,
    *,
    now_ms: int,
    persistence: Persistence,
    reminder_sec: float,
) -> tuple[ConditionState, OpsEvent | None]:
    """The condition's next state after one check, and the event it emits, if any."""
    if observation.holding is None:
        return state, None
    condition = observation.condition
    detail = observation.detail or state.detail
    if observation.holding == state.open:  # agrees: any streak towards a change is over
        state = replace(state, streak=0, streak_since_ms=None, detail=detail)
        if (
            state.open
            and reminder_sec > 0
            and state.notified_at_ms is not None
            and now_ms - state.notified_at_ms >= reminder_sec * 1000
        ):
            return replace(state, notified_at_ms=now_ms), OpsEvent(
                condition, OpsEventKind.REMINDER, detail, now_ms, _opened_at(state, now_ms)
            )
        return state, None
    since_ms = state.streak_since_ms if state.streak_since_ms is not None else now_ms
    streak = state.streak + 1
    checks, min_sec = (
        (persistence.clear_checks, persistence.clear_min_sec)
        if state.open
        else (persistence.open_checks, persistence.open_min_sec)
    )
    if streak < checks or now_ms - since_ms < min_sec * 1000:
        return replace(state, streak=streak, streak_since_ms=since_ms, detail=detail), None
    if state.open:
        event = OpsEvent(
            condition, OpsEventKind.RECOVERED, detail, now_ms, _opened_at(state, now_ms)
        )
        return ConditionState(detail=detail), event
    opened = ConditionState(open=True, opened_at_ms=since_ms, notified_at_ms=now_ms, detail=detail)
    return opened, OpsEvent(condition, OpsEventKind.OPENED, detail, now_ms, since_ms)


def conditions_step(
    states: Mapping[OpsCondition, ConditionState],
    observations: Iterable[Observation],
    *,
    now_ms: int,
    persistence: Mapping[OpsCondition, Persistence],
    reminder_sec: float,
) -> tuple[dict[OpsCondition, ConditionState], list[OpsEvent]]:
    """Every observed condition's next state (the others kept as they are) and the events, in
    the observations' order. A condition without a state starts clear; without a Persistence,
    the default one."""
    next_states = dict(states)
    events: list[OpsEvent] = []
    for observation in observations:
        state, event = condition_step(
            next_states.get(observation.condition, ConditionState()),
            observation,
            now_ms=now_ms,
            persistence=persistence.get(observation.condition, Persistence()),
            reminder_sec=reminder_sec,
        )
        next_states[observation.condition] = state
        if event is not None:
            events.append(event)
    return next_states, events


def _opened_at(state: ConditionState, now_ms: int) -> int:
    return state.opened_at_ms if state.opened_at_ms is not None else now_ms


def _int_or_none(value) -> int | None:
    return None if value is None else int(value)


def _duration_text(seconds: float) -> str:
    seconds = max(seconds, 0.0)
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
