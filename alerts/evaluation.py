"""Runs every enabled alert rule on each batch of new samples (the I/O around alerts.rules).

Each process keeps one ``SymbolTracker`` per symbol. A symbol's shards may run in different
processes, so before evaluating, a batch reads from the ring buffers only the samples each tracker
has not seen yet (one pipelined round trip per batch): each new sample costs O(1) to O(log n) per
rule window, never a re-read of the whole window.

The trackers and the cached rule set are module state shared by every thread of the process (a
Celery worker on a thread pool runs several shards at once): one lock guards them, held while the
trackers are brought up to date and observed, not while fires are claimed and stored.

The rules' re-arm state (``alerts.rules.gate``) lives in one Redis hash shared by every process,
changed only by compare-and-set, so two processes never both fire on one move: a fire is claimed,
then stored (``alerts.fire_once``, as the ingest cooldowns do). If Redis lost the
hash (a restart without persistence), it is seeded again from the last 24 h of stored alerts
before any rule may fire, so a restart does not repeat alerts.

Long windows (4 h, 24 h): a tracker rebuilt for them reads the coarse ring (one sample per
5 min, 25 h) for what lies before the full-resolution ring, then the full-resolution ring
(oi.coarse.merged_history); afterwards each new sample feeds both kinds of window. Relative rules
get each symbol's change statistics (alerts.relative_selectors, reloaded when the refresh job
bumps their version); rules with ``liquidity_tiers`` get the symbol's tier multiplier
(OI_LIQUIDITY_TIERS) applied before its overrides, so an override's threshold wins.
"""

import logging
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, replace
from dataclasses import field as dataclass_field
from datetime import timedelta
from decimal import Decimal

from django.conf import settings
from django.utils import timezone

from alerts.enums import VerdictReason
from alerts.fire_once import (
    ClaimStatus,
    claim_status,
    hash_claims_swap,
    store_claimed,
)
from alerts.models import AlertSource, OpenInterestAlert
from alerts.payloads import AlertCandidate
from alerts.relative import ChangeStats, tier_multiplier, tiers_parse
from alerts.relative_selectors import CHANGE_STATS_VERSION_KEY, change_stats_all
from alerts.rules import FireState, GateAction, Observation, Rule, RuleKind, SymbolTracker, gate
from alerts.selectors import alert_overrides, alert_rules_enabled
from alerts.services import RULES_VERSION_KEY, AlertOutcome, RaisedAlert, alert_store
from common.locks import redis_lease
from common.redis import get_redis
from common.timeutil import datetime_from_ms, ms_from_datetime, now_ms
from liquidity.selectors import liquid_symbol_list, universe_quote_volumes
from oi.coarse import merged_history
from oi.keys import BACKFILL_DONE_KEY, FUNDING_RATE_KEY
from oi.ring import RING_MAX_AHEAD_MS, coarse_ring_key, decode_members, ring_key
from streams.selectors import (
    LiquidationWindow,
    liquidation_sums_over_windows,
    liquidations_recorded,
)

logger = logging.getLogger(__name__)

RULES_CACHE_SEC = 10.0
RULE_STATE_KEY = "oi:alert:rule_state"
RULE_STATE_SEEDED_FIELD = "__seeded__"
RULE_STATE_SEED_LEASE = "oi:alert:rule_state:seeding"
SEED_LOOKBACK = timedelta(hours=24)
# A rebuilt tracker reads this much more than its longest window, so it holds a sample older than
# the window (its coverage) even where the ring holds 5-minute backfilled history.
COVERAGE_MARGIN_MS = 10 * 60_000


