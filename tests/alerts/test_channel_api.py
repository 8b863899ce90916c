"""Delivery channels edited over the API (token) and in the admin, through the same services and
the model's ``clean``: a refused write is a 400 naming the field; secrets are write-only (never
in an API answer, the admin's HTML, a log line or a delivery error); test messages report the
platform's answer."""

import json
import logging

import pytest
from django.contrib.auth import get_user_model

from alerts.channels.services import channel_create, channel_outbox_drain, channel_queue_alerts
from alerts.models import AlertChannel, AlertDelivery, AlertRule, ChannelKind, OpenInterestAlert
from common.logging import KeyValueFormatter
from tests.fixtures.telegram import alert_fields

pytestmark = pytest.mark.django_db

DISCORD_TOKEN = "Zq8-secretDiscordToken_0123456789abcdefghijklmnopqrstuvwxyz"
DISCORD_URL = f"https://discord.com/api/webhooks/112233445566778899/{DISCORD_TOKEN}"
BOT_TOKEN = "7012345678:AAHs3cr3tB0tT0k3nS3cr3tB0tT0k3n_xyz"
SIGNING = "whsec-never-shown-0123456789"


def test_a_channel_made_over_the_api_never_shows_its_secrets(writer_client, api_client):
    rule = AlertRule.objects.first()
    answer = writer_client.post(
        "/api/alert-channels",
        {"name": "desk", "kind": "discord", "url": DISCORD_URL, "symbols": ["ETHUSDT", "BTCUSDT"],
         "directions": ["UP"], "rules": [rule.pk], "min_move_pct": "0.05", "receives_ops": True},
        format="json",
    )  # fmt: skip
    assert answer.status_code == 201, answer.content
    body = answer.json()
    assert "url" not in body and DISCORD_TOKEN not in answer.content.decode()
    assert body["secrets"] == {"bot_token": None, "url": "https://discord.com/…wxyz",
                               "signing_secret": None}  # fmt: skip
    assert body["has_secret"] is True
    assert (body["symbols"], body["rules"], body["receives_ops"]) == (
        ["BTCUSDT", "ETHUSDT"], [rule.pk], True,
    )  # fmt: skip
    listed = api_client.get("/api/alert-channels")
    assert listed.status_code == 200 and DISCORD_TOKEN not in listed.content.decode()
    assert [c["name"] for c in listed.json()] == ["desk"]

    patched = writer_client.patch(
        f"/api/alert-channels/{body['id']}", {"min_move_pct": "0.10"}, format="json"
    )
    assert patched.status_code == 200, patched.content
    assert AlertChannel.objects.get().url == DISCORD_URL  # a write without it keeps it


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"kind": "discord", "url": "https://discord.com/not/a/webhook"}, "url"),
        ({"kind": "discord", "url": DISCORD_URL.replace("https", "http")}, "url"),
        ({"kind": "slack", "url": "https://hooks.slack.com/x"}, "url"),
        ({"kind": "telegram", "telegram_chat_id": "-1001"}, "bot_token"),
        ({"kind": "telegram", "bot_token": BOT_TOKEN}, "telegram_chat_id"),
        ({"kind": "discord", "url": DISCORD_URL, "signing_secret": SIGNING}, "signing_secret"),
        ({"kind": "webhook", "url": "ftp://example.com/x"}, "url"),
        ({"kind": "webhook", "url": "https://example.com/x", "symbols": ["btc usdt"]}, "symbols"),
        ({"kind": "webhook", "url": "https://example.com/x", "directions": ["SIDEWAYS"]},
         "directions"),
        ({"kind": "webhook", "url": "https://example.com/x", "min_move_pct": "-0.1"},
         "min_move_pct"),
        ({"kind": "carrier-pigeon"}, "kind"),
    ],
)  # fmt: skip
def test_a_bad_channel_is_a_400_naming_the_field(writer_client, fields, field):
    answer = writer_client.post("/api/alert-channels", {"name": "bad", **fields}, format="json")
    assert answer.status_code == 400, answer.content
    assert field in json.dumps(answer.json()), answer.json()
    assert not AlertChannel.objects.exists()
    assert SIGNING not in answer.content.decode() and BOT_TOKEN not in answer.content.decode()


def test_reads_need_no_token_but_writes_do(api_client):
    assert api_client.get("/api/alert-channels").status_code == 200
    refused = api_client.post(
        "/api/alert-channels", {"name": "x", "kind": "discord", "url": DISCORD_URL}, format="json"
    )
    assert refused.status_code == 401


