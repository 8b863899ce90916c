"""common/redaction.py: what a delivery or any other error may say, without the secrets."""

from common.logging import KeyValueFormatter
from common.redaction import redact

BOT = "7012345678:AAHs3cr3tB0tT0k3nS3cr3tB0tT0k3n_xyz"


def test_a_bot_token_in_a_bot_api_url_is_redacted_even_when_not_configured():
    text = f"ConnectionError: ... Max retries exceeded with url: /bot{BOT}/sendMessage"
    assert redact(text) == (
        "ConnectionError: ... Max retries exceeded with url: /bot[redacted]/sendMessage"
    )


def test_the_configured_webhook_keeps_its_host_and_loses_its_path(settings):
    settings.ALERT_WEBHOOK_URL = "https://hooks.example.com/services/T0/B0/XXXXsecretXXXX"
    full = redact(f"POST {settings.ALERT_WEBHOOK_URL} failed")
    path_only = redact(
        "HTTPSConnectionPool: Max retries exceeded with url: /services/T0/B0/XXXXsecretXXXX"
    )
    assert full == "POST https://hooks.example.com/[redacted] failed"
    assert "secret" not in path_only and "[redacted]" in path_only


def test_credentials_in_urls_and_token_headers_are_redacted():
    assert redact("redis://user:hunter2hunter2@10.0.0.5:6379/0") == (
        "redis://[redacted]@10.0.0.5:6379/0"
    )
    assert "abcdefghijklmnopqrstuvwxyz012345" not in redact(
        "Authorization: Token abcdefghijklmnopqrstuvwxyz012345"
    )


def test_ordinary_log_text_is_left_alone():
    text = "ts=2025-12-01T12:00:00Z symbol=BTCUSDT member=1733000000000:85374.562 token revoked"
    assert redact(text) == text


def test_every_formatted_log_line_is_redacted():
    import logging

    record = logging.LogRecord("x", logging.WARNING, __file__, 1, "send failed", (), None)
    record.cause = f"url: /bot{BOT}/sendMessage"
    assert BOT not in KeyValueFormatter().format(record)


def test_discord_and_slack_webhook_urls_are_redacted_even_when_not_configured():
    discord = (
        "https://discord.com/api/webhooks/1234567890123/AbC-dEf_gHiJkLmNoPqRsTuVwXyZ0123456789"
    )
    slack = "https://hooks.slack.com/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX"
    for url in (discord, slack):
        secret = url.rsplit("/", 1)[1]
        for text in (
            f"POST {url} failed",
            f"Max retries exceeded with url: {url[url.index('/', 8) :]}",
        ):
            assert secret not in redact(text) and "[redacted]" in redact(text), text
    assert redact(f"POST {discord}") == "POST https://discord.com/api/webhooks/[redacted]"


def test_a_registered_channel_secret_is_redacted_wherever_it_appears():
    from common.redaction import secrets_register

    hook = "https://receiver.example.net/in/abc123?key=q9w8e7r6t5y4"
    secrets_register([hook, "whsec-signing-0123456789"])
    assert redact(f"POST {hook}: 500") == "POST https://receiver.example.net/[redacted]: 500"
    assert "q9w8e7r6t5y4" not in redact(
        "Max retries exceeded with url: /in/abc123?key=q9w8e7r6t5y4"
    )
    assert "whsec-signing" not in redact("secret whsec-signing-0123456789 refused")
