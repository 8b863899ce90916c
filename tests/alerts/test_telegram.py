"""Telegram delivery over real HTTP (a local server posing as the Bot API), real Redis and Postgres:
the outbox, the per-chat limits, digests, 429s and failures, the test alert. The texts themselves:
test_telegram_text.py."""

import itertools
import logging
import threading
import time
from decimal import Decimal

import pytest

from alerts.channels.limiter import ChannelKey, ChannelLimits, channel_key
from alerts.channels.outbox import Outbox
from alerts.channels.services import (
    SETTINGS_TELEGRAM_NAME,
    alert_delivery_queue,
    channel_create,
    channel_outbox_drain,
    channel_queue_alerts,
    channels_send_test,
    channels_sync_from_settings,
)
from alerts.models import AlertChannel, AlertDelivery, ChannelKind, OpenInterestAlert
from common.locks import redis_lease
from common.redis import get_redis
from tests.fixtures.processes import wait_until
from tests.fixtures.telegram import alert_fields


def the_chat() -> AlertChannel:
    return AlertChannel.objects.get(name=SETTINGS_TELEGRAM_NAME)


def telegram_outbox_push(alert_ids: list[int]) -> None:
    channel_queue_alerts(the_chat(), alert_ids)


def telegram_outbox_size() -> int:
    return Outbox(get_redis(), the_chat().pk).size()


def telegram_outbox_drain(*, run_sec: float, **kwargs) -> int:
    return channel_outbox_drain(the_chat().pk, run_sec=run_sec, **kwargs)


def make_alert(i: int, *, context: bool = True) -> OpenInterestAlert:
    return OpenInterestAlert.objects.create(**alert_fields(i, context=context))


def assert_within_limits(times: list[float], *, interval: float, per: int, window: float) -> None:
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert all(gap >= interval - 0.005 for gap in gaps), gaps
    assert all(times[i + per] - times[i] >= window - 0.005 for i in range(len(times) - per))


def drain_until_empty(pushing: threading.Thread | None, timeout: float, **kwargs) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        telegram_outbox_drain(run_sec=deadline - time.monotonic(), **kwargs)
        if (pushing is None or not pushing.is_alive()) and telegram_outbox_size() == 0:
            return
        time.sleep(0.05)
    raise AssertionError(f"outbox not drained in {timeout}s: {telegram_outbox_size()} left")


@pytest.mark.django_db
def test_a_burst_at_the_default_limits_arrives_once_spaced_and_digested(telegram):
    bot = telegram()
    alerts = [make_alert(i) for i in range(30)]
    ids = [a.id for a in alerts]

    def push():  # 12 at once, then one every 0.6 s (a little slower than the 1/s limit)
        channel_queue_alerts(bot.channel, ids[:12])  # (a thread: no DB reads there)
        for alert_id in ids[12:]:
            time.sleep(0.6)
            channel_queue_alerts(bot.channel, [alert_id])

    pushing = threading.Thread(target=push)
    started = time.monotonic()
    pushing.start()
    drain_until_empty(pushing, timeout=25)
    pushing.join()

    assert sorted(bot.delivered_symbols()) == sorted(a.symbol for a in alerts)
    assert_within_limits(bot.times, interval=1.0, per=20, window=60.0)
    texts = bot.delivered_texts()
    assert any(t.startswith("⚡") for t in texts), "no digest"
    assert any(not t.startswith("⚡") for t in texts), "no single alert"
    assert all(len(t) <= 4096 for t in texts)
    assert {path for _, path, _, _ in bot.received} == {"/bot123:abc/sendMessage"}
    assert {body["chat_id"] for _, _, body, _ in bot.received} == {"-1001"}
    rows = AlertDelivery.objects.filter(channel__kind=ChannelKind.TELEGRAM)
    assert sorted(rows.values_list("alert_id", "delivered", "attempts")) == [
        (i, True, 1) for i in sorted(ids)
    ]
    assert time.monotonic() - started < 25


@pytest.mark.django_db
def test_the_rolling_window_limit_holds_and_the_allowance_turns_into_digests(telegram):
    bot = telegram()
    limits = ChannelLimits(per_sec=20, per_min=5, window_sec=1.0, digest_after=5, digest_max=4)
    ids = [make_alert(i).id for i in range(40)]

    def push():  # ten alerts a second: twice what the window allows
        for i in ids:
            channel_queue_alerts(bot.channel, [i])
            time.sleep(0.1)

    pushing = threading.Thread(target=push)
    pushing.start()
    drain_until_empty(pushing, timeout=20, limits=limits)
    pushing.join()

    assert sorted(bot.delivered_symbols()) == sorted(f"T{i:03d}USDT" for i in range(40))
    assert_within_limits(bot.times, interval=0.05, per=5, window=1.0)
    assert any(t.startswith("⚡") for t in bot.delivered_texts())


