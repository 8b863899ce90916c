import hmac

from django.conf import settings
from django.utils import timezone
from rest_framework import authentication, exceptions
from rest_framework.request import Request
from rest_framework.settings import api_settings

from common.models import ApiToken
from common.selectors import api_token_get_active


class TokenPrincipal:
    """The authenticated caller of an API request: an API token, not a Django user."""

    is_authenticated = True

    def __init__(self, token: ApiToken) -> None:
        self.token = token

    def __str__(self) -> str:
        return self.token.name


class ApiTokenAuthentication(authentication.BaseAuthentication):
    """`Authorization: Token <key>` (or `Bearer <key>`), keys made by `manage.py create_api_token`."""

    keywords = ("token", "bearer")

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).split()
        if not header:
            return None
        if header[0].decode(errors="replace").lower() not in self.keywords:
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed(
                "Malformed Authorization header: expected 'Token <key>'."
            )
        raw_key = header[1].decode(errors="replace")
        token = api_token_get_active(raw_key=raw_key)
        if token is None:
            raise exceptions.AuthenticationFailed("Unknown or revoked API token.")
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=timezone.now())
        return TokenPrincipal(token), token

    def authenticate_header(self, request) -> str:
        return 'Token realm="api"'


def request_has_api_token(request) -> bool:
    """True when a plain Django request carries a valid API token, sent any way the API accepts
    (for the views outside DRF: the page and /metrics)."""
    drf_request = Request(request)
    for authentication_class in api_settings.DEFAULT_AUTHENTICATION_CLASSES:
        if issubclass(authentication_class, authentication.SessionAuthentication):
            continue  # a session is not a token (the callers check sessions themselves)
        try:
            if authentication_class().authenticate(drf_request) is not None:
                return True
        except exceptions.AuthenticationFailed:
            return False
    return False


def request_has_metrics_token(request) -> bool:
    """`Authorization: Bearer <METRICS_TOKEN>` (what Prometheus' `authorization` sends)."""
    expected = settings.METRICS_TOKEN
    scheme, _, credentials = request.headers.get("Authorization", "").partition(" ")
    if not expected or scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(credentials.strip().encode(), expected.encode())
