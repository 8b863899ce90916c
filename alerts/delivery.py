"""Delivery of alerts beyond the page: a webhook and Telegram. Never on the detection path."""

import logging

import requests
from django.conf import settings
from django.db.models import F

from alerts.models import AlertDelivery, DeliveryChannel, OpenInterestAlert
from alerts.services import alert_payload

logger = logging.getLogger(__name__)


class DeliveryError(Exception):
    pass


def delivery_channels() -> list[str]:
    channels = []
    if settings.ALERT_WEBHOOK_URL:
        channels.append(DeliveryChannel.WEBHOOK.value)
    if settings.TELEGRAM_BOT_TOKEN and settings.TELEGRAM_CHAT_ID:
        channels.append(DeliveryChannel.TELEGRAM.value)
    return channels


def alert_delivery_queue(alert_id: int) -> None:
    """Queue a new alert's delivery on every configured channel."""
    from alerts.tasks import alert_deliver_task

    for channel in delivery_channels():
        alert_deliver_task.delay(alert_id, channel)


def alert_deliver(*, alert_id: int, channel: str) -> bool:
    """Send one alert on one channel once; True when it is (now or already) delivered.
    Raises DeliveryError with the cause when sending failed (the caller retries)."""
    alert = OpenInterestAlert.objects.filter(pk=alert_id).first()
    if alert is None:
        logger.warning("alert to deliver no longer exists", extra={"alert_id": alert_id})
        return False
    delivery, _ = AlertDelivery.objects.get_or_create(alert=alert, channel=channel)
    if delivery.delivered:
        return True
    AlertDelivery.objects.filter(pk=delivery.pk).update(attempts=F("attempts") + 1)
    try:
        if channel == DeliveryChannel.WEBHOOK:
            _post(settings.ALERT_WEBHOOK_URL, json=alert_payload(alert))
        elif channel == DeliveryChannel.TELEGRAM:
            _post(
                f"{settings.TELEGRAM_API_URL}/bot{settings.TELEGRAM_BOT_TOKEN}/sendMessage",
                json={
                    "chat_id": settings.TELEGRAM_CHAT_ID,
                    "text": alert_text(alert),
                    "disable_web_page_preview": True,
                },
            )
        else:
            raise DeliveryError(f"unknown channel {channel!r}")
    except DeliveryError as exc:
        AlertDelivery.objects.filter(pk=delivery.pk).update(last_error=str(exc)[:1000])
        logger.warning(
            "alert delivery failed",
            extra={
                "alert_id": alert_id,
                "channel": channel,
                "symbol": alert.symbol,
                "cause": str(exc),
            },
        )
        raise
    AlertDelivery.objects.filter(pk=delivery.pk).update(delivered=True, last_error="")
    return True


def alert_text(alert: OpenInterestAlert) -> str:
    arrow = "📈" if alert.direction == "UP" else "📉"
    kind = "spike" if alert.direction == "UP" else "dump"
    return (
        f"{arrow} {alert.symbol} open interest {kind} {alert.pct_change:+.2%}\n"
        f"{alert.baseline:,.0f} → {alert.current:,.0f} contracts ({alert.abs_change:+,.0f})\n"
        f"{alert.ts:%Y-%m-%d %H:%M:%S} UTC\n"
        f"https://www.binance.com/en/futures/{alert.symbol}\n"
        f"https://www.tradingview.com/chart/?symbol=BINANCE:{alert.symbol}.P"
    )


def _post(url: str, *, json: dict) -> None:
    try:
        response = requests.post(url, json=json, timeout=(3, 10))
    except requests.RequestException as exc:
        raise DeliveryError(f"{type(exc).__name__}: {exc}") from exc
    if response.status_code >= 300:
        raise DeliveryError(f"HTTP {response.status_code}: {response.text[:200]}")
