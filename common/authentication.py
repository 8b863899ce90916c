import hmac

from django.conf import settings
from django.utils import timezone
from rest_framework import authentication, exceptions
from rest_framework.request import Request
from rest_framework.settings import api_settings

from common.models import ApiToken
from common.selectors import api_token_get_active

# The VolSpike scripts send the raw key in this header, without a scheme (issue 13).
API_KEY_HEADER = "HTTP_X_API_KEY"


class TokenPrincipal:
    """The authenticated caller of an API request: an API token, not a Django user."""

    is_authenticated = True

    def __init__(self, token: ApiToken) -> None:
        self.token = token

    def __str__(self) -> str:
        return self.token.name


class ApiTokenAuthentication(authentication.BaseAuthentication):
    """`Authorization: Token <key>` (or `Bearer <key>`), or `X-API-Key: <key>` as the VolSpike
    scripts send it; keys made by `manage.py create_api_token`. The key is never logged."""

    keywords = ("token", "bearer")

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).split()
        if header and header[0].decode(errors="replace").lower() in self.keywords:
            if len(header) != 2:
                raise exceptions.AuthenticationFailed(
                    "Malformed Authorization header: expected 'Token <key>'."
                )
            return self._authenticate_key(header[1].decode(errors="replace"))
        if API_KEY_HEADER in request.META:
            return self._authenticate_key(request.META[API_KEY_HEADER].strip())
        return None

    def _authenticate_key(self, raw_key: str):
        if not raw_key:
            raise exceptions.AuthenticationFailed("Empty API key.")
        token = api_token_get_active(raw_key=raw_key)
        # Only the SHA-256 of a key is looked up, so lookup timing says nothing about the key;
        # the constant-time comparison keeps it so whatever index or collation Postgres uses.
        if token is None or not hmac.compare_digest(token.key_hash, ApiToken.hash_key(raw_key)):
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
