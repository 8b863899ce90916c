"""Delivery channels: their writes, their outboxes and the senders that drain them.

Alerts are never sent from the detection path and never one Celery task each: after an alert is
stored, ``alert_delivery_queue`` adds it to the outbox of every enabled channel whose filters
let it through (``outbox.Outbox``, in Redis). The beat task ``alerts.channels_send`` runs
``channels_drain``: each channel is drained by one sender at a time (a Redis lease, renewed per
message) through the channel's shared limiter (``limiter.ChannelLimiter``). When more alerts
wait than the limits let through one by one, a chat platform gets a digest (``plan_next``);
a webhook gets one POST per alert, always.

Nothing is dropped: an entry leaves the outbox only after the platform accepted the message that
carried it. A sender killed after the platform accepted a message and before its delivery rows
were written sends that message once more: at most one duplicate message per kill (a digest's
alerts each at most once more), never a loss. A permanent failure (401/403/404, Discord's Unknown
Webhook, Slack's ``no_service``...) disables the channel with the reason; its outbox is kept for
when it is enabled again. System messages (``ops_message_send``) go through the same outboxes.
"""

import json
import logging
import random
import secrets
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from decimal import Decimal

import requests
from django.conf import settings
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from alerts.channels import discord, slack
from alerts.channels.answers import (
    Answer,
    Outcome,
    discord_answer,
    slack_answer,
    telegram_answer,
    webhook_answer,
)
from alerts.channels.limiter import (
    ChannelKey,
    ChannelLimiter,
    ChannelLimits,
    MessageKind,
    Slot,
    channel_key,
    plan_next,
)
from alerts.channels.outbox import Entry, EntryKind, Outbox, alert_entries
from alerts.channels.selectors import (
    channel_ids_to_drain,
    channels_for_alert,
    channels_for_liquidation_alert,
    channels_for_ops,
)
from alerts.formatting import alert_payload
from alerts.liquidation_texts import liquidation_alert_payload, liquidation_text
from alerts.models import (
    AlertChannel,
    AlertDelivery,
    AlertDirection,
    AlertSource,
    ChannelKind,
    LiquidationAlert,
    OpenInterestAlert,
    OpsMessage,
)
from alerts.telegram.text import TEST_TITLE, digest, move_text, ops_text, same_move
from alerts.webhook_signing import webhook_headers
from common.formatting import iso_z
from common.redaction import redact, secrets_register
from common.redis import get_redis

logger = logging.getLogger(__name__)

SENDER_RUN_SEC = 15.0  # one drain's budget; beat starts the next one every ~2 s
SLOT_WAIT_MAX_SEC = 5.0  # the longest a sender sleeps for one slot (it renews its lease after)
LEASE_MARGIN_SEC = 2.0
HTTP_CONNECT_TIMEOUT_SEC = 3.0
TEST_SLOT_WAIT_SEC = 5.0
# The channels the TELEGRAM_* and ALERT_WEBHOOK_* settings keep (migration 0005 names them too).
SETTINGS_TELEGRAM_NAME = "telegram (settings)"
SETTINGS_WEBHOOK_NAME = "webhook (settings)"
LEGACY_TELEGRAM_OUTBOX = "volspike:telegram:{{{chat_id}}}:outbox"

# Discord: 5 requests per 2 s per webhook (its headers say so; they are honoured too). Slack:
# about one message a second per incoming webhook. A generic webhook: one POST per alert.
DISCORD_LIMITS = ChannelLimits(per_sec=2.5, per_min=5, window_sec=2.0)
SLACK_LIMITS = ChannelLimits(per_sec=1.0, per_min=60, window_sec=60.0)
WEBHOOK_LIMITS = ChannelLimits(per_sec=10.0, per_min=600, window_sec=60.0, digest_after=None,
                               digest_max=1)  # fmt: skip

ANSWERS: dict[str, Callable[[int, Mapping[str, str], str], Answer]] = {
    ChannelKind.TELEGRAM: telegram_answer,
    ChannelKind.DISCORD: discord_answer,
    ChannelKind.SLACK: slack_answer,
    ChannelKind.WEBHOOK: webhook_answer,
}


