"""Reads of the delivery channels: which channels an alert or a system message goes to."""

from urllib.parse import urlsplit

from django.db.models import QuerySet

from alerts.channels.routing import ChannelFilter
from alerts.models import AlertChannel, LiquidationAlert, OpenInterestAlert


def channel_list() -> QuerySet[AlertChannel]:
    return AlertChannel.objects.prefetch_related("rules").order_by("name")


def channel_filter(channel: AlertChannel) -> ChannelFilter:
    return ChannelFilter(
        rule_ids=frozenset(rule.pk for rule in channel.rules.all()),
        symbols=frozenset(channel.symbols),
        directions=frozenset(channel.directions),
        regimes=frozenset(channel.regimes),
        min_move_pct=channel.min_move_pct,
    )


def channels_for_alert(alert: OpenInterestAlert) -> list[AlertChannel]:
    """The enabled channels that receive alerts and whose filters let this one through."""
    channels = AlertChannel.objects.filter(enabled=True, receives_alerts=True).prefetch_related(
        "rules"
    )
    return [c for c in channels if channel_filter(c).accepts(alert, rule_id=alert.rule_id)]


def channels_for_liquidation_alert(alert: LiquidationAlert) -> list[AlertChannel]:
    """The enabled channels that receive alerts and whose rule and symbol filters let this
    liquidation burst through."""
    channels = AlertChannel.objects.filter(enabled=True, receives_alerts=True).prefetch_related(
        "rules"
    )
    return [
        c
        for c in channels
        if channel_filter(c).accepts_liquidation_burst(alert.symbol, rule_id=alert.rule_id)
    ]


def channels_for_ops() -> QuerySet[AlertChannel]:
    return AlertChannel.objects.filter(enabled=True, receives_ops=True)


def channel_ids_to_drain() -> list[int]:
    return list(AlertChannel.objects.filter(enabled=True).values_list("pk", flat=True))


SECRET_HINT_CHARS = 4


def secret_hint(secret: str) -> str:
    """Enough of a write-only secret to tell which one is set: its last characters (after a
    URL's host), e.g. "https://discord.com/…x9Qa"; never the secret itself."""
    if not secret:
        return ""
    tail = f"…{secret[-SECRET_HINT_CHARS:]}" if len(secret) > 3 * SECRET_HINT_CHARS else "…"
    try:
        parts = urlsplit(secret)
        if parts.scheme and parts.hostname:
            return f"{parts.scheme}://{parts.hostname}/{tail}"
    except ValueError:
        pass
    return tail
