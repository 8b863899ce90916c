"""Ops events reach the delivery channels marked for them (the default OPS_EVENT_SINKS), through
their outboxes, to a local Discord that behaves like the real one: one message when an incident
opens, each reminder, one recovery; channels that take alerts only hear nothing."""

import time
from datetime import timedelta

import pytest
from django.test import override_settings
from django.utils import timezone

from alerts.channels.services import channel_create
from alerts.models import ChannelKind
from common.redis import get_redis
from oi.models import SnapshotDeadLetter
from ops.services import ops_check_run, ops_memory_forget
from tests.alerts.test_channel_delivery import drain_until_empty, outbox_size
from tests.ops import support


@pytest.fixture(autouse=True)
def fresh(redis_client):
    ops_memory_forget()
    yield
    ops_memory_forget()
    get_redis.cache_clear()


@pytest.mark.django_db(transaction=True)
def test_an_incident_its_reminder_and_its_recovery_reach_the_ops_channel_once_each(
    chat_platforms,
):
    discord = chat_platforms.discord()
    slack = chat_platforms.slack()
    ops = channel_create(name="ops room", kind=ChannelKind.DISCORD, url=discord.url,
                         receives_ops=True, receives_alerts=False)  # fmt: skip
    alerts_only = channel_create(name="traders", kind=ChannelKind.SLACK, url=slack.url)
    support.dead_letter("long ago")
    SnapshotDeadLetter.objects.update(failed_at=timezone.now() - timedelta(hours=1))
    ops_check_run()  # the first check only looks back one period

    support.dead_letter("numeric field overflow")
    ops_check_run()
    ops_check_run()  # still open: nothing new
    support.dead_letter("numeric field overflow, again")
    with override_settings(OPS_REMINDER_SEC=0.05):
        time.sleep(0.1)
        ops_check_run()  # still happening, and the reminder is due
    with override_settings(OPS_DEAD_LETTER_QUIET_SEC=0):
        ops_check_run()  # quiet again: recovered
    drain_until_empty(ops, timeout=15)

    titles = [body["embeds"][0]["title"] for body in discord.messages()]
    assert titles == [
        "⚠️ Ops: dead-lettered snapshot batches",
        "⚠️ Ops, still: dead-lettered snapshot batches",
        "✅ Recovered: Ops: dead-lettered snapshot batches",
    ]
    assert "numeric field overflow" in discord.messages()[0]["embeds"][0]["description"]
    assert outbox_size(alerts_only) == 0 and slack.requests == []