def channel_limits(kind: str) -> ChannelLimits:
    if kind == ChannelKind.TELEGRAM:
        return ChannelLimits(
            per_sec=settings.TELEGRAM_MAX_PER_SEC,
            per_min=settings.TELEGRAM_MAX_PER_MIN,
            digest_after=settings.TELEGRAM_DIGEST_AFTER,
            digest_max=settings.TELEGRAM_DIGEST_MAX_ALERTS,
        )
    return {
        ChannelKind.DISCORD: DISCORD_LIMITS,
        ChannelKind.SLACK: SLACK_LIMITS,
        ChannelKind.WEBHOOK: WEBHOOK_LIMITS,
    }[ChannelKind(kind)]


# --- Writes -------------------------------------------------------------------------------------


def channel_save(channel: AlertChannel, *, rules: Sequence | None = None) -> AlertChannel:
    """Validate (the model's ``clean``) and save; enabling a channel clears why it was disabled."""
    if channel.enabled:
        channel.disabled_reason, channel.disabled_at = "", None
    channel.full_clean(exclude=["rules"])
    with transaction.atomic():
        channel.save()
        if rules is not None:
            channel.rules.set(rules)
    secrets_register(channel.secret_values())
    return channel


def channel_create(*, rules: Sequence | None = None, **fields) -> AlertChannel:
    return channel_save(AlertChannel(**fields), rules=rules)


def channel_update(
    channel: AlertChannel, *, rules: Sequence | None = None, **fields
) -> AlertChannel:
    for name, value in fields.items():
        setattr(channel, name, value)
    return channel_save(channel, rules=rules)


def channel_delete(channel: AlertChannel) -> None:
    channel_id = channel.pk
    channel.delete()
    get_redis().delete(channel_key(channel_id, ChannelKey.OUTBOX))


def channel_disable(channel: AlertChannel, reason: str) -> None:
    """Stop sending to a channel that cannot take messages any more; the reason stays visible
    (admin, API) until someone enables it again. Its outbox is kept."""
    reason = redact(reason)[:1000]
    now = timezone.now()
    AlertChannel.objects.filter(pk=channel.pk).update(
        enabled=False, disabled_reason=reason, disabled_at=now, updated_at=now
    )
    channel.enabled, channel.disabled_reason, channel.disabled_at = False, reason, now
    logger.error(
        "delivery channel disabled after a permanent failure",
        extra={"channel": channel.name, "channel_id": channel.pk, "cause": reason},
    )


def channels_sync_from_settings() -> list[AlertChannel]:
    """Keep a channel for each of the TELEGRAM_* and ALERT_WEBHOOK_* settings, so installs that
    configure delivery by environment change nothing. Run at worker start and after migrate.
    A target that changed is saved (and re-enables a channel a permanent failure disabled); a
    channel whose setting was removed stays, as anyone may have edited it."""
    wanted = []
    if settings.TELEGRAM_BOT_TOKEN and settings.TELEGRAM_CHAT_ID:
        target = {"bot_token": settings.TELEGRAM_BOT_TOKEN,
                  "telegram_chat_id": str(settings.TELEGRAM_CHAT_ID)}  # fmt: skip
        wanted.append((SETTINGS_TELEGRAM_NAME, ChannelKind.TELEGRAM, target))
    if settings.ALERT_WEBHOOK_URL:
        target = {"url": settings.ALERT_WEBHOOK_URL,
                  "signing_secret": settings.ALERT_WEBHOOK_SECRET}  # fmt: skip
        wanted.append((SETTINGS_WEBHOOK_NAME, ChannelKind.WEBHOOK, target))
    synced = []
    for name, kind, target in wanted:
        channel = AlertChannel.objects.filter(name=name).first()
        changed = (
            channel is None
            or channel.kind != kind
            or any(getattr(channel, field) != value for field, value in target.items())
        )
        if channel is None:
            channel = AlertChannel(name=name, kind=kind, from_settings=True)
        if changed:
            channel.kind, channel.enabled, channel.from_settings = kind, True, True
            for field, value in target.items():
                setattr(channel, field, value)
            try:
                channel_save(channel)
            except Exception as exc:  # noqa: BLE001 - a bad setting must not stop a worker
                logger.error(
                    "delivery channel from settings refused",
                    extra={"channel": name, "cause": redact(str(exc))},
                )
                continue
        secrets_register(channel.secret_values())
        if kind == ChannelKind.TELEGRAM:
            legacy = LEGACY_TELEGRAM_OUTBOX.format(chat_id=channel.telegram_chat_id)
            moved = Outbox(get_redis(), channel.pk).adopt(legacy)
            if moved:
                logger.info("telegram outbox adopted", extra={"channel": name, "alerts": moved})
        synced.append(channel)
    return synced


# --- Queueing -----------------------------------------------------------------------------------