@dataclass(frozen=True)
class _RuleSet:
    version: bytes | str | None
    loaded_at: float
    rules: tuple[Rule, ...]
    overrides: dict[str, dict[int | None, dict]]
    stats: dict[tuple[str, int], ChangeStats] = dataclass_field(default_factory=dict)
    """(symbol, window_sec) -> the symbol's change statistics, for relative rules."""
    multipliers: dict[str, float] = dataclass_field(default_factory=dict)
    """symbol -> its liquidity tier's threshold multiplier, for rules with liquidity_tiers."""
    stats_version: bytes | str | None = None

    @property
    def window_keys(self) -> frozenset:
        return frozenset(rule.window_key for rule in self.rules)

    @property
    def longest_window_ms(self) -> int:
        """Of the windows read from the full-resolution ring."""
        return max((r.window_sec for r in self.rules if not r.long_window), default=0) * 1000

    @property
    def longest_long_window_ms(self) -> int:
        """Of the windows read from the coarse ring (0: none)."""
        return max((r.window_sec for r in self.rules if r.long_window), default=0) * 1000

    def stats_of(self, symbol: str, rule: Rule) -> ChangeStats | None:
        if rule.kind is not RuleKind.RELATIVE:
            return None
        return self.stats.get((symbol, rule.window_sec))

    def rules_for(self, symbol: str) -> list[Rule]:
        """The rules that apply to ``symbol``: each scaled by the symbol's liquidity tier when it
        uses tiers, then with the symbol's overrides on top (the every-rule override first, then
        the rule's own), so an override's threshold wins over the tier."""
        symbol_overrides = self.overrides.get(symbol, {})
        rules = []
        for rule in self.rules:
            if not rule.applies_to(symbol):
                continue
            if rule.liquidity_tiers:
                rule = rule.scaled(self.multipliers.get(symbol, 1.0))
            for key in (None, rule.rule_id):
                if key in symbol_overrides:
                    rule = rule.overridden(symbol_overrides[key])
            rules.append(rule)
        return rules


_rule_set: _RuleSet | None = None
# symbol -> (tracker, the symbol's backfill stamp when it was built, the rule windows it serves)
_trackers: dict[str, tuple[SymbolTracker, str | None, frozenset]] = {}
# symbol -> when (time.monotonic()) its tracker was last brought up to date. A tracker idle this
# long (its symbol left the universe, or was only ever sent once) is dropped: memory follows the
# symbols in use, not every symbol ever seen. A symbol that comes back is rebuilt from its ring.
TRACKER_IDLE_SEC = 15 * 60
TRACKER_SWEEP_EVERY_SEC = 60
_tracker_used_at: dict[str, float] = {}
_last_sweep = [0.0]
# Guards the module state above (and the trackers themselves) across a process's threads;
# re-entrant: the sweep runs inside an evaluation.
_engine_lock = threading.RLock()


def engine_reset() -> None:
    """Forget this process's rules and trackers (tests; a worker never needs to)."""
    global _rule_set
    with _engine_lock:
        _rule_set = None
        _trackers.clear()
        _tracker_used_at.clear()


def trackers_evict_idle(*, now: float | None = None) -> int:
    """Drop the trackers not used for TRACKER_IDLE_SEC; returns how many."""
    now = time.monotonic() if now is None else now
    with _engine_lock:
        idle = [s for s, used in _tracker_used_at.items() if now - used > TRACKER_IDLE_SEC]
        for symbol in idle:
            _trackers.pop(symbol, None)
            del _tracker_used_at[symbol]
        _last_sweep[0] = now
    return len(idle)


def tracker_count() -> int:
    with _engine_lock:
        return len(_trackers)


def current_rule_set() -> _RuleSet:
    """The enabled rules and overrides, reloaded every 10 s and at once when they change."""
    global _rule_set
    version, stats_version = get_redis().mget(RULES_VERSION_KEY, CHANGE_STATS_VERSION_KEY)
    now = time.monotonic()
    if (
        _rule_set is None
        or _rule_set.version != version
        or _rule_set.stats_version != stats_version
        or now - _rule_set.loaded_at > RULES_CACHE_SEC
    ):
        rules = tuple(alert_rules_enabled())
        _rule_set = _RuleSet(
            version, now, rules, alert_overrides(),
            stats=change_stats_all() if any(r.kind is RuleKind.RELATIVE for r in rules) else {},
            multipliers=_tier_multipliers() if any(r.liquidity_tiers for r in rules) else {},
            stats_version=stats_version,
        )  # fmt: skip
    return _rule_set


def _tier_multipliers() -> dict[str, float]:
    """Each liquid symbol's tier multiplier from its 24 h quote volume (OI_LIQUIDITY_TIERS)."""
    tiers = tiers_parse(settings.OI_LIQUIDITY_TIERS)
    return {
        symbol: tier_multiplier(float(volume) if volume is not None else None, tiers)
        for symbol, volume in liquid_symbol_list().values_list("symbol", "quote_volume_24h")
    }


def alerts_evaluate(
    symbols: Iterable[str],
    *,
    mark_prices: dict[str, Decimal | None],
    source: str = AlertSource.POLLER,
) -> list[RaisedAlert]:
    """Bring each symbol's tracker up to date from its ring buffer, run every rule that applies
    at its latest sample and raise what fires."""
    symbols = list(dict.fromkeys(symbols))
    if not symbols:
        return []
    with _engine_lock:
        observations = _observe(symbols, mark_prices)
    return _gate_and_raise(observations, source)


