"""Signed webhooks: a receiver that knows only the README's scheme verifies every POST, and
refuses a changed body, a wrong secret and a replay."""

import hashlib
import hmac
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from alerts.channels.services import (
    channel_outbox_drain,
    channel_send_test,
    channels_sync_from_settings,
)
from alerts.formatting import alert_payload
from alerts.models import OpenInterestAlert
from alerts.webhook_signing import webhook_signature, webhook_signature_verify

SECRET = "whsec-7b1f0c2e9d4a4e0f8a3c"
ALERT = {
    "symbol": "SOLUSDT", "direction": "UP", "baseline": 1000, "current": 1200, "pctChange": 0.2,
    "absChange": 200, "timestamp": "2025-12-01T12:00:00Z", "source": "ingest",
}  # fmt: skip


class Receiver:
    """A webhook receiver written from the README alone: HMAC-SHA256 with the shared secret over
    `<X-VolSpike-Timestamp>.<raw body>`, hex, as `v1=<hex>` in X-VolSpike-Signature; a timestamp
    more than 5 minutes off is a replay. It answers 401 to what fails, 200 to the rest."""

    def __init__(self, secret: str) -> None:
        self.requests: list[tuple[dict[str, str], bytes, int]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                status = 200 if receiver.verified(self.headers, body, secret) else 401
                receiver.requests.append((dict(self.headers), body, status))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/oi"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @staticmethod
    def verified(headers, body: bytes, secret: str) -> bool:
        timestamp = headers.get("X-VolSpike-Timestamp", "")
        signature = headers.get("X-VolSpike-Signature", "")
        if not timestamp.isdigit() or abs(time.time() - int(timestamp)) > 300:
            return False
        mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
        return hmac.compare_digest(f"v1={mac.hexdigest()}", signature)


@pytest.fixture
def receiver():
    receiver = Receiver(SECRET)
    yield receiver
    receiver.server.shutdown()


@pytest.mark.django_db
def test_an_independent_receiver_verifies_every_signed_alert(
    receiver, writer_client, settings, redis_client, django_capture_on_commit_callbacks
):
    settings.ALERT_WEBHOOK_URL, settings.ALERT_WEBHOOK_SECRET = receiver.url, SECRET
    (channel,) = channels_sync_from_settings()
    with django_capture_on_commit_callbacks(execute=True):  # queued after commit
        alert_id = writer_client.post(
            "/api/open-interest-alerts/ingest", ALERT, format="json"
        ).json()["alert"]["id"]

    assert channel_outbox_drain(channel.pk, run_sec=2) == 1
    report = channel_send_test(channel)

    assert [status for _, _, status in receiver.requests] == [200, 200]
    headers, body, _ = receiver.requests[0]
    assert headers["Content-Type"] == "application/json"
    assert json.loads(body) == alert_payload(OpenInterestAlert.objects.get(pk=alert_id))
    assert (report.channel, report.ok) == ("webhook (settings)", True)
    assert json.loads(receiver.requests[1][1])["test"] is True


@pytest.mark.django_db
def test_a_receiver_with_another_secret_refuses_and_the_delivery_fails_with_the_cause(
    receiver, writer_client, settings, redis_client, django_capture_on_commit_callbacks
):
    settings.ALERT_WEBHOOK_URL, settings.ALERT_WEBHOOK_SECRET = receiver.url, "another-secret-xyz"
    (channel,) = channels_sync_from_settings()
    report = channel_send_test(channel)
    assert not report.ok and report.detail.startswith("HTTP 401")
    assert "another-secret-xyz" not in report.detail


@pytest.mark.django_db
@pytest.mark.django_db
def test_without_a_secret_the_webhook_is_sent_unsigned(receiver, settings, redis_client):
    settings.ALERT_WEBHOOK_URL, settings.ALERT_WEBHOOK_SECRET = receiver.url, ""
    (channel,) = channels_sync_from_settings()
    ok = channel_send_test(channel).ok
    headers, _, status = receiver.requests[0]
    assert (ok, status) == (False, 401)
    assert "X-VolSpike-Signature" not in headers and "X-VolSpike-Timestamp" not in headers


def test_the_verifier_refuses_a_changed_body_a_changed_timestamp_and_a_replay():
    body, now = b'{"symbol":"BTCUSDT","pctChange":0.05}', 1_764_590_000
    signature = webhook_signature(SECRET, now, body)

    def verify(body=body, timestamp=str(now), signature=signature, at=now):
        return webhook_signature_verify(
            SECRET, timestamp_header=timestamp, signature_header=signature, body=body, now=at
        )

    assert verify()
    assert verify(at=now + 299)  # within the 5-minute tolerance
    assert not verify(at=now + 301)  # a replay
    assert not verify(body=body.replace(b"0.05", b"0.50"))
    assert not verify(timestamp=str(now + 1))
    assert not verify(signature=signature[:-1] + "0" if signature[-1] != "0" else signature[:-1])
    assert not verify(timestamp=None) and not verify(signature=None) and not verify(timestamp="-1")
