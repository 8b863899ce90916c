"""Secrets out of logged and stored text: one helper for every error that may carry a URL or a
key (a Telegram bot token sits in the URL path of every Bot API call, a webhook's secret in its
URL, a Discord or Slack webhook URL is itself the secret; requests puts them in its exception
texts). Secrets kept in the database (delivery channels) are registered by the code that loads
them (``secrets_register``), so redacting a log line never queries anything."""

import re
import threading
from collections.abc import Iterable
from urllib.parse import urlsplit

REDACTED = "[redacted]"

_PATTERNS = (
    # a Telegram bot token, wherever it appears (bot<id>:<secret> in Bot API paths)
    re.compile(r"\d{5,}:[A-Za-z0-9_-]{30,}"),
    # credentials inside a URL: scheme://user:password@host
    re.compile(r"(?<=://)[^/\s:@]+:[^/\s@]+(?=@)"),
    # an API key after its scheme in a header value
    re.compile(r"(?i)(?<=\btoken )[A-Za-z0-9_-]{20,}|(?<=\bbearer )[A-Za-z0-9_-]{20,}"),
    # a Discord webhook's id and token (…/api/webhooks/<id>/<token>, any host, or the path alone)
    re.compile(r"(?<=/webhooks/)\d+/[A-Za-z0-9_.-]+"),
    # a Slack incoming webhook's team, hook and token (…/services/T…/B…/<token>)
    re.compile(r"(?<=/services/)[A-Za-z0-9]+/[A-Za-z0-9]+/[A-Za-z0-9]+"),
)

_registered: set[str] = set()
_registered_lock = threading.Lock()


def secrets_register(values: Iterable[str]) -> None:
    """Redact these values (and a URL's path and query) from now on, in this process."""
    found = set()
    for value in values:
        if not value:
            continue
        found.add(value)
        found.update(_url_path(value))
    with _registered_lock:
        _registered.update(v for v in found if len(v) >= 8)


def _url_path(value: str) -> list[str]:
    """A URL's path with its query: requests names only that in its errors ("... with url:
    /hooks/T0/B0/XXXX")."""
    try:
        parts = urlsplit(value)
    except ValueError:
        return []
    if not (parts.scheme and parts.hostname):
        return []
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    return [path] if len(path) > 1 else []


def configured_secrets() -> list[str]:
    """The secret strings of this deployment's settings, longest first (empty when Django is not
    configured)."""
    try:
        from django.conf import settings

        values = [
            settings.TELEGRAM_BOT_TOKEN,
            settings.OI_REMOTE_INGEST_TOKEN,
            getattr(settings, "METRICS_TOKEN", ""),
            getattr(settings, "ALERT_WEBHOOK_SECRET", ""),
            settings.SECRET_KEY,
        ]
        webhook = settings.ALERT_WEBHOOK_URL
    except Exception:  # noqa: BLE001 - settings not configured (or broken): patterns only
        return []
    if webhook:
        values.append(webhook)
        values.extend(_url_path(webhook))
    with _registered_lock:
        values.extend(_registered)
    return sorted({v for v in values if v and len(v) >= 8}, key=len, reverse=True)


def redact(text: str) -> str:
    """`text` with every configured secret and every token-looking string replaced."""
    for secret in configured_secrets():
        if secret in text:
            text = text.replace(secret, _keep_host(secret))
    for pattern in _PATTERNS:
        text = pattern.sub(REDACTED, text)
    return text


def _keep_host(secret: str) -> str:
    """A URL keeps its scheme and host (enough to tell which endpoint failed)."""
    parts = urlsplit(secret)
    if parts.scheme and parts.hostname:
        port = f":{parts.port}" if parts.port else ""
        return f"{parts.scheme}://{parts.hostname}{port}/{REDACTED}"
    return REDACTED