def _observe(
    symbols: list[str], mark_prices: dict[str, Decimal | None]
) -> list[tuple[str, Observation]]:
    """Every applicable rule's observation at each updated symbol's latest sample (under
    _engine_lock)."""
    rule_set = current_rule_set()
    if not rule_set.rules:
        return []
    updated = _trackers_sync(symbols, rule_set)
    observations: list[tuple[str, Observation]] = []
    for symbol in updated:
        tracker = _trackers[symbol][0]
        for rule in rule_set.rules_for(symbol):
            stats = rule_set.stats_of(symbol, rule)
            for observation in tracker.observe(rule, mark_prices.get(symbol), stats):
                observations.append((symbol, observation))
                if observation.crossed and observation.reason is not VerdictReason.ALERT:
                    logger.info(
                        "alert held back by a rule filter (a minimum, or its regimes)",
                        extra={
                            "symbol": symbol,
                            "rule": rule.name,
                            "direction": observation.direction.value,
                            "cause": observation.reason.value,
                            "pct_change": f"{observation.pct_change:.4f}",
                        },
                    )
    return observations


def _trackers_sync(symbols: list[str], rule_set: _RuleSet) -> list[str]:
    """Feed each tracker the ring samples it has not seen; returns the symbols that got any.

    A tracker made before its symbol's backfill landed (the backfill stamp changed) or for other
    rule windows is rebuilt from the whole window instead, so history written behind its latest
    sample is never missed."""
    redis = get_redis()
    at_ms = now_ms()
    # Never read the future into a tracker: one sample dated ahead would be its "latest" until
    # that time comes, and every real sample before it would be ignored.
    future_ms = at_ms + RING_MAX_AHEAD_MS
    used_at = time.monotonic()
    if used_at - _last_sweep[0] > TRACKER_SWEEP_EVERY_SEC:
        trackers_evict_idle(now=used_at)
    window_keys = rule_set.window_keys
    stamps = redis.mget([BACKFILL_DONE_KEY.format(symbol) for symbol in symbols])
    rebuild: set[str] = set()
    long_ms = rule_set.longest_long_window_ms
    with redis.pipeline(transaction=False) as pipe:
        for symbol, stamp in zip(symbols, stamps, strict=True):
            known = _trackers.get(symbol)
            if (
                known is None
                or known[1] != stamp
                or known[2] != window_keys
                or known[0].latest is None
                or known[0].latest[0] > future_ms
            ):
                rebuild.add(symbol)
                since: int | str = at_ms - rule_set.longest_window_ms - COVERAGE_MARGIN_MS
            else:
                since = f"({known[0].latest[0]}"
            pipe.zrangebyscore(ring_key(symbol), since, future_ms)
        coarse_rebuilt = sorted(rebuild) if long_ms else []
        for symbol in coarse_rebuilt:
            pipe.zrangebyscore(
                coarse_ring_key(symbol), at_ms - long_ms - COVERAGE_MARGIN_MS, future_ms
            )
        replies = pipe.execute()
    new_members = replies[: len(symbols)]
    coarse = dict(zip(coarse_rebuilt, replies[len(symbols) :], strict=True))
    updated = []
    for symbol, stamp, members in zip(symbols, stamps, new_members, strict=True):
        _tracker_used_at[symbol] = used_at
        samples = decode_members(members)
        if symbol in coarse:
            samples = merged_history(decode_members(coarse[symbol]), samples)
        if symbol in rebuild:
            tracker = SymbolTracker(rule_set.rules)
            _trackers[symbol] = (tracker, stamp, window_keys)
        else:
            tracker = _trackers[symbol][0]
        added = False
        for sample in samples:
            added |= tracker.add(sample.time_ms, sample.open_interest, sample.mark_price)
        if added:
            updated.append(symbol)
    return updated


def _state_field(symbol: str, observation: Observation) -> str:
    return f"{observation.rule.rule_id}:{symbol}:{observation.direction.value}"


