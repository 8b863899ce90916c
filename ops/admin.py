from django.contrib import admin

from ops.models import OpsIncident


@admin.register(OpsIncident)
class OpsIncidentAdmin(admin.ModelAdmin):
    list_display = ("condition", "opened_at", "recovered_at", "reminders", "detail")
    list_filter = ("condition", ("recovered_at", admin.EmptyFieldListFilter))
    search_fields = ("detail", "last_detail")
    ordering = ("-opened_at",)
    readonly_fields = [f.name for f in OpsIncident._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False
