from django import forms
from django.contrib import admin, messages
from django.utils.html import format_html, format_html_join

from alerts.channels.selectors import secret_hint
from alerts.channels.services import (
    channel_delete,
    channel_save,
    channel_send_test,
    channels_send_test,
)
from alerts.formatting import regime_text, signed_pct
from alerts.models import (
    CHANNEL_SECRET_FIELDS,
    REGIME_CHOICES,
    AlertChannel,
    AlertDelivery,
    AlertForwardOutcome,
    AlertRule,
    AlertThresholdOverride,
    LiquidationAlert,
    OpenInterestAlert,
    OpsMessage,
    channel_target_fields,
)
from alerts.outcome_measures import Horizon, OutcomeStatus
from alerts.outcome_selectors import DEFAULT_PERIOD, MoveDistribution, alert_outcome_report
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
        ("Liquidation burst (kind liquidation_burst only)", {
            "fields": ("liquidated_side", "threshold_usd", "threshold_volume_share"),
        }),
        ("Filters", {"fields": ("min_delta_contracts", "min_delta_usd", "scope", "symbols",
                                "regimes", "liquidity_tiers")}),
        ("Repeats", {"fields": ("cooldown_sec", "rearm_ratio", "step_pct")}),
        (f"Outcomes (last {DEFAULT_PERIOD.days} days)", {"fields": ("outcomes",)}),
    )  # fmt: skip
    readonly_fields = ("outcomes",)

    @admin.display(description="What followed its alerts")
    def outcomes(self, rule: AlertRule | None) -> str:
        """Per regime: the alerts, alerts per symbol-day, and the signed forward price move at
        each horizon (median, quartiles, share up / flat / down). Measurements, not verdicts."""
        if rule is None or rule.pk is None:
            return "–"
        report = alert_outcome_report(rule_id=rule.pk)
        if not report.rules or not report.rules[0].overall.alerts:
            return "No alerts in the period."
        outcomes = report.rules[0]
        head = format_html_join(
            "", "<th>price +{}</th>", ((h.label,) for h in Horizon)
        )  # fmt: skip
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td>{}</tr>",
            (
                (
                    "every regime" if stats.regime is None else regime_text(stats.regime) or "–",
                    stats.alerts,
                    "–" if stats.alerts_per_symbol_day is None
                    else f"{stats.alerts_per_symbol_day:.3f}",
                    format_html_join(
                        "", "<td>{}</td>", ((_moves_text(h.price),) for h in stats.horizons)
                    ),
                )
                for stats in (outcomes.overall, *outcomes.by_regime)
            ),
        )  # fmt: skip
        return format_html(
            '<table class="outcomes"><thead><tr><th>regime</th><th>alerts</th>'
            "<th>per symbol-day</th>{}</tr></thead><tbody>{}</tbody></table>"
            "<p>Price moves are signed, from the alert's mark price: median [quartiles], "
            "then the share up / flat / down (flat: inside the regimes' dead band).</p>",
            head,
            rows,
        )

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

    @admin.action(description="Send a test alert on every enabled delivery channel")
    def send_test_alert(self, request, queryset):
        reports = channels_send_test()
        if not reports:
            self.message_user(
                request,
                "No delivery channel is enabled (Alert channels; or ALERT_WEBHOOK_URL, "
                "TELEGRAM_BOT_TOKEN and TELEGRAM_CHAT_ID).",
                messages.WARNING,
            )
        _report_tests(self, request, reports)


def _report_tests(model_admin, request, reports) -> None:
    for report in reports:
        model_admin.message_user(
            request,
            f"Test message on {report.channel}: {'sent' if report.ok else 'failed'} "
            f"({report.detail})",
            messages.SUCCESS if report.ok else messages.ERROR,
        )


class SecretInput(forms.PasswordInput):
    """Never renders the stored value; shows whether one is set."""

    def __init__(self, attrs=None):
        super().__init__(attrs={"autocomplete": "new-password", **(attrs or {})})


class AlertChannelForm(forms.ModelForm):
    """Secrets are write-only: the form never shows them, and a blank one keeps the stored
    value (so editing a filter does not need the webhook URL again)."""

    regimes = forms.MultipleChoiceField(
        choices=REGIME_CHOICES, required=False, widget=forms.CheckboxSelectMultiple,
        help_text="Only alerts of these OI/price regimes; none ticked: every regime",
    )  # fmt: skip

    class Meta:
        model = AlertChannel
        fields = (
            "name", "kind", "enabled", "telegram_chat_id", "bot_token", "url", "signing_secret",
            "receives_alerts", "receives_ops", "rules", "symbols", "directions", "regimes",
            "min_move_pct",
        )  # fmt: skip
        widgets = {name: SecretInput() for name in CHANNEL_SECRET_FIELDS}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for name in CHANNEL_SECRET_FIELDS:
            field = self.fields[name]
            field.required = False
            if self.instance.pk and getattr(self.instance, name):
                field.help_text = (
                    f"Set ({secret_hint(getattr(self.instance, name))}); blank keeps it."
                )

    def _keep(self, name: str) -> str:
        """A blank secret keeps the stored one, unless the channel's kind has no such field
        (a Discord channel turned into a Telegram one drops its URL)."""
        value = self.cleaned_data.get(name, "")
        if value or not self.instance.pk:
            return value
        if name not in channel_target_fields(self.cleaned_data.get("kind", "")):
            return ""
        return getattr(self.instance, name)

    def clean_bot_token(self):
        return self._keep("bot_token")

    def clean_url(self):
        return self._keep("url")

    def clean_signing_secret(self):
        return self._keep("signing_secret")


