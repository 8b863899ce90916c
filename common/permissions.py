from django.conf import settings
from rest_framework.permissions import SAFE_METHODS, BasePermission


class WritesNeedTokenReadsBySetting(BasePermission):
    """Writes always need an API token; reads need one only when API_READS_REQUIRE_AUTH is set."""

    message = "An API token is required: send 'Authorization: Token <key>'."

    def has_permission(self, request, view) -> bool:
        if request.method in SAFE_METHODS and not settings.API_READS_REQUIRE_AUTH:
            return True
        return request.auth is not None
