from datetime import datetime

from django.db.models import QuerySet

from alerts.detection import Direction
from alerts.models import AlertRule, AlertThresholdOverride, OpenInterestAlert, RuleDirection
from alerts.rules import Rule, RuleKind, Scope

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


def rule_from_model(rule: AlertRule) -> Rule:
    """The pure rule of a stored one."""
    directions = {
        RuleDirection.UP: (Direction.UP,),
        RuleDirection.DOWN: (Direction.DOWN,),
        RuleDirection.BOTH: (Direction.UP, Direction.DOWN),
    }[rule.direction]
    threshold = float(rule.threshold_pct)
    return Rule(
        rule_id=rule.pk,
        name=rule.name,
        kind=RuleKind(rule.kind),
        window_sec=rule.window_sec,
        baseline_from_sec=rule.baseline_from_sec,
        up_threshold=threshold,
        down_threshold=(
            float(rule.dump_threshold_pct) if rule.dump_threshold_pct is not None else threshold
        ),
        directions=directions,
        min_delta_contracts=_optional_float(rule.min_delta_contracts),
        min_delta_usd=_optional_float(rule.min_delta_usd),
        cooldown_sec=rule.cooldown_sec,
        rearm_ratio=float(rule.rearm_ratio),
        step_pct=_optional_float(rule.step_pct),
        min_samples=rule.min_samples,
        scope=Scope(rule.scope),
        symbols=frozenset(rule.symbols),
    )


def alert_rules_enabled() -> list[Rule]:
    return [rule_from_model(rule) for rule in AlertRule.objects.filter(enabled=True)]


def alert_overrides() -> dict[str, dict[int | None, dict]]:
    """symbol -> rule id (None: every rule) -> the override's non-empty fields."""
    overrides: dict[str, dict[int | None, dict]] = {}
    for row in AlertThresholdOverride.objects.values("symbol", "rule_id", *OVERRIDE_FIELDS):
        fields = {name: row[name] for name in OVERRIDE_FIELDS if row[name] is not None}
        overrides.setdefault(row["symbol"], {})[row["rule_id"]] = fields
    return overrides


def _optional_float(value) -> float | None:
    return float(value) if value is not None else None
