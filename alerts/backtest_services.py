"""Backtests: a saved or draft rule replayed over the stored samples of a period (alerts.backtest
is the engine; this module validates the request, reads Postgres in batches of symbols, keeps a
job's progress and result in Redis, and shapes the answer).

What the replay takes as the live engine's input, and where the two could differ:

* Samples: the poller's stored rows (source ``realtime``) of the period, plus a lead-in of the
  rule's window and COVERAGE_MARGIN_MS before it, which only fills the windows (as a rebuilt live
  tracker reads its ring). The ring's backfilled 5-minute history is not in Postgres: a window
  that only backfill covered live has no verdict here (so the period must start at least one
  window after polling began for the verdicts to match).
* Mark prices: each row's stored mark price, which is the one the live engine got with that
  sample (the poller stores and evaluates the same row).
* Order: every sample in time order, each observed. The live engine observes a symbol at the
  latest sample of each batch and ignores a sample older than one it has seen; the poller sends
  one sample per symbol per batch, in order, so both see the same sequence. A sample stored late
  (a parked batch) is replayed in its time order.
* Re-arm state: empty at the period's start. The live engine carries its state across (and after
  losing Redis seeds it from the last 24 h of alerts), so a move already alerted before the period
  alerts again here at its first crossing inside the period.
* Overrides: the symbol's current threshold overrides apply, as live (``_RuleSet.rules_for``),
  and so do the current liquidity tiers for a rule that uses them.
* Long windows (over 3 h): the replay feeds every stored sample to the same tracker, which gives
  the long window the first sample of each 5-minute bucket, as the coarse ring holds them live.
* Relative rules: each symbol's statistics as of the period's start, computed by the refresh
  job's own code from the stored samples of the OI_CHANGE_STATS_DAYS days before it, held for
  the whole period (live, the job refreshes them hourly). A symbol without enough stored history
  before the period uses its stored statistics (which may include the period: look-ahead), and
  one without either gets no verdict; ``relativeStats`` in the answer counts each case.
"""

import json
import logging
import time
import uuid
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from celery import current_app
from django.conf import settings
from django.core.exceptions import NON_FIELD_ERRORS
from django.core.exceptions import ValidationError as DjangoValidationError
from django.utils import timezone

from alerts.backtest import BacktestAlert, BacktestResult, Series, forward_outcome, replay
from alerts.backtest_selectors import (
    BACKTEST_JOB_KEY,
    realtime_symbols_in,
    snapshot_batches,
    stored_span,
    stored_symbols,
)
from alerts.evaluation import COVERAGE_MARGIN_MS, _RuleSet, _tier_multipliers
from alerts.liquidation_rules import BURST_RULE_KIND
from alerts.models import AlertRule
from alerts.outcome_measures import (
    Horizon,
    MoveSide,
    OutcomeStatus,
    flat_bands,
    move_side,
    sample_tolerance_sec,
)
from alerts.relative_selectors import change_stats_for
from alerts.relative_services import change_stats_from_snapshots
from alerts.rules import Rule, RuleKind, rule_from_fields
from alerts.selectors import RULE_FIELD_NAMES, alert_overrides
from common.errors import InvalidInput
from common.redis import get_redis
from common.symbols import symbol_problem
from common.timeutil import datetime_from_ms, ms_from_datetime

logger = logging.getLogger(__name__)

BACKTEST_TASK = "alerts.backtest_run"  # alerts.tasks.backtest_run_task: (job_id,)
DRAFT_RULE_ID = 0
DRAFT_RULE_NAME = "draft"
DAY_MS = 86_400_000
SYMBOLS_PER_READ = 100  # rows of a batch held at once: 100 x 7 days @ 10 s = 6 M (~300 MB)
ALERTS_LISTED_MAX = 2000
MAX_SYMBOLS = 1000
MAX_DAYS = 3650


