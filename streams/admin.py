from django.contrib import admin

from streams.models import Liquidation


@admin.register(Liquidation)
class LiquidationAdmin(admin.ModelAdmin):
    list_display = ("time", "symbol", "side", "price", "quantity", "usd")
    list_filter = ("side",)
    search_fields = ("symbol",)
    date_hierarchy = "time"
    ordering = ("-time",)
