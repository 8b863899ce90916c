from django.contrib import admin

from oi.models import OpenInterestSnapshot


@admin.register(OpenInterestSnapshot)
class OpenInterestSnapshotAdmin(admin.ModelAdmin):
    list_display = ("symbol", "ts", "open_interest", "open_interest_usd", "mark_price", "source")
    list_filter = ("source", ("ts", admin.DateFieldListFilter))
    search_fields = ("symbol",)
    date_hierarchy = "ts"
    ordering = ("-ts",)
    show_full_result_count = False  # an exact COUNT(*) over millions of rows is slow
    list_per_page = 100
    readonly_fields = [f.name for f in OpenInterestSnapshot._meta.fields]
