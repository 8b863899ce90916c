"""Delivery of alerts beyond the page: a webhook and Telegram. Never on the detection path.

Layers: tasks import services, never the reverse. ``alerts.services.alert_store`` calls
``alert_delivery_queue`` after commit; the webhook's retried task is enqueued here by its
*name* (``celery.current_app.send_task``), so this module needs nothing from ``alerts.tasks``
(which imports this one) and the import graph has no cycle. Routing and the queue still come
from ``CELERY_TASK_ROUTES``, which Celery applies by name.
"""

import json
import logging
import time
from decimal import Decimal

import requests
from celery import current_app
from django.conf import settings
from django.db.models import F
from django.utils import timezone

from alerts.formatting import alert_payload
from alerts.models import (
    AlertDelivery,
    AlertDirection,
    AlertSource,
    DeliveryChannel,
    OpenInterestAlert,
)
from alerts.telegram.services import telegram_configured, telegram_outbox_push, telegram_send_now
from alerts.telegram.text import TEST_TITLE, alert_text
from alerts.webhook_signing import webhook_headers
from common.redaction import redact

logger = logging.getLogger(__name__)

DELIVER_TASK = "alerts.deliver"  # alerts.tasks.alert_deliver_task: (alert_id, channel)


class DeliveryError(Exception):
    pass


def delivery_channels() -> list[DeliveryChannel]:
    channels = []
    if settings.ALERT_WEBHOOK_URL:
        channels.append(DeliveryChannel.WEBHOOK)
    if telegram_configured():
        channels.append(DeliveryChannel.TELEGRAM)
    return channels


def alert_delivery_queue(alert_id: int) -> None:
    """Queue a new alert's delivery on every configured channel: a retried Celery task for the
    webhook (enqueued by name, see the module's docstring), the rate-limited outbox for
    Telegram."""
    for channel in delivery_channels():
        if channel == DeliveryChannel.TELEGRAM:
            telegram_outbox_push([alert_id])
        else:
            current_app.send_task(DELIVER_TASK, args=(alert_id, channel.value))


def alert_deliver(*, alert_id: int, channel: str) -> bool:
    """Send one alert on one channel once; True when it is (now or already) delivered.
    Raises DeliveryError with the cause when sending failed (the caller retries). Telegram
    goes through its outbox instead (False: queued)."""
    if channel == DeliveryChannel.TELEGRAM:  # tasks queued before the outbox existed
        telegram_outbox_push([alert_id])
        return False
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
            _post(settings.ALERT_WEBHOOK_URL, payload=alert_payload(alert))
        else:
            raise DeliveryError(f"unknown channel {channel!r}")
    except DeliveryError as exc:
        AlertDelivery.objects.filter(pk=delivery.pk).update(last_error=redact(str(exc))[:1000])
        logger.warning(
            "alert delivery failed",
            extra={
                "alert_id": alert_id,
                "channel": channel,
                "symbol": alert.symbol,
                "cause": redact(str(exc)),
            },
        )
        raise
    AlertDelivery.objects.filter(pk=delivery.pk).update(delivered=True, last_error="")
    return True


def alert_send_test(channels: list[str] | None = None) -> list[tuple[str, bool, str]]:
    """Send a marked test alert (stored nowhere) on each configured channel now, or on those of
    `channels` that are configured; returns (channel, ok, detail) per channel."""
    alert = _test_alert()
    results = []
    for channel in delivery_channels():
        if channels is not None and channel not in channels:
            continue
        if channel == DeliveryChannel.TELEGRAM:
            sent = telegram_send_now(alert_text(alert, title=TEST_TITLE))
            results.append((channel, sent.ok, sent.detail))
            continue
        try:
            _post(settings.ALERT_WEBHOOK_URL, payload={**alert_payload(alert), "test": True})
        except DeliveryError as exc:
            results.append((channel, False, redact(str(exc))))
        else:
            results.append((channel, True, "delivered"))
    return results


def _test_alert() -> OpenInterestAlert:
    return OpenInterestAlert(
        symbol="BTCUSDT",
        direction=AlertDirection.UP,
        baseline=Decimal("80000"),
        current=Decimal("84000"),
        pct_change=Decimal("0.05"),
        abs_change=Decimal("4000"),
        source=AlertSource.INGEST,
        ts=timezone.now(),
        rule_name="test",
        window_sec=300,
        price_change_pct=Decimal("0.012"),
        mark_price=Decimal("97000"),
        funding_rate=Decimal("0.0001"),
        oi_usd_before=Decimal("7760000000"),
        oi_usd_after=Decimal("8148000000"),
        quote_volume_24h=Decimal("12500000000"),
        alerts_24h=1,
    )


def _post(url: str, *, payload: dict) -> None:
    """POST the payload as JSON, signed (``alerts.webhook_signing``) when a secret is set: the
    signature covers the exact bytes sent, so the body is serialized here, once."""
    body = _json_body(payload)
    headers = {"Content-Type": "application/json"}
    if settings.ALERT_WEBHOOK_SECRET:
        headers.update(webhook_headers(settings.ALERT_WEBHOOK_SECRET, int(time.time()), body))
    try:
        response = requests.post(url, data=body, headers=headers, timeout=(3, 10))
    except requests.RequestException as exc:
        # the exception's text carries the URL, and a webhook's secret is in its URL; `from None`
        # keeps the unredacted exception out of tracebacks and Celery's retry records
        raise DeliveryError(redact(f"{type(exc).__name__}: {exc}")) from None
    if response.status_code >= 300:
        raise DeliveryError(redact(f"HTTP {response.status_code}: {response.text[:200]}"))


def _json_body(payload: dict) -> bytes:
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
