"""Alert delivery beyond the page: a webhook and Telegram over real HTTP, retried by a real worker."""

import time

import pytest
from django.test import override_settings

from alerts.delivery import DeliveryError, alert_deliver
from alerts.formatting import alert_payload
from alerts.models import AlertDelivery, OpenInterestAlert
from alerts.telegram.services import telegram_outbox_drain

ALERT = {
    "symbol": "SOLUSDT", "direction": "UP", "baseline": 1000, "current": 1200, "pctChange": 0.2,
    "absChange": 200, "timestamp": "2025-12-01T12:00:00Z", "source": "ingest",
}  # fmt: skip


@pytest.mark.django_db
def test_the_webhook_gets_the_alert_payload_once(fake_http, writer_client, settings, redis_client):
    hook = fake_http()
    settings.ALERT_WEBHOOK_URL = f"{hook.url}/hooks/oi"
    alert_id = writer_client.post("/api/open-interest-alerts/ingest", ALERT, format="json").json()[
        "alert"
    ]["id"]

    assert alert_deliver(alert_id=alert_id, channel="webhook")
    assert alert_deliver(
        alert_id=alert_id, channel="webhook"
    )  # a redelivered task sends nothing more

    ((_, path, body, _),) = hook.received
    alert = OpenInterestAlert.objects.get(pk=alert_id)
    assert (path, body) == ("/hooks/oi", alert_payload(alert))
    assert {key: body[key] for key in ALERT} == {**ALERT, "baseline": 1000.0, "current": 1200.0,
                                                 "absChange": 200.0}  # fmt: skip
    assert body["id"] == alert_id
    assert body["links"]["binance"] == "https://www.binance.com/en/futures/SOLUSDT"
    delivery = AlertDelivery.objects.get()
    assert (delivery.channel, delivery.delivered, delivery.attempts) == ("webhook", True, 1)


@pytest.mark.django_db
def test_telegram_gets_a_readable_message_with_links_through_its_outbox(
    fake_http, writer_client, settings, redis_client
):
    bot = fake_http()
    settings.TELEGRAM_API_URL, settings.TELEGRAM_BOT_TOKEN, settings.TELEGRAM_CHAT_ID = (
        bot.url,
        "123:abc",
        "-100",
    )
    alert_id = writer_client.post("/api/open-interest-alerts/ingest", ALERT, format="json").json()[
        "alert"
    ]["id"]
    assert not alert_deliver(alert_id=alert_id, channel="telegram")  # queued in the outbox
    assert telegram_outbox_drain(run_sec=2) == 1
    ((_, path, body, _),) = bot.received
    assert path == "/bot123:abc/sendMessage"
    assert body["chat_id"] == "-100"
    assert body["text"].startswith("📈 SOLUSDT open interest spike +20.00%")
    assert "https://www.binance.com/en/futures/SOLUSDT" in body["text"]
    assert "https://www.tradingview.com/chart/?symbol=BINANCE:SOLUSDT.P" in body["text"]


@pytest.mark.django_db
def test_a_failed_delivery_is_visible_and_the_alert_is_kept(
    fake_http, writer_client, settings, redis_client
):
    hook = fake_http([500])
    settings.ALERT_WEBHOOK_URL = hook.url
    alert_id = writer_client.post("/api/open-interest-alerts/ingest", ALERT, format="json").json()[
        "alert"
    ]["id"]
    with pytest.raises(DeliveryError, match="HTTP 500"):
        alert_deliver(alert_id=alert_id, channel="webhook")
    delivery = AlertDelivery.objects.get()
    assert (delivery.delivered, delivery.attempts) == (False, 1)
    assert delivery.last_error.startswith("HTTP 500")
    assert OpenInterestAlert.objects.filter(pk=alert_id).exists()


@pytest.mark.integration
def test_a_real_worker_retries_until_the_webhook_takes_it(
    fake_http, writer_client, celery_processes
):
    hook = fake_http([503, 502])  # fails twice, then accepts
    celery_processes.start_worker(ALERT_WEBHOOK_URL=hook.url, ALERT_DELIVERY_RETRY_BASE_SEC="0.3")
    # this process queues the delivery after commit: it needs the same webhook setting
    with override_settings(ALERT_WEBHOOK_URL=hook.url):
        alert_id = writer_client.post(
            "/api/open-interest-alerts/ingest", ALERT, format="json"
        ).json()["alert"]["id"]
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not AlertDelivery.objects.filter(delivered=True).exists():
        time.sleep(0.2)
    delivery = AlertDelivery.objects.get(alert_id=alert_id)
    assert (delivery.delivered, delivery.attempts) == (True, 3)
    assert len(hook.received) == 3
