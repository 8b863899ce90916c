"""Reads of the liquidation-burst rules and their alerts."""

from datetime import datetime

from django.db.models import QuerySet

from alerts.liquidation_rules import BurstRule, burst_rule_from_fields
from alerts.models import AlertRule, LiquidationAlert, RuleKind
from alerts.selectors import alerts_filtered

BURST_RULE_FIELD_NAMES = (
    "name", "window_sec", "liquidated_side", "threshold_usd", "threshold_volume_share",
    "cooldown_sec", "rearm_ratio", "scope", "symbols",
)  # fmt: skip


def liquidation_rules_enabled() -> list[BurstRule]:
    rules = AlertRule.objects.filter(enabled=True, kind=RuleKind.LIQUIDATION_BURST)
    return [
        burst_rule_from_fields(
            rule.pk, {name: getattr(rule, name) for name in BURST_RULE_FIELD_NAMES}
        )
        for rule in rules.order_by("pk")
    ]


def liquidation_alert_list(
    *,
    symbols: list[str] | None = None,
    side: str | None = None,
    since: datetime | None = None,
    after_id: int | None = None,
    rule: str | None = None,
) -> QuerySet[LiquidationAlert]:
    """Liquidation-burst alerts newest first, filtered; `after_id` for catching up."""
    alerts = LiquidationAlert.objects.all()
    if side:
        alerts = alerts.filter(side=side)
    return alerts_filtered(alerts, symbols=symbols, since=since, after_id=after_id, rule=rule)


def liquidation_alert_stored_since(
    *, rule_name: str, symbol: str, side: str, since: datetime
) -> bool:
    return LiquidationAlert.objects.filter(
        rule_name=rule_name, symbol=symbol, side=side, ts__gte=since
    ).exists()
