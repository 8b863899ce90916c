"""Delivery channels against local fake Discord, Slack and webhook servers (tests/fakes) over
real HTTP, with real Redis and Postgres: bursts become digests within each platform's limit and
every alert arrives; 429s are honoured; a deleted webhook disables its channel; filters route;
system messages; a sender killed mid-send redelivers (at least once, duplicates bounded); two
real workers keep one channel's limits."""

import itertools
import os
import signal
import time
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from alerts.channels.outbox import Entry, EntryKind, Outbox
from alerts.channels.services import (
    alert_delivery_queue,
    channel_create,
    channel_outbox_drain,
    channel_queue_alerts,
    channel_update,
    liquidation_alert_delivery_queue,
    ops_message_send,
)
from alerts.models import (
    AlertChannel,
    AlertDelivery,
    AlertRule,
    ChannelKind,
    LiquidationAlert,
    OpenInterestAlert,
    OpsMessage,
)
from common.redis import get_redis
from tests.fixtures.processes import process_tree_pids, wait_until
from tests.fixtures.telegram import SYMBOL, alert_fields


def make_alerts(count: int, start: int = 0) -> list[OpenInterestAlert]:
    return [
        OpenInterestAlert.objects.create(**alert_fields(i)) for i in range(start, start + count)
    ]


def outbox_size(channel: AlertChannel) -> int:
    return Outbox(get_redis(), channel.pk).size()


