"""Hardening #8: the Telegram bot token and the webhook's URL never reach a log line or the
stored delivery error (shown in the admin), whatever the failure says."""

import time

import pytest

from alerts.models import AlertDelivery
from tests.fixtures.processes import free_port, wait_until

pytestmark = pytest.mark.integration

BOT_TOKEN = "7012345678:AAHs3cr3tB0tT0k3nS3cr3tB0tT0k3n_xyz"
HOOK_SECRET = "B0SECRETHOOKPATH0x7f3a"
ALERT = {
    "symbol": "SECRUSDT", "direction": "UP", "baseline": 1000, "current": 1200, "pctChange": 0.2,
    "absChange": 200, "timestamp": "2025-12-01T12:00:00Z", "source": "ingest",
}  # fmt: skip


def test_failed_deliveries_log_and_store_their_cause_without_the_secrets(
    writer_client, celery_processes, settings
):
    dead = f"http://127.0.0.1:{free_port()}"  # nothing listens: requests names the URL it tried
    env = {
        "TELEGRAM_API_URL": dead,
        "TELEGRAM_BOT_TOKEN": BOT_TOKEN,
        "TELEGRAM_CHAT_ID": "-1001",
        "ALERT_WEBHOOK_URL": f"{dead}/hooks/T000/{HOOK_SECRET}?key={HOOK_SECRET}",
    }
    worker = celery_processes.start_worker(**env)  # keeps the settings' channels at its start
    celery_processes.start_beat(**env)
    response = writer_client.post("/api/open-interest-alerts/ingest", ALERT, format="json")
    assert response.status_code == 200, response.content

    deliveries = wait_until(
        lambda: (
            rows := list(
                AlertDelivery.objects.exclude(last_error="").order_by("channel__kind")
            )
        ) and len(rows) == 2 and rows,
        30,
        "both channels should have failed and recorded why",
    )  # fmt: skip
    deadline = time.monotonic() + 10
    log = ""
    while time.monotonic() < deadline:
        log = worker.log_path.read_text(errors="replace")
        if log.count("channel send failed") >= 2:
            break
        time.sleep(0.2)

    assert [d.channel.kind for d in deliveries] == ["telegram", "webhook"]
    for delivery in deliveries:
        assert "ConnectionError" in delivery.last_error, delivery.last_error  # the cause stays
        assert BOT_TOKEN not in delivery.last_error and "s3cr3t" not in delivery.last_error
        assert HOOK_SECRET not in delivery.last_error, delivery.last_error
        assert "[redacted]" in delivery.last_error
    assert log.count("channel send failed") >= 2
    assert BOT_TOKEN not in log and "s3cr3t" not in log
    assert HOOK_SECRET not in log