class JobState(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


@dataclass(frozen=True)
class BacktestRequest:
    """A validated backtest: the rule (before per-symbol overrides), the symbols, the period."""

    rule: Rule
    rule_fields: dict
    symbols: tuple[str, ...]
    since: datetime
    until: datetime

    @property
    def estimated_samples(self) -> int:
        seconds = (self.until - self.since).total_seconds()
        return int(len(self.symbols) * seconds / max(settings.OI_WINDOW_SEC, 1))

    def encode(self) -> str:
        return json.dumps(
            {
                "rule_id": self.rule.rule_id,
                "rule_fields": self.rule_fields,
                "symbols": list(self.symbols),
                "since": self.since.isoformat(),
                "until": self.until.isoformat(),
            }
        )

    @classmethod
    def decode(cls, raw: str) -> "BacktestRequest":
        data = json.loads(raw)
        return cls(
            rule=rule_from_fields(data["rule_id"], data["rule_fields"]),
            rule_fields=data["rule_fields"],
            symbols=tuple(data["symbols"]),
            since=datetime.fromisoformat(data["since"]),
            until=datetime.fromisoformat(data["until"]),
        )


def _json_fields(rule: AlertRule) -> dict:
    fields = {}
    for name in RULE_FIELD_NAMES:
        value = getattr(rule, name)
        if name in ("threshold_pct", "dump_threshold_pct", "min_delta_contracts",
                    "min_delta_usd", "rearm_ratio", "step_pct") and value is not None:  # fmt: skip
            value = str(value)
        fields[name] = list(value) if isinstance(value, (list, tuple)) else value
    return fields


LIQUIDATION_BACKTEST_REFUSED = (
    "a liquidation_burst rule cannot be backtested: the backtest replays open-interest "
    "samples, and the symbols' past 24 h volumes its thresholds may need are not stored"
)


def backtest_rule_saved(rule_id: object) -> tuple[Rule, dict]:
    if isinstance(rule_id, bool) or not isinstance(rule_id, int):
        raise InvalidInput(field="rule_id", reason="must be the id of a saved rule")
    rule = AlertRule.objects.filter(pk=rule_id).first()
    if rule is None:
        raise InvalidInput(field="rule_id", reason=f"no rule {rule_id}")
    if rule.kind == BURST_RULE_KIND:
        raise InvalidInput(field="rule_id", reason=LIQUIDATION_BACKTEST_REFUSED)
    fields = _json_fields(rule)
    return rule_from_fields(rule.pk, fields), fields


def backtest_rule_draft(validated_fields: Mapping) -> tuple[Rule, dict]:
    """An unsaved AlertRule from the POST /api/alert-rules fields, validated by the model's
    ``full_clean`` (the one validation of a rule; a draft's name need not be unique)."""
    fields = dict(validated_fields)
    if fields.get("kind") == BURST_RULE_KIND:
        raise InvalidInput(field="rule.kind", reason=LIQUIDATION_BACKTEST_REFUSED)
    fields.setdefault("name", DRAFT_RULE_NAME)
    rule = AlertRule(**fields)
    try:
        rule.full_clean(validate_unique=False)
    except DjangoValidationError as exc:
        field, messages = next(iter(exc.message_dict.items()))
        where = "rule" if field == NON_FIELD_ERRORS else f"rule.{field}"
        raise InvalidInput(field=where, reason=" ".join(messages)) from exc
    json_fields = _json_fields(rule)
    return rule_from_fields(DRAFT_RULE_ID, json_fields), json_fields


def backtest_request(
    *,
    rule: Rule,
    rule_fields: dict,
    days: float | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    symbols: list[str] | None = None,
    now: datetime | None = None,
) -> BacktestRequest:
    """Check the period, the symbols and the rule's window against what is stored; an
    ``InvalidInput`` names the field otherwise."""
    now = now or timezone.now()
    period_field = "days" if days is not None else "since"
    if days is not None:
        if since is not None:
            raise InvalidInput(field="days", reason="give either days or since, not both")
        if not days > 0:
            raise InvalidInput(field="days", reason="must be > 0")
        if days > MAX_DAYS:
            raise InvalidInput(field="days", reason=f"at most {MAX_DAYS}")
        until = until or now
        since = until - timedelta(days=days)
    if since is None:
        raise InvalidInput(field="days", reason="give days (the last N days) or since")
    until = until or now
    if since >= until:
        raise InvalidInput(field=period_field, reason="the period is empty (since >= until)")
    retention = settings.OI_SNAPSHOT_RETENTION_DAYS
    if retention > 0 and until - since > timedelta(days=retention):
        raise InvalidInput(
            field=period_field,
            reason=f"longer than the snapshot retention (OI_SNAPSHOT_RETENTION_DAYS={retention})",
        )
    if since.year < 1971 or until.year > 9000:
        raise InvalidInput(field=period_field, reason="must lie between 1971 and 9000")
    lead_in = timedelta(seconds=rule.window_sec, milliseconds=COVERAGE_MARGIN_MS)
    if symbols:
        if len(symbols) > MAX_SYMBOLS:
            raise InvalidInput(field="symbols", reason=f"at most {MAX_SYMBOLS} symbols")
        for symbol in symbols:
            if problem := symbol_problem(symbol):
                raise InvalidInput(field="symbols", reason=f"{symbol!r} {problem}")
        symbols = list(dict.fromkeys(symbols))
        known = stored_symbols(symbols)
        unknown = [symbol for symbol in symbols if symbol not in known]
        if unknown:
            raise InvalidInput(
                field="symbols", reason=f"no stored samples of {', '.join(unknown[:10])}"
            )
        symbols = [symbol for symbol in symbols if rule.applies_to(symbol)]
        if not symbols:
            raise InvalidInput(field="symbols", reason="the rule applies to none of them")
    first, last = stored_span(symbols or None, since=since - lead_in, until=until)
    if first is None or last < since:
        raise InvalidInput(field=period_field, reason="no stored samples in the period")
    if (last - first).total_seconds() < rule.window_sec:
        field = "rule_id" if rule.rule_id != DRAFT_RULE_ID else "rule.window_sec"
        raise InvalidInput(
            field=field,
            reason=f"the window ({rule.window_sec} s) is longer than the stored history of "
            f"the period ({int((last - first).total_seconds())} s)",
        )
    if not symbols:
        symbols = [s for s in realtime_symbols_in(since=since, until=until) if rule.applies_to(s)]
    return BacktestRequest(rule, rule_fields, tuple(symbols), since, until)


def backtest_run(
    request: BacktestRequest,
    *,
    progress: Callable[[int, int], None] | None = None,
    deadline: float | None = None,
) -> dict:
    """Replay the rule over every symbol, SYMBOLS_PER_READ at a time; ``progress(done, total)``
    after each batch. Stops with TimeoutError past ``deadline`` (time.monotonic())."""
    started = time.monotonic()
    rule_set = _RuleSet(
        None, 0.0, (request.rule,), alert_overrides(),
        multipliers=_tier_multipliers() if request.rule.liquidity_tiers else {},
    )  # fmt: skip
    stats, stats_sources = _relative_stats(request)
    lead_in_ms = request.rule.window_sec * 1000 + COVERAGE_MARGIN_MS
    read_since = request.since - timedelta(milliseconds=lead_in_ms)
    start_ms = ms_from_datetime(request.since)
    result = BacktestResult()
    days: dict[str, float] = {}
    read_sec = 0.0
    done = 0
    # read on past the period for what followed its last alerts (outcomes), never replayed
    tolerance_ms = int(sample_tolerance_sec(settings.OI_MAX_INTERVAL_SEC) * 1000)
    until_ms = ms_from_datetime(request.until)
    read_until = min(
        request.until + timedelta(seconds=max(Horizon)) + timedelta(milliseconds=tolerance_ms),
        max(timezone.now(), request.until),
    )
    outcomes: dict[tuple, dict] = {}
    batches = snapshot_batches(
        request.symbols, since=read_since, until=read_until, batch=SYMBOLS_PER_READ
    )
    while True:
        read_started = time.monotonic()
        batch = next(batches, None)
        read_sec += time.monotonic() - read_started
        if batch is None:
            break
        chunk, series = batch
        for symbol in chunk:
            if symbol not in series:
                continue
            rules = {rule.name: rule for rule in rule_set.rules_for(symbol)}
            read = series[symbol]
            symbol_series = read.until(until_ms)
            replayed = replay(rules, symbol_series, start_ms=start_ms, stats=stats.get(symbol))
            result.merge(replayed)
            for alert in replayed.alerts:
                outcomes[_alert_key(alert)] = _outcomes_of(alert, read, tolerance_ms)
            times = symbol_series.t_ms
            in_period = times[times >= start_ms]
            if len(in_period):
                days[symbol] = max((int(in_period[-1]) - int(in_period[0])) / DAY_MS, 1 / 24)
        done += len(chunk)
        if progress is not None:
            progress(done, len(request.symbols))
        if deadline is not None and time.monotonic() > deadline:
            raise TimeoutError(f"stopped after {done} of {len(request.symbols)} symbols")
    result.sort()
    answer = _answer(request, result, days, time.monotonic() - started, read_sec, outcomes)
    if stats_sources is not None:
        answer["relativeStats"] = stats_sources
    return answer


def _relative_stats(request: BacktestRequest) -> tuple[dict[str, dict], dict | None]:
    """symbol -> {window_sec: statistics} for a relative rule (see the module's notes), and how
    many symbols got statistics from where."""
    rule = request.rule
    if rule.kind is not RuleKind.RELATIVE:
        return {}, None
    symbols = list(request.symbols)
    as_of = change_stats_from_snapshots(symbols, [rule.window_sec], until=request.since)
    stored = change_stats_for(symbols)
    stats: dict[str, dict] = {}
    sources = Counter()
    for symbol in symbols:
        if symbol in as_of:
            stats[symbol] = {rule.window_sec: as_of[symbol][0]}
            sources["asOfPeriodStart"] += 1
        elif (symbol, rule.window_sec) in stored:
            stats[symbol] = {rule.window_sec: stored[(symbol, rule.window_sec)]}
            sources["storedNow"] += 1
        else:
            sources["none"] += 1
    return stats, dict(sources)


def _alert_key(alert: BacktestAlert) -> tuple:
    return (alert.symbol, alert.t_ms, alert.rule_id, alert.direction)


def _outcomes_of(alert: BacktestAlert, series: Series, tolerance_ms: int) -> dict:
    """The alert's forward moves by horizon label, as the live outcomes job measures them."""
    measured = {}
    for horizon in Horizon:
        outcome = forward_outcome(
            series, t_ms=alert.t_ms, oi_at_alert=alert.current,
            price_at_alert=alert.mark_price, horizon_sec=int(horizon), tolerance_ms=tolerance_ms,
        )  # fmt: skip
        measured[horizon.label] = {
            "status": outcome.status.value,
            "priceChange": outcome.price_change,
            "oiChange": outcome.oi_change,
        }
    return measured


def _outcome_summary(outcomes: list[dict]) -> dict:
    """Per horizon: how many were measured, the forward price move's median and quartiles, and
    the share up / flat / down (flat: inside the regimes' band for the horizon's length)."""
    summary = {}
    for horizon in Horizon:
        moves = sorted(
            o[horizon.label]["priceChange"]
            for o in outcomes
            if o[horizon.label]["priceChange"] is not None
        )
        band, _ = flat_bands(horizon)
        sides = Counter(move_side(move, band) for move in moves)
        summary[horizon.label] = {
            "measured": len(moves),
            "noData": sum(o[horizon.label]["status"] == OutcomeStatus.NO_DATA for o in outcomes),
            "priceChangeMedian": _quantile(moves, 0.5),
            "priceChangeQ1": _quantile(moves, 0.25),
            "priceChangeQ3": _quantile(moves, 0.75),
            "shareUp": round(sides[MoveSide.UP] / len(moves), 4) if moves else None,
            "shareFlat": round(sides[MoveSide.FLAT] / len(moves), 4) if moves else None,
            "shareDown": round(sides[MoveSide.DOWN] / len(moves), 4) if moves else None,
        }
    return summary


def _quantile(values: list[float], q: float) -> float | None:
    """Linear interpolation between the closest ranks (Postgres' percentile_cont)."""
    if not values:
        return None
    position = q * (len(values) - 1)
    low = int(position)
    high = min(low + 1, len(values) - 1)
    return values[low] + (values[high] - values[low]) * (position - low)


def _answer(
    request: BacktestRequest, result: BacktestResult, days: dict[str, float], elapsed: float,
    read_sec: float, outcomes: dict[tuple, dict],
) -> dict:  # fmt: skip
    per_symbol = Counter(alert.symbol for alert in result.alerts)
    symbol_days = sum(days.values())
    regimes = Counter(alert.regime for alert in result.alerts)
    return {
        "rule": {"id": request.rule.rule_id or None, **request.rule_fields},
        "since": request.since.isoformat(),
        "until": request.until.isoformat(),
        "symbols": len(request.symbols),
        "samples": result.samples,
        "symbolDays": round(symbol_days, 3),
        "alertsTotal": len(result.alerts),
        "alertsPerSymbolDay": round(len(result.alerts) / symbol_days, 4) if symbol_days else None,
        "perSymbol": [
            {
                "symbol": symbol,
                "alerts": per_symbol.get(symbol, 0),
                "days": round(span, 3),
                "alertsPerDay": round(per_symbol.get(symbol, 0) / span, 4),
            }
            for symbol, span in sorted(days.items())
        ],
        "regimes": dict(regimes.most_common()),
        "outcomes": _outcome_summary([outcomes[_alert_key(a)] for a in result.alerts]),
        "actions": dict(result.actions),
        "blockedReasons": dict(result.blocked_reasons),
        "alerts": [
            {
                "symbol": alert.symbol,
                "direction": alert.direction.value,
                "ts": datetime_from_ms(alert.t_ms).isoformat().replace("+00:00", "Z"),
                "tMs": alert.t_ms,
                "pctChange": alert.pct_change,
                "reference": alert.reference,
                "referenceKind": alert.reference_kind,
                "current": alert.current,
                "priceChangePct": alert.price_change_pct,
                "markPrice": alert.mark_price,
                "regime": alert.regime,
                "outcomes": outcomes[_alert_key(alert)],
            }
            for alert in result.alerts[:ALERTS_LISTED_MAX]
        ],
        "alertsListed": min(len(result.alerts), ALERTS_LISTED_MAX),
        "elapsedSec": round(elapsed, 3),
        "readSec": round(read_sec, 3),
    }


# Jobs: state, progress and result in one Redis hash per job, kept BACKTEST_RESULT_TTL_SEC.


def _job_key(job_id: str) -> str:
    return BACKTEST_JOB_KEY.format(job_id)


def backtest_job_create(request: BacktestRequest) -> str:
    job_id = uuid.uuid4().hex
    key = _job_key(job_id)
    with get_redis().pipeline(transaction=True) as pipe:
        pipe.hset(
            key,
            mapping={
                "state": JobState.QUEUED.value,
                "request": request.encode(),
                "done": 0,
                "total": len(request.symbols),
                "created_ms": ms_from_datetime(timezone.now()),
            },
        )
        pipe.expire(key, settings.BACKTEST_RESULT_TTL_SEC)
        pipe.execute()
    return job_id


def backtest_enqueue(job_id: str) -> None:
    """Hand a created job to the backtest queue (by task name: see alerts.tasks)."""
    current_app.send_task(
        BACKTEST_TASK, args=(job_id,), expires=settings.BACKTEST_QUEUE_EXPIRES_SEC
    )


def backtest_job_run(job_id: str) -> JobState:
    """Run a queued job once (a second delivery of the task finds it no longer queued)."""
    redis = get_redis()
    key = _job_key(job_id)
    if redis.hget(key, "state") != JobState.QUEUED.value:
        return JobState(redis.hget(key, "state") or JobState.FAILED)
    if not redis.hsetnx(key, "claimed", 1):
        return JobState.RUNNING
    redis.hset(key, "state", JobState.RUNNING.value)
    request = BacktestRequest.decode(redis.hget(key, "request"))

    def progress(done: int, total: int) -> None:
        redis.hset(key, mapping={"done": done, "total": total})

    deadline = time.monotonic() + settings.BACKTEST_TIME_LIMIT_SEC
    try:
        answer = backtest_run(request, progress=progress, deadline=deadline)
    except Exception as exc:
        logger.exception("backtest failed", extra={"job": job_id, "cause": repr(exc)[:300]})
        redis.hset(key, mapping={"state": JobState.FAILED.value, "error": str(exc)[:500]})
        return JobState.FAILED
    redis.hset(key, mapping={"state": JobState.DONE.value, "result": json.dumps(answer)})
    return JobState.DONE


def backtest_job_finish_inline(job_id: str, answer: dict) -> None:
    get_redis().hset(
        _job_key(job_id),
        mapping={"state": JobState.DONE.value, "claimed": 1, "result": json.dumps(answer)},
    )