def alert_delivery_queue(alert_id: int) -> None:
    """Queue a new alert on every enabled channel whose filters let it through."""
    alert = OpenInterestAlert.objects.filter(pk=alert_id).first()
    if alert is None:
        return
    client = get_redis()
    for channel in channels_for_alert(alert):
        Outbox(client, channel.pk).push(alert_entries([alert_id]))


def liquidation_alert_delivery_queue(alert_id: int) -> None:
    """Queue a new liquidation-burst alert on every enabled channel whose filters let it
    through."""
    alert = LiquidationAlert.objects.filter(pk=alert_id).first()
    if alert is None:
        return
    client = get_redis()
    for channel in channels_for_liquidation_alert(alert):
        Outbox(client, channel.pk).push([Entry(EntryKind.LIQUIDATION, alert_id)])


def channel_queue_alerts(channel: AlertChannel, alert_ids: Sequence[int]) -> None:
    """Queue alerts on one channel (a repeated push is a no-op)."""
    Outbox(get_redis(), channel.pk).push(alert_entries(alert_ids))


def ops_message_send(*, dedup_key: str, title: str, text: str, recovered: bool) -> None:
    """Queue a system message on every enabled channel that receives ops messages. Deduplicated
    per `dedup_key`: a problem is told once until its recovery, and a recovery only after a
    problem. Stored in Postgres, so a channel that waits (rate limit, outage) loses nothing; if
    Redis cannot take it, it is forgotten (and logged), so the caller's next call tells it."""
    with transaction.atomic():
        with connection.cursor() as cursor:  # one decision per key at a time, across processes
            cursor.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [f"ops:{dedup_key}"])
        last = OpsMessage.objects.filter(dedup_key=dedup_key).order_by("-id").first()
        if (last is None and recovered) or (last is not None and last.recovered == recovered):
            return
        message = OpsMessage.objects.create(
            dedup_key=dedup_key, title=redact(title)[:200], text=redact(text), recovered=recovered
        )
        channel_ids = list(channels_for_ops().values_list("pk", flat=True))
        entry = Entry(EntryKind.OPS, message.pk)

        def push() -> None:
            try:
                client = get_redis()
                for channel_id in channel_ids:
                    Outbox(client, channel_id).push([entry])
            except Exception as exc:  # noqa: BLE001 - Redis down: forget it, to be told again
                # unqueued, the message must not count as told: the next call sends it
                OpsMessage.objects.filter(pk=message.pk).delete()
                logger.error(
                    "ops message not queued (Redis)",
                    extra={"dedup_key": dedup_key, "cause": redact(repr(exc))},
                )

        transaction.on_commit(push)
    logger.info(
        "ops message queued",
        extra={"dedup_key": dedup_key, "recovered": recovered, "channels": len(channel_ids)},
    )


# --- Sending ------------------------------------------------------------------------------------


@dataclass
class Outgoing:
    """The next message of a channel: what is posted and the outbox entries it carries; `plain`
    is its plain-text form (the first move alone) for a platform that refuses to render it."""

    payload: dict
    entries: list[Entry]
    alert_ids: list[int]
    plain: "Outgoing | None" = None


_EXTEND_LUA = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""
_RELEASE_LUA = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class _SenderLease:
    """One sender per channel at a time; renewed per message, so a killed sender frees the
    channel within one HTTP timeout plus a margin (not the whole drain's budget)."""

    def __init__(self, client, channel_id: int) -> None:
        self.redis = client
        self.key = channel_key(channel_id, ChannelKey.SENDER)
        self.token = secrets.token_hex(16)

    def acquire(self, seconds: float) -> bool:
        return bool(self.redis.set(self.key, self.token, nx=True, px=int(seconds * 1000)))

    def extend(self, seconds: float) -> bool:
        return bool(self.redis.eval(_EXTEND_LUA, 1, self.key, self.token, int(seconds * 1000)))

    def release(self) -> None:
        self.redis.eval(_RELEASE_LUA, 1, self.key, self.token)


def _http_seconds() -> float:
    return HTTP_CONNECT_TIMEOUT_SEC + settings.ALERT_CHANNEL_HTTP_TIMEOUT_SEC + LEASE_MARGIN_SEC


