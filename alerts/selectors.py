from datetime import datetime

from django.db.models import QuerySet

from alerts.models import AlertRule, AlertThresholdOverride, OpenInterestAlert
from alerts.rules import Rule, rule_from_fields

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
    if symbols:
        alerts = alerts.filter(symbol__in=symbols)
    if direction:
        alerts = alerts.filter(direction=direction)
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
    "step_pct", "min_samples", "scope", "symbols",
)  # fmt: skip


def rule_from_model(rule: AlertRule) -> Rule:
    """The pure rule of a stored one."""
    return rule_from_fields(rule.pk, {name: getattr(rule, name) for name in RULE_FIELD_NAMES})


def alert_rules_enabled() -> list[Rule]:
    return [rule_from_model(rule) for rule in AlertRule.objects.filter(enabled=True)]


def alert_overrides() -> dict[str, dict[int | None, dict]]:
    """symbol -> rule id (None: every rule) -> the override's non-empty fields."""
    overrides: dict[str, dict[int | None, dict]] = {}
    for row in AlertThresholdOverride.objects.values("symbol", "rule_id", *OVERRIDE_FIELDS):
        fields = {name: row[name] for name in OVERRIDE_FIELDS if row[name] is not None}
        overrides.setdefault(row["symbol"], {})[row["rule_id"]] = fields
    return overrides
