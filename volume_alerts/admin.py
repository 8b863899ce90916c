from django.contrib import admin

from volume_alerts.models import VolumeAlert


@admin.register(VolumeAlert)
class VolumeAlertAdmin(admin.ModelAdmin):
    list_display = (
        "ts", "symbol", "alert_type", "volume_ratio", "current_volume", "previous_volume",
        "price", "price_change", "oi_change", "funding_rate", "candle_direction", "hour_timestamp",
    )  # fmt: skip
    list_filter = ("alert_type", "candle_direction", ("ts", admin.DateFieldListFilter))
    search_fields = ("symbol", "asset", "message")
    date_hierarchy = "ts"
    ordering = ("-ts", "-id")
    readonly_fields = ("created_at",)