def channels_drain(*, run_sec: float = SENDER_RUN_SEC) -> int:
    """Drain every enabled channel with something waiting, in a random order (several runs at
    once share the work: a channel another sender holds is skipped); returns messages sent."""
    deadline = time.monotonic() + run_sec
    client = get_redis()
    ids = channel_ids_to_drain()
    random.shuffle(ids)
    sent = 0
    for channel_id in ids:
        if time.monotonic() >= deadline:
            break
        if client.zcard(channel_key(channel_id, ChannelKey.OUTBOX)):
            sent += channel_outbox_drain(channel_id, run_sec=deadline - time.monotonic())
    return sent


def channel_outbox_drain(
    channel_id: int, *, run_sec: float = SENDER_RUN_SEC, limits: ChannelLimits | None = None
) -> int:
    """Send what waits in one channel's outbox for up to `run_sec`, within its limits (its
    platform's, or `limits`); returns the messages sent. Does nothing while another sender holds
    the channel."""
    channel = AlertChannel.objects.filter(pk=channel_id, enabled=True).first()
    if channel is None:
        return 0
    secrets_register(channel.secret_values())
    client = get_redis()
    limiter = ChannelLimiter(
        client, channel.pk, channel_limits(channel.kind), platform=channel.kind
    )
    outbox = Outbox(client, channel.pk)
    lease = _SenderLease(client, channel.pk)
    if not lease.acquire(_http_seconds()):
        return 0
    sent = 0
    try:
        deadline = time.monotonic() + run_sec
        while time.monotonic() < deadline and outbox.size() and channel.enabled:
            wait = min(deadline - time.monotonic(), SLOT_WAIT_MAX_SEC)
            if not lease.extend(wait + _http_seconds()):
                break
            slot = limiter.wait_for_slot(wait)
            if not slot.granted:
                break  # paused or full for longer: a later run (beat, every ~2 s) goes on
            if not lease.extend(_http_seconds()):
                break
            sent += _send_next(channel, limiter, outbox, slot)
    finally:
        lease.release()
    return sent


def _send_next(channel: AlertChannel, limiter: ChannelLimiter, outbox: Outbox, slot: Slot) -> int:
    """Send the next message in the booked slot: a system message, one move, one alert
    (webhooks) or a digest of the oldest alerts."""
    outgoing = _next_message(channel, outbox, slot, limiter.limits)
    if outgoing is None:
        return 0
    answer = channel_post(channel, outgoing.payload)
    limiter.confirm(slot)
    if answer.outcome is Outcome.REFUSED and outgoing.plain is not None:
        logger.warning(
            "channel refused a message; sending it as plain text",
            extra={"channel": channel.name, "alert_ids": outgoing.alert_ids,
                   "cause": answer.detail},
        )  # fmt: skip
        _record_attempt(channel, outgoing.alert_ids, error=answer.detail)
        plain_slot = limiter.wait_for_slot(SLOT_WAIT_MAX_SEC)
        if not plain_slot.granted:
            return 0  # the next run tries again
        outgoing = outgoing.plain
        answer = channel_post(channel, outgoing.payload)
        limiter.confirm(plain_slot)
    _record_attempt(channel, outgoing.alert_ids, error="" if answer.ok else answer.detail)
    if answer.ok:
        outbox.remove(outgoing.entries)
        limiter.succeeded()
        if answer.bucket_empty_for:
            limiter.pause(answer.bucket_empty_for, "bucket empty")
        return 1
    if answer.outcome is Outcome.PERMANENT:
        channel_disable(channel, answer.detail)
        return 0
    if answer.outcome is Outcome.RATE_LIMITED:
        pause = answer.retry_after or 1.0
        limiter.pause(pause, "429", whole_platform=answer.whole_platform)
    else:
        pause = limiter.failed(answer.detail[:200])
    logger.warning(
        "channel send failed; the messages stay queued",
        extra={
            "channel": channel.name, "channel_id": channel.pk, "alert_ids": outgoing.alert_ids,
            "cause": answer.detail, "pause_sec": pause,
        },
    )  # fmt: skip
    return 0