def test_the_test_message_reports_the_platforms_answer(writer_client, chat_platforms, redis_client):
    discord = chat_platforms.discord()
    channel = channel_create(name="desk", kind=ChannelKind.DISCORD, url=discord.url)
    ok = writer_client.post(f"/api/alert-channels/{channel.pk}/test").json()
    assert ok == {"channel": "desk", "ok": True, "detail": "HTTP 204"}
    (message,) = discord.messages()
    assert message["embeds"][0]["title"].startswith("🧪 TEST")
    assert not OpenInterestAlert.objects.exists()

    discord.deleted = True
    refused = writer_client.post(f"/api/alert-channels/{channel.pk}/test").json()
    assert refused["ok"] is False
    assert "Unknown Webhook" in refused["detail"] and "permanent" in refused["detail"]
    assert "Tok3n" not in refused["detail"]


@pytest.fixture
def admin_client(client):
    user = get_user_model().objects.create_superuser("root", "root@example.com", "pw-0123456789")
    client.force_login(user)
    return client


def test_the_admin_never_shows_a_secret_and_a_blank_one_keeps_it(admin_client):
    channel = channel_create(
        name="ops hook", kind=ChannelKind.WEBHOOK, url="https://hooks.example.net/in/Secr3tPath9",
        signing_secret=SIGNING,
    )  # fmt: skip
    page = admin_client.get(f"/admin/alerts/alertchannel/{channel.pk}/change/")
    html = page.content.decode()
    assert page.status_code == 200
    assert "Secr3tPath9" not in html and SIGNING not in html
    assert "…" in html  # the hint that one is set

    saved = admin_client.post(
        f"/admin/alerts/alertchannel/{channel.pk}/change/",
        {"name": "ops hook", "kind": "webhook", "enabled": "on", "telegram_chat_id": "",
         "bot_token": "", "url": "", "signing_secret": "", "receives_alerts": "on",
         "receives_ops": "on", "symbols": "", "directions": "", "min_move_pct": "",
         "_save": "Save"},
    )  # fmt: skip
    assert saved.status_code == 302, saved.content.decode()[:2000]
    channel.refresh_from_db()
    assert (channel.url, channel.signing_secret, channel.receives_ops) == (
        "https://hooks.example.net/in/Secr3tPath9", SIGNING, True,
    )  # fmt: skip

    turned = admin_client.post(
        f"/admin/alerts/alertchannel/{channel.pk}/change/",
        {"name": "ops hook", "kind": "telegram", "enabled": "on", "telegram_chat_id": "-1001",
         "bot_token": BOT_TOKEN, "url": "", "signing_secret": "", "receives_alerts": "on",
         "symbols": "", "directions": "", "min_move_pct": "", "_save": "Save"},
    )  # fmt: skip
    assert turned.status_code == 302, turned.content.decode()[:2000]
    channel.refresh_from_db()  # the webhook's secrets went with its kind
    assert (channel.kind, channel.url, channel.signing_secret) == ("telegram", "", "")
    assert (
        BOT_TOKEN
        not in admin_client.get(f"/admin/alerts/alertchannel/{channel.pk}/change/").content.decode()
    )

    refused = admin_client.post(
        "/admin/alerts/alertchannel/add/",
        {"name": "no url", "kind": "discord", "enabled": "on", "url": "", "_save": "Save",
         "symbols": "", "directions": ""},
    )  # fmt: skip
    assert refused.status_code == 200 and "needs one" in refused.content.decode()
    listing = admin_client.get("/admin/alerts/alertchannel/")
    assert "Secr3tPath9" not in listing.content.decode()


def test_a_failed_send_keeps_every_secret_out_of_logs_rows_and_the_reason(
    chat_platforms, redis_client, caplog
):
    discord = chat_platforms.discord()
    discord.deleted = True
    url = discord.url.replace("Tok3n", "S3cretT0ken")  # the fake answers 404 to any other token
    channel = channel_create(name="desk", kind=ChannelKind.DISCORD, url=url)
    alert = OpenInterestAlert.objects.create(**alert_fields(1))
    channel_queue_alerts(channel, [alert.id])
    with caplog.at_level(logging.INFO):
        channel_outbox_drain(channel.pk, run_sec=1)
    formatter = KeyValueFormatter()
    lines = "\n".join(formatter.format(record) for record in caplog.records)
    channel.refresh_from_db()
    row = AlertDelivery.objects.get()
    assert "delivery channel disabled" in lines
    for text in (lines, row.last_error, channel.disabled_reason):
        assert "S3cretT0ken" not in text, text
    assert row.last_error.startswith("HTTP 404")