def drain_until_empty(channel: AlertChannel, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        channel_outbox_drain(channel.pk, run_sec=deadline - time.monotonic())
        if outbox_size(channel) == 0:
            return
        time.sleep(0.05)
    raise AssertionError(f"{channel.name}: {outbox_size(channel)} left after {timeout}s")


def symbols_in(texts: list[str]) -> list[str]:
    return [s for text in texts for s in sorted(set(SYMBOL.findall(text)))]


def discord_channel(fake, **fields) -> AlertChannel:
    return channel_create(name="discord", kind=ChannelKind.DISCORD, url=fake.url, **fields)


def slack_channel(fake, **fields) -> AlertChannel:
    return channel_create(name="slack", kind=ChannelKind.SLACK, url=fake.url, **fields)


@pytest.mark.django_db
def test_a_burst_to_discord_becomes_digests_within_its_limit_and_every_alert_arrives(
    chat_platforms, redis_client
):
    discord = chat_platforms.discord()
    channel = discord_channel(discord)
    alerts = make_alerts(40)
    channel_queue_alerts(channel, [a.id for a in alerts])

    drain_until_empty(channel, timeout=20)

    assert [r.status for r in discord.requests] == [204] * len(discord.requests)  # never a 429
    assert sorted(symbols_in(discord.embed_texts())) == sorted(a.symbol for a in alerts)
    titles = [body["embeds"][0]["title"] for body in discord.messages()]
    assert any(t.startswith("⚡") for t in titles), titles  # digests
    assert len(titles) < len(alerts)
    times = [r.at for r in discord.requests]
    assert all(times[i + 5] - times[i] >= 2.0 - 0.01 for i in range(len(times) - 5))
    rows = AlertDelivery.objects.filter(channel=channel)
    assert sorted(rows.values_list("alert_id", "delivered", "attempts")) == [
        (a.id, True, 1) for a in alerts
    ]


@pytest.mark.django_db
def test_a_discord_429_is_honoured_no_request_before_retry_after(chat_platforms, redis_client):
    discord = chat_platforms.discord()
    body = b'{"message": "You are being rate limited.", "retry_after": 0.75, "global": false}'
    discord.script = [(429, {"Content-Type": "application/json"}, body)]
    channel = discord_channel(discord)
    alerts = make_alerts(3)
    channel_queue_alerts(channel, [a.id for a in alerts])

    drain_until_empty(channel, timeout=10)

    statuses = [r.status for r in discord.requests]
    assert statuses == [429, 204, 204, 204]
    assert discord.requests[1].at - discord.requests[0].at >= 0.75
    assert sorted(symbols_in(discord.embed_texts())) == sorted(a.symbol for a in alerts)
    first = AlertDelivery.objects.get(alert=alerts[0], channel=channel)
    assert (first.delivered, first.attempts, first.last_error) == (True, 2, "")


@pytest.mark.django_db
def test_an_embed_discord_refuses_goes_out_as_plain_text_and_nothing_is_lost(
    chat_platforms, redis_client
):
    discord = chat_platforms.discord()
    invalid = b'{"code": 50035, "message": "Invalid Form Body", "errors": {}}'
    discord.script = [(400, {"Content-Type": "application/json"}, invalid)]
    channel = discord_channel(discord)
    alerts = make_alerts(2)
    channel_queue_alerts(channel, [a.id for a in alerts])
    drain_until_empty(channel, timeout=10)
    assert [r.status for r in discord.requests] == [400, 204, 204]
    plain = discord.requests[1].body
    assert "embeds" not in plain and plain["content"].startswith(f"📈 {alerts[0].symbol}")
    assert discord.requests[2].body["embeds"][0]["title"].split()[1] == alerts[1].symbol
    rows = AlertDelivery.objects.filter(channel=channel).order_by("alert_id")
    assert list(rows.values_list("delivered", "attempts")) == [(True, 2), (True, 1)]


@pytest.mark.django_db
def test_a_global_discord_429_holds_every_discord_channel(chat_platforms, redis_client):
    first, second = chat_platforms.discord(), chat_platforms.discord()
    body = b'{"message": "You are being rate limited.", "retry_after": 1.0, "global": true}'
    first.script = [(429, {"Content-Type": "application/json"}, body)]
    one = discord_channel(first)
    two = channel_create(name="discord 2", kind=ChannelKind.DISCORD, url=second.url)
    channel_queue_alerts(one, [make_alerts(1)[0].id])
    channel_outbox_drain(one.pk, run_sec=0.2)
    refused_at = first.requests[0].at
    channel_queue_alerts(two, [make_alerts(1, start=1)[0].id])
    drain_until_empty(two, timeout=5)
    assert second.requests[0].at - refused_at >= 1.0  # the other webhook waited too


@pytest.mark.django_db
def test_discords_rate_limit_headers_hold_the_next_request_until_the_bucket_refills(
    chat_platforms, redis_client
):
    """The bucket says 0 remaining for 1.5 s: the next message waits for it, not for our own
    (looser) estimate."""
    discord = chat_platforms.discord()
    headers = {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset-After": "1.5"}
    discord.script = [(204, headers, b"")]
    channel = discord_channel(discord)
    channel_queue_alerts(channel, [a.id for a in make_alerts(2)])
    drain_until_empty(channel, timeout=10)
    assert discord.requests[1].at - discord.requests[0].at >= 1.5


@pytest.mark.django_db
def test_a_deleted_discord_webhook_disables_the_channel_with_a_visible_reason(
    chat_platforms, redis_client, api_client
):
    discord = chat_platforms.discord()
    discord.deleted = True
    channel = discord_channel(discord)
    alerts = make_alerts(3)
    channel_queue_alerts(channel, [a.id for a in alerts])

    channel_outbox_drain(channel.pk, run_sec=2)
    channel_outbox_drain(channel.pk, run_sec=1)  # disabled: no call at all

    assert len(discord.requests) == 1
    channel.refresh_from_db()
    assert not channel.enabled and channel.disabled_at is not None
    assert "10015" in channel.disabled_reason and "Unknown Webhook" in channel.disabled_reason
    shown = api_client.get(f"/api/alert-channels/{channel.pk}").json()
    assert (shown["enabled"], shown["disabled_reason"]) == (False, channel.disabled_reason)
    assert outbox_size(channel) == 3  # kept for when it is enabled again
    row = AlertDelivery.objects.get(alert=alerts[0], channel=channel)
    assert row.last_error.startswith("HTTP 404") and not row.delivered

    discord.deleted = False  # e.g. the operator pasted a new webhook URL
    channel_update(channel, enabled=True)
    assert (channel.disabled_reason, channel.disabled_at) == ("", None)
    drain_until_empty(channel, timeout=10)
    assert sorted(symbols_in(discord.embed_texts())) == sorted(a.symbol for a in alerts)


@pytest.mark.django_db
def test_a_burst_to_slack_keeps_one_message_a_second_and_a_429_waits_its_retry_after(
    chat_platforms, redis_client
):
    slack = chat_platforms.slack()
    slack.script = [(429, {"Retry-After": "2"}, b"too_many_requests")]
    channel = slack_channel(slack)
    alerts = make_alerts(12)
    channel_queue_alerts(channel, [a.id for a in alerts])

    drain_until_empty(channel, timeout=20)

    statuses = [r.status for r in slack.requests]
    assert statuses[0] == 429 and set(statuses[1:]) == {200}
    times = [r.at for r in slack.requests]
    assert times[1] - times[0] >= 2.0
    assert all(b - a >= 0.99 for a, b in itertools.pairwise(times[1:]))
    texts = [
        "\n".join(block["text"]["text"] for block in r.body["blocks"] if "text" in block)
        for r in slack.accepted()
    ]
    assert sorted(symbols_in(texts)) == sorted(a.symbol for a in alerts)
    assert any(r.body["text"].startswith("⚡") for r in slack.accepted())  # a digest
    assert all(r.body["text"] for r in slack.accepted())  # the notification's fallback text


@pytest.mark.django_db
def test_a_removed_slack_hook_disables_the_channel(chat_platforms, redis_client):
    slack = chat_platforms.slack()
    slack.deleted = True
    channel = slack_channel(slack)
    channel_queue_alerts(channel, [make_alerts(1)[0].id])
    channel_outbox_drain(channel.pk, run_sec=1)
    channel.refresh_from_db()
    assert not channel.enabled and "no_service" in channel.disabled_reason
    assert "XXXXXXXX" not in channel.disabled_reason


@pytest.mark.django_db
def test_a_webhook_channel_gets_one_signed_post_per_alert_never_a_digest(
    chat_platforms, redis_client
):
    receiver = chat_platforms.webhook("whsec-0123456789abcdef")
    channel = channel_create(
        name="hook", kind=ChannelKind.WEBHOOK, url=receiver.url,
        signing_secret="whsec-0123456789abcdef",
    )  # fmt: skip
    alerts = make_alerts(12)
    channel_queue_alerts(channel, [a.id for a in alerts])
    drain_until_empty(channel, timeout=10)
    assert [r.status for r in receiver.requests] == [200] * 12  # each verified independently
    assert [r.body["id"] for r in receiver.requests] == [a.id for a in alerts]


@pytest.mark.django_db
def test_filters_route_each_alert_to_its_channels(redis_client):
    rule = AlertRule.objects.create(name="route-5m", window_sec=300, threshold_pct="0.03")
    other_rule = AlertRule.objects.create(name="route-1h", window_sec=3600, threshold_pct="0.1")
    hook = "http://127.0.0.1:9/hook"
    channel_create(name="every", kind=ChannelKind.WEBHOOK, url=hook)
    channel_create(name="rule", kind=ChannelKind.WEBHOOK, url=hook, rules=[rule])
    channel_create(name="btc", kind=ChannelKind.WEBHOOK, url=hook,
                               symbols=["BTCUSDT"])  # fmt: skip
    channel_create(name="dumps", kind=ChannelKind.WEBHOOK, url=hook, directions=["DOWN"])
    channel_create(name="flushes", kind=ChannelKind.WEBHOOK, url=hook, regimes=["long_flush"])
    channel_create(name="big", kind=ChannelKind.WEBHOOK, url=hook,
                         min_move_pct=Decimal("0.15"))  # fmt: skip
    channel_create(name="ops only", kind=ChannelKind.WEBHOOK, url=hook, receives_alerts=False,
                   receives_ops=True)  # fmt: skip
    channel_create(name="off", kind=ChannelKind.WEBHOOK, url=hook, enabled=False)

    def alert(symbol, direction, pct, rule_obj, regime):
        fields = {**alert_fields(0), "symbol": symbol, "direction": direction,
                  "pct_change": Decimal(pct), "rule": rule_obj, "regime": regime}  # fmt: skip
        return OpenInterestAlert.objects.create(**fields)

    btc_up = alert("BTCUSDT", "UP", "0.05", rule, "long_build")
    eth_down_big = alert("ETHUSDT", "DOWN", "-0.20", other_rule, "long_flush")
    for a in (btc_up, eth_down_big):
        alert_delivery_queue(a.id)

    def queued(channel):
        return {e.id for e in Outbox(get_redis(), channel.pk).oldest(100)}

    routed = {c.name: queued(c) for c in AlertChannel.objects.all()}
    assert routed == {
        "every": {btc_up.id, eth_down_big.id},
        "rule": {btc_up.id},
        "btc": {btc_up.id},
        "dumps": {eth_down_big.id},
        "flushes": {eth_down_big.id},
        "big": {eth_down_big.id},
        "ops only": set(),
        "off": set(),
    }


@pytest.mark.django_db(transaction=True)
def test_ops_messages_reach_the_channels_that_take_them_once_and_then_the_recovery(
    chat_platforms, redis_client
):
    discord, slack = chat_platforms.discord(), chat_platforms.slack()
    ops = discord_channel(discord, receives_ops=True, receives_alerts=False)
    quiet = slack_channel(slack)  # alerts only
    key = "poller:stalled"
    ops_message_send(dedup_key=key, title="Polling stalled", text="no poll for 45 s",
                     recovered=False)  # fmt: skip
    ops_message_send(
        dedup_key=key, title="Polling stalled", text="no poll for 60 s", recovered=False
    )  # fmt: skip  (the same trouble: told once)
    ops_message_send(dedup_key=key, title="Polling stalled", text="polling again",
                     recovered=True)  # fmt: skip
    ops_message_send(dedup_key="other", title="x", text="y", recovered=True)  # no trouble before
    drain_until_empty(ops, timeout=10)

    titles = [body["embeds"][0]["title"] for body in discord.messages()]
    assert titles == ["⚠️ Polling stalled", "✅ Recovered: Polling stalled"]
    assert discord.messages()[0]["embeds"][0]["description"] == "no poll for 45 s"
    assert outbox_size(quiet) == 0 and slack.requests == []
    assert not AlertDelivery.objects.exists()  # not alerts


@pytest.mark.integration
def test_a_sender_killed_mid_send_redelivers_with_at_most_one_duplicate_message(
    chat_platforms, celery_processes
):
    """The worker is killed after Discord accepted a message and before it saw the answer: that
    message is sent again (at least once); the bound: one duplicate message per kill."""
    from alerts.tasks import channels_send_task

    discord = chat_platforms.discord()
    discord.hang_next = 1  # the first message is accepted, and its answer never comes
    channel = discord_channel(discord)
    alerts = make_alerts(3)
    channel_queue_alerts(channel, [a.id for a in alerts])
    worker = celery_processes.start_worker(ALERT_CHANNEL_HTTP_TIMEOUT_SEC="3")
    channels_send_task.delay()
    wait_until(lambda: len(discord.requests) == 1, 15, "the worker never sent")
    for pid in process_tree_pids(worker.process.pid):
        os.kill(pid, signal.SIGKILL)
    worker.process.wait(10)

    drain_until_empty(channel, timeout=20)  # once the dead sender's lease (≤ 8 s) ran out

    symbols = symbols_in(discord.embed_texts())
    assert sorted(set(symbols)) == sorted(a.symbol for a in alerts)  # at least once each
    assert len(symbols) - len(set(symbols)) <= 1  # the one message in flight, sent again
    assert symbols.count(alerts[0].symbol) == 2
    assert AlertDelivery.objects.filter(channel=channel, delivered=True).count() == 3


@pytest.mark.integration
def test_two_real_workers_keep_one_discord_webhooks_limit(chat_platforms, celery_processes):
    discord = chat_platforms.discord()
    channel = discord_channel(discord)
    celery_processes.start_worker(concurrency=2)
    celery_processes.start_worker(concurrency=2)
    celery_processes.start_beat()
    alerts = make_alerts(30)
    for a in alerts:
        alert_delivery_queue(a.id)
    wait_until(lambda: outbox_size(channel) == 0, 30, "the outbox was not drained")
    assert {r.status for r in discord.requests} == {204}  # never a 429
    times = [r.at for r in discord.requests]
    assert all(times[i + 5] - times[i] >= 2.0 - 0.01 for i in range(len(times) - 5))
    symbols = symbols_in(discord.embed_texts())
    assert sorted(symbols) == sorted(a.symbol for a in alerts)  # each once


@pytest.mark.django_db
def test_an_ops_entry_between_alerts_goes_alone_and_in_order(chat_platforms, redis_client):
    discord = chat_platforms.discord()
    channel = discord_channel(discord, receives_ops=True)
    first, second = make_alerts(2)
    outbox = Outbox(get_redis(), channel.pk)
    channel_queue_alerts(channel, [first.id])
    ops_message_send(dedup_key="redis", title="Redis unreachable", text="from worker-1",
                     recovered=False)  # fmt: skip
    outbox.push([Entry(EntryKind.OPS, OpsMessage.objects.get().pk)])  # (no commit in this test)
    channel_queue_alerts(channel, [second.id])
    drain_until_empty(channel, timeout=10)
    titles = [body["embeds"][0]["title"] for body in discord.messages()]
    assert [t.split()[1] for t in titles] == [first.symbol, "Redis", second.symbol]


@pytest.mark.django_db
def test_a_liquidation_burst_reaches_discord_slack_and_telegram_as_one_message_each(
    chat_platforms, redis_client, telegram
):
    bot = telegram()
    discord_fake, slack_fake = chat_platforms.discord(), chat_platforms.slack()
    discord = discord_channel(discord_fake)
    slack = slack_channel(slack_fake)
    eth_only = channel_create(
        name="eth only", kind=ChannelKind.WEBHOOK, url=slack_fake.url, symbols=["ETHUSDT"]
    )
    burst = LiquidationAlert.objects.create(
        rule_name="liq-5m", symbol="BTCUSDT", side="short", window_sec=300,
        usd=Decimal("2400000"), count=41, other_side_usd=Decimal("35000"),
        threshold_usd=Decimal("1000000"), quote_volume_24h=Decimal("9000000000"),
        mark_price=Decimal("97000.5"), ts=datetime(2026, 12, 1, 12, 0, tzinfo=UTC),
    )  # fmt: skip
    liquidation_alert_delivery_queue(burst.id)
    assert outbox_size(eth_only) == 0  # its symbol filter keeps it out
    for channel in (discord, slack, bot.channel):
        drain_until_empty(channel, timeout=10)

    [embed] = discord_fake.accepted()[0].body["embeds"]
    assert embed["title"] == "💥 BTCUSDT: shorts liquidated ≥ $2.4M within 5 min"
    assert "41 liquidation orders; longs liquidated ≥ $35.0K" in embed["description"]
    assert "0.0267% of the 24 h volume ($9.0B)" in embed["description"]
    [message] = slack_fake.accepted()
    assert message.body["text"] == "💥 BTCUSDT: shorts liquidated ≥ $2.4M within 5 min"
    assert "Lower bounds" in message.body["blocks"][0]["text"]["text"]
    [text] = bot.delivered_texts()
    assert text.startswith("💥 BTCUSDT: shorts liquidated ≥ $2.4M within 5 min\n")
    assert "Rule liq-5m · 2026-12-01T12:00:00Z" in text