def _next_message(
    channel: AlertChannel, outbox: Outbox, slot: Slot, limits: ChannelLimits
) -> Outgoing | None:
    entries = outbox.oldest(limits.digest_max)
    found = _resolve(channel, outbox, entries)
    entries = [e for e in entries if e.id in found[e.kind]]
    if not entries:
        return None
    first = entries[0]
    if first.kind is EntryKind.OPS:
        message = found[EntryKind.OPS][first.id]
        text = ops_text(message.title, message.text, recovered=message.recovered)
        return Outgoing(
            ops_payload(channel, message), [first], [], _plain(channel, text, [first], [])
        )
    if first.kind is EntryKind.LIQUIDATION:  # one message each, never in a digest
        burst = found[EntryKind.LIQUIDATION][first.id]
        return Outgoing(
            liquidation_payload(channel, burst),
            [first],
            [],
            _plain(channel, liquidation_text(burst), [first], []),
        )
    alerts = found[EntryKind.ALERT]
    leading: list[OpenInterestAlert] = []
    for entry in entries:
        if entry.kind is not EntryKind.ALERT:
            break
        leading.append(alerts[entry.id])
    waiting = outbox.size()
    kind = plan_next(fetched=len(leading), waiting=waiting, slot_left=slot.left, limits=limits)
    if channel.kind == ChannelKind.WEBHOOK:
        carried, payload = leading[:1], alert_payload(leading[0])
    elif kind is MessageKind.SINGLE:
        carried = same_move(leading)
        payload = move_payload(channel, carried)
    else:
        payload, carried = digest_payload(channel, leading, waiting=waiting)
    ids = [a.pk for a in carried]
    move = same_move(leading)
    move_ids = [a.pk for a in move]
    plain = _plain(channel, move_text(move), alert_entries(move_ids), move_ids)
    return Outgoing(payload, alert_entries(ids), ids, plain)


def _plain(
    channel: AlertChannel, text: str, entries: list[Entry], alert_ids: list[int]
) -> Outgoing | None:
    if channel.kind == ChannelKind.DISCORD:
        return Outgoing(discord.text_message(text), entries, alert_ids)
    if channel.kind == ChannelKind.SLACK:
        return Outgoing(slack.text_message(text), entries, alert_ids)
    return None  # Telegram's messages are plain text already; a webhook's are JSON


_ENTRY_MODELS = {
    EntryKind.ALERT: OpenInterestAlert,
    EntryKind.LIQUIDATION: LiquidationAlert,
    EntryKind.OPS: OpsMessage,
}


def _resolve(channel: AlertChannel, outbox: Outbox, entries: list[Entry]) -> dict[EntryKind, dict]:
    """What the entries name, per kind (id -> the stored alert or system message); entries of
    deleted alerts or messages, and of alerts already delivered on this channel, leave the
    outbox."""
    found: dict[EntryKind, dict] = {}
    for kind, model in _ENTRY_MODELS.items():
        ids = [e.id for e in entries if e.kind is kind]
        found[kind] = model.objects.in_bulk(ids) if ids else {}
    alerts = found[EntryKind.ALERT]
    alert_ids = list(alerts)
    done = set(
        AlertDelivery.objects.filter(
            alert_id__in=alert_ids, channel=channel, delivered=True
        ).values_list("alert_id", flat=True)
    ) if alert_ids else set()  # fmt: skip
    for alert_id in done:
        alerts.pop(alert_id, None)
    gone = [e for e in entries if e.id not in found[e.kind]]
    if gone:
        outbox.remove(gone)
        logger.info(
            "outbox entries already delivered or deleted",
            extra={"channel": channel.name, "entries": [e.member for e in gone]},
        )
    return found


def _record_attempt(channel: AlertChannel, alert_ids: list[int], *, error: str) -> None:
    if not alert_ids:
        return
    AlertDelivery.objects.bulk_create(
        [AlertDelivery(alert_id=i, channel=channel) for i in alert_ids], ignore_conflicts=True
    )
    AlertDelivery.objects.filter(alert_id__in=alert_ids, channel=channel).update(
        attempts=F("attempts") + 1,
        delivered=not error,
        last_error=redact(error)[:1000],
        updated_at=timezone.now(),
    )


# --- Messages per platform ----------------------------------------------------------------------


def _telegram(channel: AlertChannel, text: str) -> dict:
    return {"chat_id": channel.telegram_chat_id, "text": text, "disable_web_page_preview": True}


def move_payload(channel: AlertChannel, alerts: Sequence[OpenInterestAlert], *,
                 test: bool = False) -> dict:  # fmt: skip
    kind = channel.kind
    if kind == ChannelKind.TELEGRAM:
        return _telegram(channel, move_text(alerts, title=TEST_TITLE if test else ""))
    if kind == ChannelKind.DISCORD:
        return discord.move_message(alerts, test=test)
    if kind == ChannelKind.SLACK:
        return slack.move_message(alerts, test=test)
    payload = alert_payload(alerts[0])
    return {**payload, "test": True} if test else payload


