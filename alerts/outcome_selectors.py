"""Reads of the alerts' outcomes: per rule, and per rule and regime, the count, the distribution of
the signed forward move of price and of OI at each horizon (median, quartiles, share up / down /
flat) and the alerts per symbol-day. The statistics are computed in Postgres (percentile_cont).

Measurements, not advice: the moves are reported signed, as they happened.
"""

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db import connection
from django.db.models import Avg, Min
from django.utils import timezone

from alerts.models import AlertForwardOutcome, AlertRule, RuleScope
from alerts.outcome_measures import Horizon, OutcomeStatus, flat_bands
from liquidity.models import LiquidSymbol, UniverseRefresh

QUARTILES = (0.25, 0.5, 0.75)
DEFAULT_PERIOD = timedelta(days=30)
SECONDS_PER_DAY = 86_400


@dataclass(frozen=True)
class MoveDistribution:
    """Signed forward moves (fractions: 0.01 = +1%) of one measure at one horizon."""

    n: int
    q1: float | None
    median: float | None
    q3: float | None
    up: float | None
    """Share of the n moves at or above +flat_band (None when n is 0)."""
    down: float | None
    flat: float | None
    flat_band: float


@dataclass(frozen=True)
class HorizonStats:
    horizon: Horizon
    measured: int
    """Alerts with a sample at this horizon (with or without a mark price)."""
    no_data: int
    """Alerts without a stored sample within the tolerance: not measured, not guessed."""
    pending: int
    """Alerts whose horizon has not come due yet."""
    price: MoveDistribution
    open_interest: MoveDistribution


@dataclass(frozen=True)
class OutcomeStats:
    regime: str | None
    """None: every regime together."""
    alerts: int
    symbols: int
    alerts_per_symbol_day: float | None
    horizons: list[HorizonStats]


@dataclass(frozen=True)
class RuleOutcomes:
    rule_name: str
    rule_id: int | None
    """The rule of that name now (None: deleted, or alerts from another producer)."""
    symbols_watched: float
    """The rule's symbols: its own list, or the liquid universe's average size over the period."""
    overall: OutcomeStats
    by_regime: list[OutcomeStats] = field(default_factory=list)


@dataclass(frozen=True)
class OutcomeReport:
    since: datetime
    until: datetime
    days: float
    """The period's length in days, clipped to when the system first built its universe and to
    now: what alerts per symbol-day divides by."""
    rules: list[RuleOutcomes]


_STATS_SQL = """
WITH picked AS (
    SELECT a.id, a.rule_name, a.regime FROM open_interest_alerts a
    WHERE a.ts >= %(since)s AND a.ts < %(until)s {filters}
), bands (horizon_sec, price_band, oi_band) AS (
    SELECT * FROM unnest(%(horizons)s::int[], %(price_bands)s::float8[], %(oi_bands)s::float8[])
)
SELECT p.rule_name, GROUPING(p.regime) = 1, p.regime, o.horizon_sec,
       count(*) FILTER (WHERE o.status <> %(no_data)s),
       count(*) FILTER (WHERE o.status = %(no_data)s),
       count(o.price_change),
       percentile_cont(%(quartiles)s::float8[]) WITHIN GROUP (ORDER BY o.price_change),
       count(*) FILTER (WHERE o.price_change >= b.price_band),
       count(*) FILTER (WHERE o.price_change <= -b.price_band),
       count(o.oi_change),
       percentile_cont(%(quartiles)s::float8[]) WITHIN GROUP (ORDER BY o.oi_change),
       count(*) FILTER (WHERE o.oi_change >= b.oi_band),
       count(*) FILTER (WHERE o.oi_change <= -b.oi_band)
FROM picked p
JOIN {outcomes} o ON o.alert_id = p.id
JOIN bands b ON b.horizon_sec = o.horizon_sec
GROUP BY GROUPING SETS ((p.rule_name, o.horizon_sec), (p.rule_name, p.regime, o.horizon_sec))
"""

_COUNTS_SQL = """
SELECT a.rule_name, GROUPING(a.regime) = 1, a.regime, count(*), count(DISTINCT a.symbol)
FROM open_interest_alerts a
WHERE a.ts >= %(since)s AND a.ts < %(until)s {filters}
GROUP BY GROUPING SETS ((a.rule_name), (a.rule_name, a.regime))
"""


def _distribution(n, quartiles, up, down, band) -> MoveDistribution:
    q1, median, q3 = quartiles if quartiles else (None, None, None)
    if not n:
        return MoveDistribution(0, None, None, None, None, None, None, band)
    return MoveDistribution(
        n, q1, median, q3, up / n, down / n, (n - up - down) / n, band
    )  # fmt: skip


def _empty_horizon(horizon: Horizon, alerts: int) -> HorizonStats:
    price_band, oi_band = flat_bands(horizon)
    return HorizonStats(
        horizon, 0, 0, alerts, _distribution(0, None, 0, 0, price_band),
        _distribution(0, None, 0, 0, oi_band),
    )  # fmt: skip


def _period_days(since: datetime, until: datetime, now: datetime) -> float:
    first_universe = UniverseRefresh.objects.filter(ok=True).aggregate(at=Min("started_at"))["at"]
    start = max(since, first_universe) if first_universe else since
    end = min(until, now)
    return max(0.0, (end - start).total_seconds() / SECONDS_PER_DAY)