def _gate_and_raise(observations: list[tuple[str, Observation]], source: str) -> list[RaisedAlert]:
    """Apply the re-arm gate to every observation that can change its state, claim the fires by
    compare-and-set, then store them; a fire whose store fails is given back."""
    candidates = [
        (symbol, obs)
        for symbol, obs in observations
        if obs.crossed or obs.move <= obs.rule.threshold(obs.direction) * obs.rule.rearm_ratio
    ]
    if not candidates:
        return []
    redis = get_redis()
    fields = [_state_field(symbol, obs) for symbol, obs in candidates]
    raw_states = _rule_states_read(redis, fields)
    states = _claims_settled(redis, candidates, fields, raw_states)
    changes: list[tuple[str, str, str]] = []
    fires: list[tuple[str, Observation, str, str]] = []
    for (symbol, obs), field, raw, state in zip(
        candidates, fields, raw_states, states, strict=True
    ):
        action, new_state = gate(state, obs)
        if action is GateAction.REARM:
            changes.append((field, raw, new_state.encode()))
        elif action is GateAction.FIRE:
            claim = replace(new_state, claimed_ms=now_ms()).encode()
            changes.append((field, raw, claim))
            fires.append((symbol, obs, raw, claim))
        elif action in (GateAction.HOLD_COOLDOWN, GateAction.HOLD_NOT_REARMED):
            logger.debug(
                "alert held",
                extra={"symbol": symbol, "rule": obs.rule.name, "cause": action.value},
            )
    claimed = hash_claims_swap(redis, RULE_STATE_KEY, changes)
    fired = [(s, obs, old, new) for s, obs, old, new in fires if claimed[_state_field(s, obs)]]
    if not fired:
        return []
    context = _market_context(redis, sorted({symbol for symbol, *_ in fired}))
    liquidations = _liquidation_context([(symbol, obs) for symbol, obs, *_ in fired])
    raised = []
    for (symbol, obs, old, new), liquidated in zip(fired, liquidations, strict=True):
        candidate = _candidate(symbol, obs, source, {**context.get(symbol, {}), **liquidated})
        field = _state_field(symbol, obs)
        alert = store_claimed(
            lambda candidate=candidate: alert_store(candidate),
            lambda field=field, old=old, new=new: hash_claims_swap(
                redis, RULE_STATE_KEY, [(field, new, old)]
            ),
        )
        settled = replace(FireState.decode(new), claimed_ms=0).encode()
        hash_claims_swap(redis, RULE_STATE_KEY, [(field, new, settled)])
        if alert is None:
            raised.append(RaisedAlert(AlertOutcome.DUPLICATE, None))
            continue
        logger.info(
            "open interest alert",
            extra={
                "symbol": alert.symbol,
                "rule": alert.rule_name,
                "direction": alert.direction,
                "pct_change": f"{alert.pct_change:.4f}",
                "alert_id": alert.id,
            },
        )
        raised.append(RaisedAlert(AlertOutcome.CREATED, alert))
    return raised


def _claims_settled(
    redis, candidates: list[tuple[str, Observation]], fields: list[str], raw_states: list[str]
) -> list[FireState | None]:
    """The states, with claims left pending by a process killed between claiming and storing
    resolved against the database (``alerts.fire_once``): a stale one is dropped (that alert may
    fire again), one whose alert row exists is settled."""
    states = [FireState.decode(raw) for raw in raw_states]
    now = now_ms()
    for index, state in enumerate(states):
        if state is None or not state.claimed_ms:
            continue
        symbol, obs = candidates[index]
        status = claim_status(
            now - state.claimed_ms,
            lambda state=state, symbol=symbol, obs=obs: OpenInterestAlert.objects.filter(
                rule_id=obs.rule.rule_id,
                symbol=symbol,
                direction=obs.direction.value,
                ts=datetime_from_ms(state.fired_ms),
            ).exists(),
        )
        if status is ClaimStatus.FRESH:
            continue
        settled = replace(state, claimed_ms=0) if status is ClaimStatus.STORED else None
        new_raw = settled.encode() if settled else ""
        hash_claims_swap(redis, RULE_STATE_KEY, [(fields[index], raw_states[index], new_raw)])
        if settled is None:
            logger.warning(
                "alert claim without a stored alert dropped",
                extra={"symbol": symbol, "rule": obs.rule.name, "claimed_ms": state.fired_ms},
            )
        states[index] = settled
        raw_states[index] = new_raw
    return states


def _rule_states_read(redis, fields: list[str]) -> list[str]:
    """The raw states of ``fields`` ('' where none), read with the seeded marker in one round
    trip. After Redis lost the rule states (no marker), they are first rebuilt from the stored
    alerts of the last 24 h (each (rule, symbol, direction)'s latest alert, not re-armed) before
    any rule may fire."""
    *raw_states, seeded = redis.hmget(RULE_STATE_KEY, [*fields, RULE_STATE_SEEDED_FIELD])
    if seeded is None:
        _rule_state_seed_once(redis)
        raw_states = redis.hmget(RULE_STATE_KEY, fields)
    return [raw or "" for raw in raw_states]


