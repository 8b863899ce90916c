from django.conf import settings
from rest_framework.permissions import SAFE_METHODS, BasePermission


def signed_in_staff(request) -> bool:
    """A staff member signed in through the admin's login (a session), e.g. on the page."""
    user = getattr(request, "user", None)
    return bool(user is not None and user.is_authenticated and user.is_staff)


class WritesNeedTokenReadsBySetting(BasePermission):
    """Writes always need an API token; reads need one only when API_READS_REQUIRE_AUTH is set
    (or, for the page's own reads, a staff member's session)."""

    message = "An API token is required: send 'Authorization: Token <key>'."

    def has_permission(self, request, view) -> bool:
        if request.method in SAFE_METHODS:
            if not settings.API_READS_REQUIRE_AUTH:
                return True
            return request.auth is not None or signed_in_staff(request)
        return request.auth is not None


class PreflightOpenReadsBySetting(WritesNeedTokenReadsBySetting):
    """As WritesNeedTokenReadsBySetting, but a CORS preflight (OPTIONS, which browsers send
    without credentials) is always answered."""

    def has_permission(self, request, view) -> bool:
        return request.method == "OPTIONS" or super().has_permission(request, view)


class ReadOnlyTokensCannotWrite(BasePermission):
    """A token made with `create_api_token --read-only` reads; every write with it is a 403.
    Kept apart from how the token was sent (any authentication class that puts the ApiToken in
    `request.auth`)."""

    message = "This API token is read-only: writes need a token made without --read-only."

    def has_permission(self, request, view) -> bool:
        if request.method in SAFE_METHODS:
            return True
        return not getattr(request.auth, "read_only", False)