def _universe_size(since: datetime, until: datetime) -> float:
    """The liquid universe's average size over the period's refreshes (else its size now)."""
    average = UniverseRefresh.objects.filter(
        ok=True, finished_at__gte=since, finished_at__lt=until
    ).aggregate(members=Avg("members"))["members"]
    return float(average) if average is not None else float(LiquidSymbol.objects.count())


def _symbols_watched(rule: AlertRule | None, universe: float) -> float:
    if rule is None or rule.scope == RuleScope.ALL:
        return universe
    if rule.scope == RuleScope.ONLY:
        return float(len(rule.symbols))
    return max(0.0, universe - len(rule.symbols))


def alert_outcome_report(
    *,
    rule_names: list[str] | None = None,
    rule_id: int | None = None,
    regime: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    now: datetime | None = None,
) -> OutcomeReport:
    """Outcome statistics of the alerts with since <= ts < until (default: the last 30 days),
    per rule name (as the alert stored it), overall and per regime; filtered by rule names, by
    the rule's id, by one regime. Without a rule filter, every enabled rule is listed, with or
    without alerts."""
    now = now or timezone.now()
    until = until or now
    since = since or until - DEFAULT_PERIOD
    filters, params = [], {"since": since, "until": until}
    if rule_names:
        filters.append("AND a.rule_name = ANY(%(rule_names)s)")
        params["rule_names"] = list(rule_names)
    if rule_id is not None:
        filters.append("AND a.rule_id = %(rule_id)s")
        params["rule_id"] = rule_id
    if regime is not None:
        filters.append("AND a.regime = %(regime)s")
        params["regime"] = regime
    where = " ".join(filters)
    horizons = list(Horizon)
    bands = [flat_bands(h) for h in horizons]
    with connection.cursor() as cursor:
        cursor.execute(_COUNTS_SQL.format(filters=where), params)
        counts = cursor.fetchall()
        cursor.execute(
            _STATS_SQL.format(filters=where, outcomes=AlertForwardOutcome._meta.db_table),
            {
                **params,
                "horizons": [int(h) for h in horizons],
                "price_bands": [b[0] for b in bands],
                "oi_bands": [b[1] for b in bands],
                "quartiles": list(QUARTILES),
                "no_data": OutcomeStatus.NO_DATA.value,
            },
        )
        stats = cursor.fetchall()

    rules = {rule.name: rule for rule in _rules_asked(rule_names, rule_id)}
    names = {row[0] for row in counts}
    if rule_names is None and rule_id is None:
        names |= {name for name, rule in rules.items() if rule.enabled}
    else:
        names |= set(rules)
    days = _period_days(since, until, now)
    universe = _universe_size(since, until)

    per_horizon = {(row[0], row[1], row[2], row[3]): row[4:] for row in stats}
    alert_counts = {(row[0], row[1], row[2]): (row[3], row[4]) for row in counts}
    report_rules = []
    for name in sorted(names):
        rule = rules.get(name)
        watched = _symbols_watched(rule, universe)
        symbol_days = watched * days

        def group(every: bool, group_regime: str | None, *, name=name, symbol_days=symbol_days):
            alerts, symbols = alert_counts.get((name, every, group_regime), (0, 0))
            horizons_stats = []
            for horizon, (price_band, oi_band) in zip(horizons, bands, strict=True):
                row = per_horizon.get((name, every, group_regime, int(horizon)))
                if row is None:
                    horizons_stats.append(_empty_horizon(horizon, alerts))
                    continue
                measured, no_data, n_price, q_price, up_p, down_p, n_oi, q_oi, up_oi, down_oi = row
                horizons_stats.append(
                    HorizonStats(
                        horizon=horizon,
                        measured=measured,
                        no_data=no_data,
                        pending=alerts - measured - no_data,
                        price=_distribution(n_price, q_price, up_p, down_p, price_band),
                        open_interest=_distribution(n_oi, q_oi, up_oi, down_oi, oi_band),
                    )
                )
            return OutcomeStats(
                None if every else group_regime, alerts, symbols,
                alerts / symbol_days if symbol_days > 0 else None, horizons_stats,
            )  # fmt: skip

        regimes = sorted(key[2] for key in alert_counts if key[0] == name and not key[1])
        report_rules.append(
            RuleOutcomes(
                rule_name=name,
                rule_id=rule.pk if rule else None,
                symbols_watched=watched,
                overall=group(True, None),
                by_regime=[group(False, r) for r in regimes],
            )
        )
    return OutcomeReport(since=since, until=until, days=days, rules=report_rules)


def _rules_asked(rule_names: list[str] | None, rule_id: int | None) -> list[AlertRule]:
    rules = AlertRule.objects.all()
    if rule_names:
        rules = rules.filter(name__in=rule_names)
    if rule_id is not None:
        rules = rules.filter(pk=rule_id)
    return list(rules)


def alert_outcomes_of(alert_ids: list[int]) -> dict[int, dict[int, AlertForwardOutcome]]:
    """alert id -> horizon seconds -> its outcome (horizons not yet due are absent)."""
    outcomes: dict[int, dict[int, AlertForwardOutcome]] = {}
    for outcome in AlertForwardOutcome.objects.filter(alert_id__in=alert_ids):
        outcomes.setdefault(outcome.alert_id, {})[outcome.horizon_sec] = outcome
    return outcomes
