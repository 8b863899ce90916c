"""The alert rules and per-symbol overrides, read and edited over the API (token for writes).
Writes go through the services (``alerts.services``), which validate with the model's ``clean``
(the same validation as the admin's) and make every change reach the running rules engine at
once. A refused write answers 400 with the field and the reason."""

from rest_framework import generics, serializers

from alerts.api_errors import refused_as_400
from alerts.models import AlertRule, AlertThresholdOverride
from alerts.services import (
    alert_override_create,
    alert_override_delete,
    alert_override_update,
    alert_rule_create,
    alert_rule_delete,
    alert_rule_update,
)

RULE_FIELDS = (
    "id", "name", "enabled", "kind", "window_sec", "baseline_from_sec", "direction",
    "threshold_pct", "dump_threshold_pct", "min_delta_contracts", "min_delta_usd",
    "cooldown_sec", "rearm_ratio", "step_pct", "min_samples", "scope", "symbols",
    "regimes", "liquidity_tiers", "threshold_usd", "threshold_volume_share", "liquidated_side",
    "created_at", "updated_at",
)  # fmt: skip


class AlertRuleSerializer(serializers.ModelSerializer):
    """Field formats only; what makes a rule valid is the model's ``clean``."""

    class Meta:
        model = AlertRule
        fields = RULE_FIELDS
        read_only_fields = ("id", "created_at", "updated_at")


class AlertOverrideSerializer(serializers.ModelSerializer):
    """Field formats only; what makes an override valid is the model's ``clean``."""

    class Meta:
        model = AlertThresholdOverride
        fields = (
            "id", "symbol", "rule", "spike_threshold_pct", "dump_threshold_pct",
            "min_delta_contracts", "min_delta_usd", "cooldown_sec", "updated_at",
        )  # fmt: skip
        read_only_fields = ("id", "updated_at")
        validators: list = []  # (symbol, rule) uniqueness is the model's clean


class _ServiceWrites:
    """Creates, updates and deletes through the services."""

    def perform_create(self, serializer):
        with refused_as_400():
            serializer.instance = self.create_service(**serializer.validated_data)

    def perform_update(self, serializer):
        with refused_as_400():
            serializer.instance = self.update_service(
                serializer.instance, **serializer.validated_data
            )

    def perform_destroy(self, instance):
        self.delete_service(instance)


class _RuleWrites(_ServiceWrites):
    create_service = staticmethod(alert_rule_create)
    update_service = staticmethod(alert_rule_update)
    delete_service = staticmethod(alert_rule_delete)


class _OverrideWrites(_ServiceWrites):
    create_service = staticmethod(alert_override_create)
    update_service = staticmethod(alert_override_update)
    delete_service = staticmethod(alert_override_delete)


class AlertRuleListApi(_RuleWrites, generics.ListCreateAPIView):
    """Every alert rule (enabled or not); POST creates one."""

    serializer_class = AlertRuleSerializer
    queryset = AlertRule.objects.order_by("window_sec", "name")
    pagination_class = None


class AlertRuleDetailApi(_RuleWrites, generics.RetrieveUpdateDestroyAPIView):
    """One rule: GET, PATCH (or PUT) to change it, DELETE to remove it (its alerts stay)."""

    serializer_class = AlertRuleSerializer
    queryset = AlertRule.objects.all()


class AlertOverrideListApi(_OverrideWrites, generics.ListCreateAPIView):
    """Per-symbol overrides of the rules' thresholds, minimums and cooldown; POST creates one.
    Without a rule an override applies to every rule; a rule's own wins field by field."""

    serializer_class = AlertOverrideSerializer
    queryset = AlertThresholdOverride.objects.order_by("symbol", "rule_id")
    pagination_class = None


class AlertOverrideDetailApi(_OverrideWrites, generics.RetrieveUpdateDestroyAPIView):
    serializer_class = AlertOverrideSerializer
    queryset = AlertThresholdOverride.objects.all()