def _rule_state_seed_once(redis) -> None:
    """Seed under a lease, so one process does it; the others wait for its marker."""
    deadline = time.monotonic() + 5
    while True:
        with redis_lease(redis, RULE_STATE_SEED_LEASE, ttl_sec=30) as held:
            if held:
                if not redis.hexists(RULE_STATE_KEY, RULE_STATE_SEEDED_FIELD):
                    _rule_state_seed(redis)
                return
        if redis.hexists(RULE_STATE_KEY, RULE_STATE_SEEDED_FIELD):
            return
        if time.monotonic() > deadline:
            raise RuntimeError("alert rule states are being seeded by another process")
        time.sleep(0.05)


def _rule_state_seed(redis) -> None:
    since = timezone.now() - SEED_LOOKBACK
    latest = (
        OpenInterestAlert.objects.filter(ts__gte=since, rule__isnull=False)
        .order_by("rule_id", "symbol", "direction", "-ts")
        .distinct("rule_id", "symbol", "direction")
        .values_list("rule_id", "symbol", "direction", "ts", "pct_change")
    )
    states = {
        f"{rule_id}:{symbol}:{direction}": FireState(
            ms_from_datetime(ts), abs(float(pct_change))
        ).encode()
        for rule_id, symbol, direction, ts, pct_change in latest
    }
    states[RULE_STATE_SEEDED_FIELD] = str(now_ms())
    # Only fields still absent: states written since the loss are newer than the database's.
    with redis.pipeline(transaction=True) as pipe:
        for field, value in states.items():
            pipe.hsetnx(RULE_STATE_KEY, field, value)
        pipe.execute()
    logger.info("alert rule states seeded from stored alerts", extra={"states": len(states) - 1})


def _market_context(redis, symbols: list[str]) -> dict[str, dict]:
    """Funding rate (the poller's) and 24 h quote volume (the published universe's) of each
    symbol: two round trips, only when something fires."""
    funding = redis.hmget(FUNDING_RATE_KEY, symbols)
    volumes = universe_quote_volumes(symbols)
    return {
        symbol: {"funding_rate": _decimal(rate), "quote_volume_24h": volumes[symbol]}
        for symbol, rate in zip(symbols, funding, strict=True)
    }


def _liquidation_context(fired: list[tuple[str, Observation]]) -> list[dict]:
    """Each fired observation's long and short liquidation USD over its own window (lower
    bounds, from the liquidation stream), in one query for the batch; empty where the stream
    never ran (disabled, or no frame ever seen), so those alerts carry null, not a false 0."""
    if not fired or not liquidations_recorded():
        return [{} for _ in fired]
    sums = liquidation_sums_over_windows(
        [
            LiquidationWindow(
                symbol,
                since=datetime_from_ms(obs.t_ms - obs.rule.window_sec * 1000),
                until=datetime_from_ms(obs.t_ms),
            )
            for symbol, obs in fired
        ]
    )
    return [
        {"liquidations_long_usd": s.long_usd, "liquidations_short_usd": s.short_usd} for s in sums
    ]


def _decimal(raw: str | None) -> Decimal | None:
    return Decimal(raw) if raw is not None else None


def _dec(value: float | None) -> Decimal | None:
    return Decimal(repr(value)) if value is not None else None


def _candidate(symbol: str, obs: Observation, source: str, context: dict) -> AlertCandidate:
    return AlertCandidate(
        symbol=symbol,
        direction=obs.direction.value,
        baseline=_dec(obs.reference),
        current=_dec(obs.current),
        pct_change=_dec(obs.pct_change),
        abs_change=_dec(obs.abs_change),
        ts=datetime_from_ms(obs.t_ms),
        source=source,
        rule_id=obs.rule.rule_id,
        rule_name=obs.rule.name,
        window_sec=obs.rule.window_sec,
        reference=obs.reference_kind.value,
        threshold_pct=_dec(obs.rule.threshold(obs.direction)),
        price_change_pct=_dec(obs.price_change_pct),
        mark_price=_dec(obs.price_now),
        funding_rate=context.get("funding_rate"),
        oi_usd_before=_dec(obs.oi_usd_before),
        oi_usd_after=_dec(obs.oi_usd_after),
        quote_volume_24h=context.get("quote_volume_24h"),
        liquidations_long_usd=context.get("liquidations_long_usd"),
        liquidations_short_usd=context.get("liquidations_short_usd"),
        regime=obs.regime.value,
    )
