from django.contrib import admin

from common.models import ApiToken


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = (
        "name", "key_prefix", "read_only", "created_at", "last_used_at", "revoked_at",
    )  # fmt: skip
    list_filter = ("read_only", "revoked_at")
    search_fields = ("name", "key_prefix")
    readonly_fields = ("key_prefix", "key_hash", "read_only", "created_at", "last_used_at")

    def has_add_permission(self, request) -> bool:
        # The raw key is shown only by `manage.py create_api_token`; the admin cannot show it.
        return False
