from django.contrib import admin

from liquidity.models import LiquidityMembershipEvent, LiquidSymbol


@admin.register(LiquidSymbol)
class LiquidSymbolAdmin(admin.ModelAdmin):
    list_display = ("symbol", "quote_volume_24h", "entered_at", "last_seen_at")
    search_fields = ("symbol",)
    ordering = ("-quote_volume_24h",)


@admin.register(LiquidityMembershipEvent)
class LiquidityMembershipEventAdmin(admin.ModelAdmin):
    list_display = ("at", "symbol", "change", "quote_volume_24h", "reason")
    list_filter = ("change", ("at", admin.DateFieldListFilter))
    search_fields = ("symbol", "reason")
    date_hierarchy = "at"
    ordering = ("-at",)
