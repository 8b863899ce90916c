from collections.abc import Sequence
from datetime import datetime

from django.db.models import QuerySet
from psycopg import sql

from alerts.models import AlertRule, AlertThresholdOverride, OpenInterestAlert, RuleKind
from alerts.rules import Rule, rule_from_fields
from oi.exports import CsvExport, iso_utc, plain_numeric, select_list, time_range_where

OVERRIDE_FIELDS = (
    "spike_threshold_pct", "dump_threshold_pct", "min_delta_contracts", "min_delta_usd",
    "cooldown_sec",
)  # fmt: skip


def alert_list(
    *,
    symbols: list[str] | None = None,
    direction: str | None = None,
    since: datetime | None = None,
    after_id: int | None = None,
    rule: str | None = None,
) -> QuerySet[OpenInterestAlert]:
    """Alerts newest first, filtered; `after_id` is for clients catching up after a reconnect."""
    alerts = OpenInterestAlert.objects.all()
    if direction:
        alerts = alerts.filter(direction=direction)
    return alerts_filtered(alerts, symbols=symbols, since=since, after_id=after_id, rule=rule)


def alerts_filtered(
    alerts: QuerySet,
    *,
    symbols: list[str] | None,
    since: datetime | None,
    after_id: int | None,
    rule: str | None,
) -> QuerySet:
    """The filters every alert list shares (open-interest and liquidation-burst alerts), newest
    first."""
    if symbols:
        alerts = alerts.filter(symbol__in=symbols)
    if since is not None:
        alerts = alerts.filter(ts__gte=since)
    if after_id is not None:
        alerts = alerts.filter(id__gt=after_id)
    if rule:
        alerts = alerts.filter(rule_name=rule)
    return alerts.order_by("-ts", "-id")


RULE_FIELD_NAMES = (
    "name", "kind", "window_sec", "baseline_from_sec", "direction", "threshold_pct",
    "dump_threshold_pct", "min_delta_contracts", "min_delta_usd", "cooldown_sec", "rearm_ratio",
    "step_pct", "min_samples", "scope", "symbols", "regimes", "liquidity_tiers",
)  # fmt: skip


def rule_from_model(rule: AlertRule) -> Rule:
    """The pure rule of a stored one."""
    return rule_from_fields(rule.pk, {name: getattr(rule, name) for name in RULE_FIELD_NAMES})


def alert_rules_enabled() -> list[Rule]:
    """The enabled open-interest rules (liquidation-burst rules run in the streams process:
    alerts.liquidation_selectors)."""
    rules = AlertRule.objects.filter(enabled=True).exclude(kind=RuleKind.LIQUIDATION_BURST)
    return [rule_from_model(rule) for rule in rules]


def alert_overrides() -> dict[str, dict[int | None, dict]]:
    """symbol -> rule id (None: every rule) -> the override's non-empty fields."""
    overrides: dict[str, dict[int | None, dict]] = {}
    for row in AlertThresholdOverride.objects.values("symbol", "rule_id", *OVERRIDE_FIELDS):
        fields = {name: row[name] for name in OVERRIDE_FIELDS if row[name] is not None}
        overrides.setdefault(row["symbol"], {})[row["rule_id"]] = fields
    return overrides


_NUMERIC_EXPORT_COLUMNS = (
    "baseline", "current", "pct_change", "abs_change", "threshold_pct", "price_change_pct",
    "mark_price", "funding_rate", "oi_usd_before", "oi_usd_after", "quote_volume_24h",
)  # fmt: skip
ALERT_EXPORT_COLUMNS = (
    ("id", None),
    ("ts", iso_utc("ts")),
    ("symbol", None),
    ("direction", None),
    ("source", None),
    ("rule_name", None),
    ("window_sec", None),
    ("reference", None),
    *((name, plain_numeric(name)) for name in _NUMERIC_EXPORT_COLUMNS),
    ("alerts_24h", None),
    ("created_at", iso_utc("created_at")),
)


def alert_export(
    *,
    since: datetime,
    until: datetime,
    symbols: Sequence[str] | None = None,
    source: str | None = None,
) -> CsvExport:
    """Alerts with since <= ts < until (of `symbols`, from `source`), ordered by time then id:
    the statement `oi.exports` streams as CSV."""
    where, params = time_range_where(since=since, until=until, symbols=symbols, source=source)
    select = sql.SQL("SELECT {} FROM {} WHERE {} ORDER BY ts, id").format(
        select_list(ALERT_EXPORT_COLUMNS), sql.Identifier(OpenInterestAlert._meta.db_table), where
    )
    return CsvExport(
        select=select,
        params=params,
        columns=tuple(name for name, _ in ALERT_EXPORT_COLUMNS),
        filename=f"open-interest-alerts-{since:%Y%m%dT%H%M%SZ}-{until:%Y%m%dT%H%M%SZ}.csv",
    )
