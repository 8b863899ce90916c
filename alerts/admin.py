from django import forms
from django.contrib import admin, messages

from alerts.models import (
    REGIME_CHOICES,
    AlertDelivery,
    AlertRule,
    AlertThresholdOverride,
    OpenInterestAlert,
)
from alerts.services import (
    alert_override_delete,
    alert_override_save,
    alert_rule_delete,
    alert_rule_save,
    alert_rules_changed,
)


class ServiceWritesMixin:
    """Saves and deletes go through the services (the model's ``clean``, which the admin's forms
    ran already, and the running rules engine told at once)."""

    save_service = delete_service = None

    def save_model(self, request, obj, form, change):
        self.save_service(obj)

    def delete_model(self, request, obj):
        self.delete_service(obj)

    def delete_queryset(self, request, queryset):
        super().delete_queryset(request, queryset)
        alert_rules_changed()


class AlertThresholdOverrideInline(admin.TabularInline):
    model = AlertThresholdOverride
    extra = 0
    fields = (
        "symbol", "spike_threshold_pct", "dump_threshold_pct", "min_delta_contracts",
        "min_delta_usd", "cooldown_sec",
    )  # fmt: skip


@admin.register(AlertRule)
class AlertRuleAdmin(ServiceWritesMixin, admin.ModelAdmin):
    save_service = staticmethod(alert_rule_save)
    delete_service = staticmethod(alert_rule_delete)
    list_display = (
        "name", "enabled", "kind", "window_sec", "baseline_from_sec", "direction",
        "threshold_pct", "dump_threshold_pct", "min_delta_contracts", "min_delta_usd",
        "cooldown_sec", "rearm_ratio", "step_pct", "scope", "updated_at",
    )  # fmt: skip
    list_editable = ("enabled",)
    list_filter = ("enabled", "kind", "direction", "scope")
    search_fields = ("name",)
    inlines = [AlertThresholdOverrideInline]
    actions = ["send_test_alert"]
    fieldsets = (
        (None, {"fields": ("name", "enabled", "kind", "direction")}),
        ("Window and threshold", {
            "fields": ("window_sec", "baseline_from_sec", "threshold_pct", "dump_threshold_pct",
                       "min_samples"),
        }),
        ("Filters", {"fields": ("min_delta_contracts", "min_delta_usd", "scope", "symbols",
                                "regimes")}),
        ("Repeats", {"fields": ("cooldown_sec", "rearm_ratio", "step_pct")}),
    )  # fmt: skip

    def formfield_for_dbfield(self, db_field, request, **kwargs):
        """Regimes as checkboxes (none ticked: any regime), not a comma-separated text box."""
        if db_field.name == "regimes":
            return forms.MultipleChoiceField(
                choices=REGIME_CHOICES, required=False, widget=forms.CheckboxSelectMultiple,
                label="Regimes", help_text=db_field.help_text,
            )  # fmt: skip
        return super().formfield_for_dbfield(db_field, request, **kwargs)

    def save_formset(self, request, form, formset, change):
        """The inline overrides, each through the services."""
        for override in formset.save(commit=False):
            alert_override_save(override)
        for override in formset.deleted_objects:
            alert_override_delete(override)

    @admin.action(description="Send a test alert on every delivery channel")
    def send_test_alert(self, request, queryset):
        from alerts.delivery import alert_send_test

        results = alert_send_test()
        if not results:
            self.message_user(
                request,
                "No delivery channel is configured (ALERT_WEBHOOK_URL, TELEGRAM_BOT_TOKEN and "
                "TELEGRAM_CHAT_ID).",
                messages.WARNING,
            )
        for channel, ok, detail in results:
            self.message_user(
                request,
                f"Test alert on {channel}: {'sent' if ok else 'failed'}"
                + (f" ({detail})" if detail else ""),
                messages.SUCCESS if ok else messages.ERROR,
            )


class AlertDeliveryInline(admin.TabularInline):
    model = AlertDelivery
    extra = 0
    readonly_fields = ("channel", "delivered", "attempts", "last_error", "updated_at")
    can_delete = False


@admin.register(OpenInterestAlert)
class OpenInterestAlertAdmin(admin.ModelAdmin):
    list_display = (
        "ts", "symbol", "direction", "rule_name", "pct_change", "abs_change", "baseline",
        "current", "price_change_pct", "regime", "funding_rate", "alerts_24h", "source",
    )  # fmt: skip
    list_filter = (
        "direction", "regime", "source", "rule_name", ("ts", admin.DateFieldListFilter)
    )  # fmt: skip
    search_fields = ("symbol",)
    date_hierarchy = "ts"
    ordering = ("-ts",)
    show_full_result_count = False
    inlines = [AlertDeliveryInline]


@admin.register(AlertThresholdOverride)
class AlertThresholdOverrideAdmin(ServiceWritesMixin, admin.ModelAdmin):
    save_service = staticmethod(alert_override_save)
    delete_service = staticmethod(alert_override_delete)
    list_display = (
        "symbol", "rule", "spike_threshold_pct", "dump_threshold_pct", "min_delta_contracts",
        "min_delta_usd", "cooldown_sec", "updated_at",
    )  # fmt: skip
    search_fields = ("symbol",)
    list_filter = ("rule",)


@admin.register(AlertDelivery)
class AlertDeliveryAdmin(admin.ModelAdmin):
    list_display = ("alert", "channel", "delivered", "attempts", "last_error", "updated_at")
    list_filter = ("channel", "delivered")
    search_fields = ("alert__symbol", "last_error")
