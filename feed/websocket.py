"""Who may open the live feed: the Host and Origin checks in front of the consumer, and the
API token a client presents."""

from enum import StrEnum
from urllib.parse import parse_qs

from channels.security.websocket import OriginValidator, WebsocketDenier
from django.conf import settings
from django.http.request import split_domain_port, validate_host

# A client offers `Sec-WebSocket-Protocol: volspike.feed, volspike.token.<key>`: the server
# accepts `volspike.feed` and reads the key from the other, so the key never appears in a URL
# (which servers and proxies log). Browsers can set this header; they cannot set Authorization.
FEED_SUBPROTOCOL = "volspike.feed"
TOKEN_SUBPROTOCOL_PREFIX = "volspike.token."  # noqa: S105 - a prefix, not a secret


class TokenSource(StrEnum):
    """Where a client put its API key."""

    NONE = ""
    SUBPROTOCOL = "subprotocol"
    HEADER = "header"
    QUERY = "query"  # deprecated: proxies log URLs


class FeedOriginValidator(OriginValidator):
    """Browsers must come from an allowed host; clients that send no Origin (servers, scripts)
    are let through, as the feed carries the same data as the open read API."""

    def __init__(self, application) -> None:
        allowed = [*settings.ALLOWED_HOSTS, *settings.WS_ALLOWED_ORIGINS]
        super().__init__(application, allowed)

    def valid_origin(self, parsed_origin) -> bool:
        if parsed_origin is None:
            return True
        return self.validate_origin(parsed_origin)


class AllowedHostValidator:
    """Refuses (HTTP 403 at the handshake) a WebSocket whose Host header is not in ALLOWED_HOSTS,
    as Django refuses such an HTTP request: DNS-rebinding pages cannot reach the feed."""

    def __init__(self, application) -> None:
        self.application = application

    async def __call__(self, scope, receive, send):
        host = header_value(scope, b"host")
        domain, _port = split_domain_port(host)
        if domain and validate_host(domain, settings.ALLOWED_HOSTS):
            return await self.application(scope, receive, send)
        return await WebsocketDenier()(scope, receive, send)


def header_value(scope, name: bytes) -> str:
    """The first value of a request header of an ASGI scope ('' if absent)."""
    for header_name, value in scope.get("headers", []):
        if header_name == name:
            return value.decode("latin-1")
    return ""


def token_from_scope(scope) -> tuple[str, TokenSource]:
    """The API key a WebSocket client presented, and where: `Sec-WebSocket-Protocol`
    (`volspike.token.<key>`), `Authorization: Token <key>` (or Bearer), or the deprecated
    `?token=` (logged by proxies; kept for old clients). ("", TokenSource.NONE) when none."""
    for subprotocol in scope.get("subprotocols", []):
        if subprotocol.startswith(TOKEN_SUBPROTOCOL_PREFIX):
            return subprotocol.removeprefix(TOKEN_SUBPROTOCOL_PREFIX), TokenSource.SUBPROTOCOL
    keyword, _, key = header_value(scope, b"authorization").strip().partition(" ")
    if keyword.lower() in ("token", "bearer") and key.strip():
        return key.strip(), TokenSource.HEADER
    query = parse_qs(scope.get("query_string", b"").decode(errors="replace"))
    if key := query.get("token", [""])[0]:
        return key, TokenSource.QUERY
    return "", TokenSource.NONE