@admin.register(AlertChannel)
class AlertChannelAdmin(admin.ModelAdmin):
    form = AlertChannelForm
    list_display = (
        "name", "kind", "enabled", "receives_alerts", "receives_ops", "disabled_reason",
        "disabled_at", "updated_at",
    )  # fmt: skip
    list_filter = ("kind", "enabled", "receives_ops")
    search_fields = ("name",)
    filter_horizontal = ("rules",)
    readonly_fields = ("disabled_reason", "disabled_at", "from_settings")
    actions = ["send_test_message"]
    fieldsets = (
        (None, {"fields": ("name", "kind", "enabled", "disabled_reason", "disabled_at",
                           "from_settings")}),
        ("Target (secrets are write-only)", {
            "fields": ("telegram_chat_id", "bot_token", "url", "signing_secret"),
        }),
        ("What it receives", {
            "fields": ("receives_alerts", "receives_ops", "rules", "symbols", "directions",
                       "regimes", "min_move_pct"),
        }),
    )  # fmt: skip

    def save_model(self, request, obj, form, change):
        channel_save(obj)

    def save_related(self, request, form, formsets, change):
        form.instance.rules.set(form.cleaned_data.get("rules", []))

    def delete_model(self, request, obj):
        channel_delete(obj)

    def delete_queryset(self, request, queryset):
        for channel in queryset:
            channel_delete(channel)

    @admin.action(description="Send a test message (reports the platform's answer)")
    def send_test_message(self, request, queryset):
        _report_tests(self, request, [channel_send_test(channel) for channel in queryset])


@admin.register(OpsMessage)
class OpsMessageAdmin(admin.ModelAdmin):
    list_display = ("created_at", "dedup_key", "title", "recovered")
    list_filter = ("recovered",)
    search_fields = ("dedup_key", "title")
    readonly_fields = ("dedup_key", "title", "text", "recovered", "created_at")


def _moves_text(moves: MoveDistribution) -> str:
    if not moves.n:
        return "–"
    return (
        f"{signed_pct(moves.median)} [{signed_pct(moves.q1)}, {signed_pct(moves.q3)}] "
        f"· {moves.up:.0%} / {moves.flat:.0%} / {moves.down:.0%} (n={moves.n})"
    )


class AlertForwardOutcomeInline(admin.TabularInline):
    model = AlertForwardOutcome
    extra = 0
    fields = readonly_fields = (
        "horizon_sec", "status", "sample_ts", "mark_price", "price_change", "open_interest",
        "oi_change", "measured_at",
    )  # fmt: skip
    can_delete = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False


class AlertDeliveryInline(admin.TabularInline):
    model = AlertDelivery
    extra = 0
    readonly_fields = ("channel", "delivered", "attempts", "last_error", "updated_at")
    can_delete = False


@admin.register(OpenInterestAlert)
class OpenInterestAlertAdmin(admin.ModelAdmin):
    list_display = (
        "ts", "symbol", "direction", "rule_name", "pct_change", "abs_change", "baseline",
        "current", "price_change_pct", "regime", "price_after_5m", "price_after_15m",
        "price_after_1h", "funding_rate", "liquidations_long_usd", "liquidations_short_usd",
        "alerts_24h", "source",
    )  # fmt: skip
    list_filter = (
        "direction", "regime", "source", "rule_name", ("ts", admin.DateFieldListFilter)
    )  # fmt: skip
    search_fields = ("symbol",)
    date_hierarchy = "ts"
    ordering = ("-ts",)
    show_full_result_count = False
    inlines = [AlertForwardOutcomeInline, AlertDeliveryInline]

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("forward_outcomes")

    @staticmethod
    def _price_after(alert: OpenInterestAlert, horizon: Horizon) -> str:
        """The signed mark-price move at the horizon; "…" not due yet, "no data" without a
        sample there, "no price" without a mark price."""
        outcome = next((o for o in alert.forward_outcomes.all() if o.horizon_sec == horizon), None)
        if outcome is None:
            return "…"
        if outcome.status == OutcomeStatus.NO_DATA:
            return "no data"
        if outcome.price_change is None:
            return "no price"
        return signed_pct(outcome.price_change)

    @admin.display(description="price +5m")
    def price_after_5m(self, alert: OpenInterestAlert) -> str:
        return self._price_after(alert, Horizon.MIN_5)

    @admin.display(description="price +15m")
    def price_after_15m(self, alert: OpenInterestAlert) -> str:
        return self._price_after(alert, Horizon.MIN_15)

    @admin.display(description="price +1h")
    def price_after_1h(self, alert: OpenInterestAlert) -> str:
        return self._price_after(alert, Horizon.HOUR_1)


@admin.register(LiquidationAlert)
class LiquidationAlertAdmin(admin.ModelAdmin):
    list_display = (
        "ts", "symbol", "side", "rule_name", "usd", "count", "other_side_usd", "threshold_usd",
        "quote_volume_24h", "mark_price", "window_sec",
    )  # fmt: skip
    list_filter = ("side", "rule_name", ("ts", admin.DateFieldListFilter))
    search_fields = ("symbol",)
    date_hierarchy = "ts"
    ordering = ("-ts",)
    show_full_result_count = False

    def has_add_permission(self, request) -> bool:
        return False  # alerts come from the rules


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
    list_filter = ("channel__kind", "channel", "delivered")
    list_select_related = ("alert", "channel")
    search_fields = ("alert__symbol", "last_error")
