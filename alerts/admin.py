from django.contrib import admin

from alerts.models import AlertDelivery, AlertThresholdOverride, OpenInterestAlert


class AlertDeliveryInline(admin.TabularInline):
    model = AlertDelivery
    extra = 0
    readonly_fields = ("channel", "delivered", "attempts", "last_error", "updated_at")
    can_delete = False


@admin.register(OpenInterestAlert)
class OpenInterestAlertAdmin(admin.ModelAdmin):
    list_display = (
        "ts",
        "symbol",
        "direction",
        "pct_change",
        "abs_change",
        "baseline",
        "current",
        "source",
    )
    list_filter = ("direction", "source", ("ts", admin.DateFieldListFilter))
    search_fields = ("symbol",)
    date_hierarchy = "ts"
    ordering = ("-ts",)
    show_full_result_count = False
    inlines = [AlertDeliveryInline]


@admin.register(AlertThresholdOverride)
class AlertThresholdOverrideAdmin(admin.ModelAdmin):
    list_display = (
        "symbol", "spike_threshold_pct", "dump_threshold_pct", "min_delta_contracts",
        "min_delta_usd", "cooldown_sec", "updated_at",
    )  # fmt: skip
    search_fields = ("symbol",)


@admin.register(AlertDelivery)
class AlertDeliveryAdmin(admin.ModelAdmin):
    list_display = ("alert", "channel", "delivered", "attempts", "last_error", "updated_at")
    list_filter = ("channel", "delivered")
    search_fields = ("alert__symbol", "last_error")
