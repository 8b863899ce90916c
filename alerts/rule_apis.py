"""The alert rules and per-symbol overrides, read and edited over the API (token for writes).
Every change reaches the running rules engine at once (``alert_rules_changed``)."""

from django.conf import settings
from rest_framework import generics, serializers

from alerts.models import AlertRule, AlertThresholdOverride, RuleKind, RuleScope
from alerts.selectors import rule_from_model
from alerts.services import alert_rules_changed
from common.symbols import symbol_problem

RULE_FIELDS = (
    "id", "name", "enabled", "kind", "window_sec", "baseline_from_sec", "direction",
    "threshold_pct", "dump_threshold_pct", "min_delta_contracts", "min_delta_usd",
    "cooldown_sec", "rearm_ratio", "step_pct", "min_samples", "scope", "symbols",
    "created_at", "updated_at",
)  # fmt: skip


def longest_rule_window_sec() -> int:
    """A window must fit in the ring buffers, with a minute to spare for the newest samples."""
    return settings.OI_RING_WINDOW_SEC - 60


class AlertRuleSerializer(serializers.ModelSerializer):
    class Meta:
        model = AlertRule
        fields = RULE_FIELDS
        read_only_fields = ("id", "created_at", "updated_at")

    def validate_symbols(self, symbols: list[str]) -> list[str]:
        for symbol in symbols:
            problem = symbol_problem(symbol)
            if problem:
                raise serializers.ValidationError(f"{symbol!r} {problem}")
        return sorted(set(symbols))

    def validate(self, attrs: dict) -> dict:
        merged = {
            name: getattr(self.instance, name)
            for name in RULE_FIELDS
            if self.instance is not None and name not in ("id", "created_at", "updated_at")
        }
        merged.update(attrs)
        problem = rule_problem(merged) or rule_cap_problem(merged, self.instance)
        if problem:
            raise serializers.ValidationError({problem[0]: problem[1]})
        return attrs


def rule_cap_problem(fields: dict, instance: AlertRule | None) -> tuple[str, str] | None:
    """(field, reason) when enabling this rule would pass the caps on enabled rules or on their
    distinct windows: every poller process keeps one window tracker per symbol and distinct
    window, and runs every enabled rule on every sample."""
    if not fields.get("enabled", True):
        return None
    others = AlertRule.objects.filter(enabled=True)
    if instance is not None:
        others = others.exclude(pk=instance.pk)
    max_rules = settings.OI_ALERT_RULES_MAX_ENABLED
    if others.count() + 1 > max_rules:
        return "enabled", (
            f"at most {max_rules} rules may be enabled (OI_ALERT_RULES_MAX_ENABLED); "
            "disable or delete one first"
        )
    windows = set(
        others.values_list("kind", "window_sec", "baseline_from_sec").distinct().order_by()
    )
    key = (
        fields.get("kind", RuleKind.WINDOW_CHANGE),
        fields.get("window_sec"),
        fields.get("baseline_from_sec"),
    )
    max_windows = settings.OI_ALERT_MAX_DISTINCT_WINDOWS
    if key not in windows and len(windows) + 1 > max_windows:
        return "window_sec", (
            f"the enabled rules may use at most {max_windows} distinct windows "
            "(OI_ALERT_MAX_DISTINCT_WINDOWS); reuse the window of an enabled rule"
        )
    return None


def rule_problem(fields: dict) -> tuple[str, str] | None:
    """(field, reason) of the first thing wrong with a rule's fields, or None."""
    kind = fields.get("kind", RuleKind.WINDOW_CHANGE)
    window_sec = fields.get("window_sec")
    if window_sec is None:
        return "window_sec", "This field is required."
    if window_sec <= 0:
        return "window_sec", "must be above 0"
    if window_sec > longest_rule_window_sec():
        return "window_sec", (
            f"must be at most {longest_rule_window_sec()} s: the ring buffers keep "
            f"OI_RING_WINDOW_SEC={settings.OI_RING_WINDOW_SEC} s of samples"
        )
    baseline_from_sec = fields.get("baseline_from_sec")
    if kind == RuleKind.MEDIAN_BASELINE:
        if baseline_from_sec is None or not 0 < baseline_from_sec < window_sec:
            return (
                "baseline_from_sec",
                "a median_baseline rule needs 0 < baseline_from_sec < window_sec",
            )
    elif baseline_from_sec is not None:
        return "baseline_from_sec", "only median_baseline rules have one"
    threshold = fields.get("threshold_pct")
    if threshold is None:
        return "threshold_pct", "This field is required."
    if threshold <= 0:
        return "threshold_pct", "must be above 0"
    dump_threshold = fields.get("dump_threshold_pct")
    if dump_threshold is not None and not 0 < dump_threshold <= 1:
        return "dump_threshold_pct", "must be above 0 and at most 1 (a dump is at most 100%)"
    if fields.get("direction", "BOTH") != "UP" and dump_threshold is None and threshold > 1:
        return "threshold_pct", "must be at most 1 for dumps (set dump_threshold_pct otherwise)"
    for name in ("min_delta_contracts", "min_delta_usd"):
        if fields.get(name) is not None and fields[name] < 0:
            return name, "must be 0 or more"
    rearm_ratio = fields.get("rearm_ratio")
    if rearm_ratio is not None and not 0 <= rearm_ratio < 1:
        return "rearm_ratio", "must be at least 0 and below 1"
    step = fields.get("step_pct")
    if step is not None and step <= 0:
        return "step_pct", "must be above 0 (or empty)"
    if fields.get("min_samples", 3) < 1:
        return "min_samples", "must be at least 1"
    if fields.get("scope", RuleScope.ALL) != RuleScope.ALL and not fields.get("symbols"):
        return "symbols", f"scope {fields['scope']!r} needs at least one symbol"
    try:
        rule_from_model(AlertRule(pk=0, **{k: v for k, v in fields.items() if k != "id"}))
    except (TypeError, ValueError) as exc:
        return "body", str(exc)
    return None