@pytest.mark.django_db
def test_a_429_pauses_the_chat_for_retry_after_and_loses_nothing(telegram):
    too_many = {
        "ok": False, "error_code": 429, "description": "Too Many Requests: retry after 2",
        "parameters": {"retry_after": 2},
    }  # fmt: skip
    bot = telegram([(429, too_many)])
    alerts = [make_alert(i) for i in range(3)]
    telegram_outbox_push([a.id for a in alerts])

    telegram_outbox_drain(run_sec=1.0)  # the pause outlasts this run: everything stays queued
    assert telegram_outbox_size() == 3
    first = AlertDelivery.objects.get(alert=alerts[0], channel__kind=ChannelKind.TELEGRAM)
    assert (first.delivered, first.attempts) == (False, 1)
    assert first.last_error.startswith("HTTP 429")

    drain_until_empty(None, timeout=15)
    assert [s for s in bot.delivered_symbols()] == [a.symbol for a in alerts]
    statuses = [status for *_, status in bot.received]
    assert statuses == [429, 200, 200, 200]
    assert bot.times[1] - bot.times[0] >= 2.0
    assert_within_limits(bot.times, interval=1.0, per=20, window=60.0)
    first.refresh_from_db()
    assert (first.delivered, first.attempts, first.last_error) == (True, 2, "")


@pytest.mark.django_db
def test_a_server_error_keeps_the_alerts_queued_and_they_go_later(telegram, caplog):
    bot = telegram([(500, {"ok": False, "description": "Internal Server Error"})])
    alerts = [make_alert(i) for i in range(2)]
    telegram_outbox_push([a.id for a in alerts])

    with caplog.at_level(logging.WARNING, logger="alerts.channels.services"):
        telegram_outbox_drain(run_sec=0.5)
    assert telegram_outbox_size() == 2
    (record,) = [r for r in caplog.records if r.msg.startswith("channel send failed")]
    assert record.alert_ids == [alerts[0].id]
    assert record.cause.startswith("HTTP 500")

    drain_until_empty(None, timeout=10)
    assert bot.delivered_symbols() == [a.symbol for a in alerts]
    assert bot.times[1] - bot.times[0] >= 1.0  # backed off
    rows = AlertDelivery.objects.filter(channel__kind=ChannelKind.TELEGRAM).order_by("alert_id")
    assert list(rows.values_list("delivered", "attempts", "last_error")) == [
        (True, 2, ""),
        (True, 1, ""),
    ]


@pytest.mark.django_db
def test_one_sender_at_a_time_and_delivered_alerts_are_not_sent_again(telegram):
    bot = telegram()
    alert = make_alert(1)
    telegram_outbox_push([alert.id])
    sender = channel_key(bot.channel.pk, ChannelKey.SENDER)
    with redis_lease(get_redis(), sender, ttl_sec=10) as held:
        assert held
        assert telegram_outbox_drain(run_sec=1.0) == 0
    assert telegram_outbox_size() == 1 and bot.received == []

    assert telegram_outbox_drain(run_sec=1.0) == 1
    telegram_outbox_push([alert.id])  # e.g. a crash before the removal, or a repeated push
    assert telegram_outbox_drain(run_sec=1.0) == 0
    assert telegram_outbox_size() == 0 and len(bot.received) == 1


@pytest.mark.django_db
def test_a_new_alert_goes_to_the_outbox_not_to_a_task(telegram):
    bot = telegram()
    alert = make_alert(7)
    alert_delivery_queue(alert.id)
    alert_delivery_queue(alert.id)
    key = f"volspike:channel:{{{bot.channel.pk}}}:outbox"
    assert get_redis().zrange(key, 0, -1) == [f"alert:{alert.id}"]


@pytest.mark.django_db
def test_alerts_queued_for_telegram_before_channels_are_sent_after_the_upgrade(telegram):
    """The outbox of before channels (one per chat, bare ids) is adopted at worker start."""
    older = [make_alert(i) for i in range(2)]
    get_redis().zadd("volspike:telegram:{-1001}:outbox", {str(a.id): a.id for a in older})
    bot = telegram()  # the settings' channel is kept in step, as at a worker's start
    new = make_alert(5)
    alert_delivery_queue(new.id)
    assert get_redis().exists("volspike:telegram:{-1001}:outbox") == 0
    drain_until_empty(None, 10)
    assert bot.delivered_symbols() == [a.symbol for a in [*older, new]]


@pytest.mark.django_db
def test_the_test_alert_reaches_every_channel_and_is_not_stored(telegram, fake_http, settings):
    bot = telegram()
    hook = fake_http()  # any HTTP endpoint will do as the webhook
    settings.ALERT_WEBHOOK_URL = f"{hook.url}/hooks/oi"
    channels_sync_from_settings()
    results = channels_send_test()
    assert [(r.channel, r.ok) for r in results] == [
        ("telegram (settings)", True),
        ("webhook (settings)", True),
    ]
    (text,) = bot.delivered_texts()
    assert text.startswith("🧪 TEST ALERT")
    assert "https://www.tradingview.com/chart/?symbol=BINANCE:BTCUSDT.P" in text
    ((_, path, payload, _),) = hook.received
    assert (path, payload["test"], payload["symbol"]) == ("/hooks/oi", True, "BTCUSDT")
    assert channels_send_test([the_chat()])[0].ok
    assert bot.times[1] - bot.times[0] >= 1.0  # the second waited for its slot
    assert not OpenInterestAlert.objects.exists()


