"""Alert delivery beyond the page: a webhook and Telegram over real HTTP, through each channel's
outbox, retried by a real worker and beat."""

import time

import pytest

from alerts.channels.outbox import Outbox
from alerts.channels.services import channel_outbox_drain, channels_sync_from_settings
from alerts.formatting import alert_payload
from alerts.models import AlertDelivery, OpenInterestAlert
from common.redis import get_redis

ALERT = {
    "symbol": "SOLUSDT", "direction": "UP", "baseline": 1000, "current": 1200, "pctChange": 0.2,
    "absChange": 200, "timestamp": "2025-12-01T12:00:00Z", "source": "ingest",
}  # fmt: skip


@pytest.mark.django_db
def test_the_webhook_gets_the_alert_payload_once(
    fake_http, writer_client, settings, redis_client, django_capture_on_commit_callbacks
):
    hook = fake_http()
    settings.ALERT_WEBHOOK_URL = f"{hook.url}/hooks/oi"
    (channel,) = channels_sync_from_settings()
    with django_capture_on_commit_callbacks(execute=True):  # queued after commit
        alert_id = writer_client.post(
            "/api/open-interest-alerts/ingest", ALERT, format="json"
        ).json()["alert"]["id"]

    assert channel_outbox_drain(channel.pk, run_sec=2) == 1
    assert channel_outbox_drain(channel.pk, run_sec=1) == 0  # a repeated drain sends no more

    ((_, path, body, _),) = hook.received
    alert = OpenInterestAlert.objects.get(pk=alert_id)
    assert (path, body) == ("/hooks/oi", alert_payload(alert))
    assert {key: body[key] for key in ALERT} == {**ALERT, "baseline": 1000.0, "current": 1200.0,
                                                 "absChange": 200.0}  # fmt: skip
    assert body["id"] == alert_id
    assert body["links"]["binance"] == "https://www.binance.com/en/futures/SOLUSDT"
    delivery = AlertDelivery.objects.get()
    assert (delivery.channel.kind, delivery.delivered, delivery.attempts) == ("webhook", True, 1)


@pytest.mark.django_db
def test_telegram_gets_a_readable_message_with_links_through_its_outbox(
    fake_http, writer_client, settings, redis_client, django_capture_on_commit_callbacks
):
    bot = fake_http()
    settings.TELEGRAM_API_URL, settings.TELEGRAM_BOT_TOKEN, settings.TELEGRAM_CHAT_ID = (
        bot.url,
        "123:abc",
        "-100",
    )
    (channel,) = channels_sync_from_settings()
    with django_capture_on_commit_callbacks(execute=True):
        writer_client.post("/api/open-interest-alerts/ingest", ALERT, format="json")
    assert Outbox(get_redis(), channel.pk).size() == 1  # queued in the chat's outbox
    assert channel_outbox_drain(channel.pk, run_sec=2) == 1
    ((_, path, body, _),) = bot.received
    assert path == "/bot123:abc/sendMessage"
    assert body["chat_id"] == "-100"
    assert body["text"].startswith("📈 SOLUSDT open interest spike +20.00%")
    assert "https://www.binance.com/en/futures/SOLUSDT" in body["text"]
    assert "https://www.tradingview.com/chart/?symbol=BINANCE:SOLUSDT.P" in body["text"]


@pytest.mark.django_db
def test_a_failed_delivery_is_visible_and_the_alert_is_kept(
    fake_http, writer_client, settings, redis_client, django_capture_on_commit_callbacks
):
    hook = fake_http([500])
    settings.ALERT_WEBHOOK_URL = hook.url
    (channel,) = channels_sync_from_settings()
    with django_capture_on_commit_callbacks(execute=True):
        alert_id = writer_client.post(
            "/api/open-interest-alerts/ingest", ALERT, format="json"
        ).json()["alert"]["id"]
    assert channel_outbox_drain(channel.pk, run_sec=0.5) == 0
    delivery = AlertDelivery.objects.get()
    assert (delivery.delivered, delivery.attempts) == (False, 1)
    assert delivery.last_error.startswith("HTTP 500")
    assert OpenInterestAlert.objects.filter(pk=alert_id).exists()
    assert Outbox(get_redis(), channel.pk).size() == 1  # still queued: sent again after a pause


@pytest.mark.integration
def test_a_real_worker_retries_until_the_webhook_takes_it(
    fake_http, writer_client, celery_processes
):
    hook = fake_http([503, 502])  # fails twice, then accepts
    # the worker keeps the settings' channel at its start; this process queues on it
    celery_processes.start_worker(ALERT_WEBHOOK_URL=hook.url)
    celery_processes.start_beat(ALERT_WEBHOOK_URL=hook.url)
    alert_id = writer_client.post("/api/open-interest-alerts/ingest", ALERT, format="json").json()[
        "alert"
    ]["id"]
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not AlertDelivery.objects.filter(delivered=True).exists():
        time.sleep(0.2)
    delivery = AlertDelivery.objects.get(alert_id=alert_id)
    assert (delivery.delivered, delivery.attempts) == (True, 3)
    assert len(hook.received) == 3