def digest_payload(
    channel: AlertChannel, alerts: Sequence[OpenInterestAlert], *, waiting: int
) -> tuple[dict, list[OpenInterestAlert]]:
    if channel.kind == ChannelKind.DISCORD:
        return discord.digest_message(alerts, waiting=waiting)
    if channel.kind == ChannelKind.SLACK:
        return slack.digest_message(alerts, waiting=waiting)
    text, carried = digest(alerts, waiting=waiting)
    return _telegram(channel, text), carried


def liquidation_payload(channel: AlertChannel, alert: LiquidationAlert) -> dict:
    kind = channel.kind
    if kind == ChannelKind.TELEGRAM:
        return _telegram(channel, liquidation_text(alert))
    if kind == ChannelKind.DISCORD:
        return discord.liquidation_message(alert)
    if kind == ChannelKind.SLACK:
        return slack.liquidation_message(alert)
    return liquidation_alert_payload(alert)


def ops_payload(channel: AlertChannel, message: OpsMessage) -> dict:
    title, text, recovered = message.title, message.text, message.recovered
    if channel.kind == ChannelKind.TELEGRAM:
        return _telegram(channel, ops_text(title, text, recovered=recovered))
    if channel.kind == ChannelKind.DISCORD:
        return discord.ops_message(title, text, recovered=recovered)
    if channel.kind == ChannelKind.SLACK:
        return slack.ops_message(title, text, recovered=recovered)
    return {
        "type": "ops", "dedupKey": message.dedup_key, "title": title, "text": text,
        "recovered": recovered, "timestamp": iso_z(message.created_at),
    }  # fmt: skip


def channel_post(channel: AlertChannel, payload: dict) -> Answer:
    """POST one message to the channel's platform; the answer's detail carries no secret. A
    webhook's body is signed (``alerts.webhook_signing``) over the exact bytes sent."""
    secrets_register(channel.secret_values())
    if channel.kind == ChannelKind.TELEGRAM:
        url = f"{settings.TELEGRAM_API_URL}/bot{channel.bot_token}/sendMessage"
    else:
        url = channel.url
    body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
    headers = {"Content-Type": "application/json"}
    if channel.kind == ChannelKind.WEBHOOK and channel.signing_secret:
        headers.update(webhook_headers(channel.signing_secret, int(time.time()), body))
    timeout = (HTTP_CONNECT_TIMEOUT_SEC, settings.ALERT_CHANNEL_HTTP_TIMEOUT_SEC)
    try:
        response = requests.post(url, data=body, headers=headers, timeout=timeout)
    except requests.RequestException as exc:
        # the exception's text carries the URL, and so the bot token or the webhook's secret
        return Answer(Outcome.FAILED, redact(f"{type(exc).__name__}: {exc}"))
    lowered = {name.lower(): value for name, value in response.headers.items()}
    answer = ANSWERS[channel.kind](response.status_code, lowered, response.text)
    return replace(answer, detail=redact(answer.detail))


# --- Test messages ------------------------------------------------------------------------------


@dataclass(frozen=True)
class TestReport:
    channel: str
    ok: bool
    detail: str  # the platform's answer (status and body), or why nothing was sent


def channel_send_test(channel: AlertChannel) -> TestReport:
    """Send a marked test alert (stored nowhere) now, through the channel's limiter, and report
    the platform's answer. Works on a disabled channel too (to check it before enabling)."""
    limiter = ChannelLimiter(
        get_redis(), channel.pk, channel_limits(channel.kind), platform=channel.kind
    )
    slot = limiter.wait_for_slot(TEST_SLOT_WAIT_SEC)
    if not slot.granted:
        return TestReport(channel.name, False, f"rate-limited for another {slot.wait_sec:.1f} s")
    answer = channel_post(channel, move_payload(channel, [_test_alert()], test=True))
    limiter.confirm(slot)
    if answer.outcome is Outcome.RATE_LIMITED:
        limiter.pause(answer.retry_after or 1.0, "429", whole_platform=answer.whole_platform)
    detail = answer.detail
    if answer.outcome is Outcome.PERMANENT:
        detail += " (permanent: the target is gone or refuses this channel)"
    return TestReport(channel.name, answer.ok, detail)


def channels_send_test(channels: Sequence[AlertChannel] | None = None) -> list[TestReport]:
    """A test message on each of `channels` (every enabled channel by default)."""
    if channels is None:
        channels = list(AlertChannel.objects.filter(enabled=True).order_by("name"))
    return [channel_send_test(channel) for channel in channels]


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