@pytest.mark.django_db
def test_no_channel_no_test_alert(settings):
    settings.ALERT_WEBHOOK_URL = settings.TELEGRAM_BOT_TOKEN = settings.TELEGRAM_CHAT_ID = ""
    assert channels_sync_from_settings() == []
    assert channels_send_test() == []


@pytest.mark.integration
def test_beat_and_real_workers_deliver_new_alerts_through_the_outbox(
    telegram, settings, writer_client, celery_processes
):
    bot = telegram()
    env = {
        "TELEGRAM_API_URL": bot.url,
        "TELEGRAM_BOT_TOKEN": "123:abc",
        "TELEGRAM_CHAT_ID": "-1001",
    }
    celery_processes.start_worker(concurrency=2, **env)  # two senders race for the lease
    celery_processes.start_beat(**env)
    symbols = [f"T{i:03d}USDT" for i in range(8)]
    for symbol in symbols:
        alert = {
            "symbol": symbol, "direction": "UP", "baseline": 1000, "current": 1200,
            "pctChange": 0.2, "absChange": 200, "timestamp": "2025-12-01T12:00:00Z",
            "source": "ingest",
        }  # fmt: skip
        response = writer_client.post("/api/open-interest-alerts/ingest", alert, format="json")
        assert response.status_code == 200, response.content
    deadline = time.monotonic() + 25
    while time.monotonic() < deadline and len(bot.delivered_symbols()) < len(symbols):
        time.sleep(0.2)
    assert sorted(bot.delivered_symbols()) == symbols
    assert_within_limits(bot.times, interval=1.0, per=20, window=60.0)
    # the sender records a delivery after the Bot API's answer: give it a moment on a busy machine
    wait_until(
        lambda: (
            AlertDelivery.objects.filter(channel__kind=ChannelKind.TELEGRAM, delivered=True).count()
            == len(symbols)
        ),
        10,
        "the deliveries were not recorded",
    )


@pytest.mark.django_db
def test_several_rules_on_one_move_go_out_as_one_message_listing_them(telegram):
    """Issue 20: an injected jump that four rules alert on sent four messages a second apart."""
    bot = telegram()
    move = [
        OpenInterestAlert.objects.create(
            **{**alert_fields(2), "rule_name": rule, "window_sec": window,
               "pct_change": Decimal(pct)}
        )
        for rule, window, pct in [("oi-5m-3pct", 300, "0.11"), ("oi-15m-7pct", 900, "0.12"),
                                  ("oi-1h-12pct", 3600, "0.125"),
                                  ("design-median-30-60m-5pct", 1800, "0.10")]
    ]  # fmt: skip
    other = make_alert(4)  # another symbol, at the same time: a message of its own
    telegram_outbox_push([a.id for a in move] + [other.id])

    drain_until_empty(None, 10)

    texts = [body["text"] for _, _, body, _ in bot.received]
    assert len(texts) == 2, texts
    assert texts[0].startswith("📈 T002USDT open interest spike +12.50%")
    assert ("4 rules: oi-5m-3pct (5 min) +11.00%, oi-15m-7pct (15 min) +12.00%, "
            "oi-1h-12pct (1 h) +12.50%, design-median-30-60m-5pct (30 min) +10.00%") in texts[0]  # fmt: skip
    assert texts[1].startswith("📈 T004USDT")
    delivered = AlertDelivery.objects.filter(delivered=True).values_list("alert_id", flat=True)
    assert sorted(delivered) == sorted([a.id for a in move] + [other.id])


@pytest.mark.django_db
def test_several_chats_each_get_their_alerts_within_their_own_limit(telegram):
    bot = telegram()
    desk = channel_create(
        name="desk", kind=ChannelKind.TELEGRAM, bot_token="123:abc", telegram_chat_id="-2002",
        symbols=["T000USDT", "T002USDT"],
    )  # fmt: skip
    alerts = [make_alert(i) for i in (0, 2)]
    for alert in alerts:
        alert_delivery_queue(alert.id)
    for channel in (bot.channel, desk):
        channel_outbox_drain(channel.pk, run_sec=3)
    by_chat = {}
    for received in bot.received:
        by_chat.setdefault(received.body["chat_id"], []).append(received.at)
    assert {chat: len(times) for chat, times in by_chat.items()} == {"-1001": 2, "-2002": 2}
    assert by_chat["-2002"][0] - by_chat["-1001"][1] < 1.0  # another chat, another limit
    assert all(b - a >= 1.0 - 0.005 for a, b in itertools.pairwise(by_chat["-2002"]))