class RulesChangedMixin:
    """Every write reaches the running rules engine at once."""

    def perform_create(self, serializer):
        serializer.save()
        alert_rules_changed()

    def perform_update(self, serializer):
        serializer.save()
        alert_rules_changed()

    def perform_destroy(self, instance):
        instance.delete()
        alert_rules_changed()


class AlertRuleListApi(RulesChangedMixin, generics.ListCreateAPIView):
    """Every alert rule (enabled or not); POST creates one."""

    serializer_class = AlertRuleSerializer
    queryset = AlertRule.objects.order_by("window_sec", "name")
    pagination_class = None


class AlertRuleDetailApi(RulesChangedMixin, generics.RetrieveUpdateDestroyAPIView):
    """One rule: GET, PATCH (or PUT) to change it, DELETE to remove it (its alerts stay)."""

    serializer_class = AlertRuleSerializer
    queryset = AlertRule.objects.all()


class AlertOverrideSerializer(serializers.ModelSerializer):
    class Meta:
        model = AlertThresholdOverride
        fields = (
            "id", "symbol", "rule", "spike_threshold_pct", "dump_threshold_pct",
            "min_delta_contracts", "min_delta_usd", "cooldown_sec", "updated_at",
        )  # fmt: skip
        read_only_fields = ("id", "updated_at")
        validators: list = []  # (symbol, rule) uniqueness is checked in validate()

    def validate_symbol(self, symbol: str) -> str:
        problem = symbol_problem(symbol)
        if problem:
            raise serializers.ValidationError(problem)
        return symbol

    def validate(self, attrs: dict) -> dict:
        def value(name):
            if name in attrs:
                return attrs[name]
            return getattr(self.instance, name) if self.instance is not None else None

        symbol, rule = value("symbol"), value("rule")
        if symbol is None:
            raise serializers.ValidationError({"symbol": "This field is required."})
        clash = AlertThresholdOverride.objects.filter(symbol=symbol, rule=rule)
        if self.instance is not None:
            clash = clash.exclude(pk=self.instance.pk)
        if clash.exists():
            raise serializers.ValidationError(
                {"symbol": f"{symbol} already has an override for {rule or 'every rule'}"}
            )
        spike, dump = value("spike_threshold_pct"), value("dump_threshold_pct")
        if spike is not None and spike <= 0:
            raise serializers.ValidationError({"spike_threshold_pct": "must be above 0"})
        if dump is not None and not 0 < dump <= 1:
            raise serializers.ValidationError({"dump_threshold_pct": "must be above 0, at most 1"})
        for name in ("min_delta_contracts", "min_delta_usd"):
            if value(name) is not None and value(name) < 0:
                raise serializers.ValidationError({name: "must be 0 or more"})
        return attrs


class AlertOverrideListApi(RulesChangedMixin, generics.ListCreateAPIView):
    """Per-symbol overrides of the rules' thresholds, minimums and cooldown; POST creates one.
    Without a rule an override applies to every rule; a rule's own wins field by field."""

    serializer_class = AlertOverrideSerializer
    queryset = AlertThresholdOverride.objects.order_by("symbol", "rule_id")
    pagination_class = None


class AlertOverrideDetailApi(RulesChangedMixin, generics.RetrieveUpdateDestroyAPIView):
    serializer_class = AlertOverrideSerializer
    queryset = AlertThresholdOverride.objects.all()
