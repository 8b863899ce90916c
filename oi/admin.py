from django.contrib import admin, messages

from oi.models import OpenInterestSnapshot, SnapshotDeadLetter


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


@admin.register(SnapshotDeadLetter)
class SnapshotDeadLetterAdmin(admin.ModelAdmin):
    list_display = ("failed_at", "rows", "symbols", "cause")
    search_fields = ("symbols", "cause")
    ordering = ("-failed_at",)
    readonly_fields = [f.name for f in SnapshotDeadLetter._meta.fields]
    actions = ("retry_delivery",)

    def has_add_permission(self, request) -> bool:
        return False

    @admin.action(description="Retry delivery (deleted when it is stored)")
    def retry_delivery(self, request, queryset) -> None:
        from oi.snapshot_sink import dead_letters_retry

        delivered, refused = dead_letters_retry(list(queryset))
        level = messages.SUCCESS if not refused else messages.WARNING
        self.message_user(request, f"{delivered} delivered, {refused} refused again", level)
