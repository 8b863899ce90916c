"""Telegram delivery: an outbox in Redis drained by one sender within each chat's rate limits.

Alerts are never sent from the detection path and never one Celery task each:
``telegram_outbox_push`` adds alert ids to the chat's outbox (``outbox.Outbox``), and
``telegram_outbox_drain`` (the beat task ``alerts.telegram_send``, under a Redis lease so one
sender runs at a time) sends them through the chat's shared limiter (``limiter.ChatLimiter``).
When more alerts wait than the limits let through one by one, the next message is a digest
(``limiter.plan_next``, ``text.digest``).

Nothing is dropped: an alert leaves the outbox only after Telegram answered 2xx for the message
that carried it. This module holds what touches settings, Postgres and HTTP: the Bot API call
and the delivery rows (``AlertDelivery``) the admin shows.
"""

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass

import requests
from django.conf import settings
from django.db.models import F
from django.utils import timezone

from alerts.models import AlertDelivery, DeliveryChannel, OpenInterestAlert
from alerts.telegram.limiter import ChatLimiter, ChatLimits, MessageKind, Slot, plan_next
from alerts.telegram.outbox import Outbox
from alerts.telegram.text import digest, move_text, same_move
from common.locks import redis_lease
from common.redaction import redact
from common.redis import get_redis

logger = logging.getLogger(__name__)

SENDER_LEASE_KEY = "volspike:telegram:sender"
SENDER_RUN_SEC = 15.0  # one drain's budget; beat starts the next one every ~2 s
SENDER_LEASE_SEC = 45.0  # longer than the task's hard time limit
HTTP_TIMEOUT = (3, 10)
PAUSE_REASON_429 = "429"


@dataclass(frozen=True)
class SendResult:
    ok: bool
    detail: str
    retry_after: float | None = None


def telegram_configured() -> bool:
    return bool(settings.TELEGRAM_BOT_TOKEN and settings.TELEGRAM_CHAT_ID)


def chat_limits_from_settings() -> ChatLimits:
    return ChatLimits(
        per_sec=settings.TELEGRAM_MAX_PER_SEC,
        per_min=settings.TELEGRAM_MAX_PER_MIN,
        digest_after=settings.TELEGRAM_DIGEST_AFTER,
        digest_max=settings.TELEGRAM_DIGEST_MAX_ALERTS,
    )


def _outbox() -> Outbox:
    return Outbox(get_redis(), settings.TELEGRAM_CHAT_ID)


def telegram_outbox_push(alert_ids: Sequence[int]) -> None:
    """Queue alerts for the configured chat (a repeated push is a no-op)."""
    if alert_ids and telegram_configured():
        _outbox().push(alert_ids)


def telegram_outbox_size() -> int:
    return _outbox().size()


def telegram_outbox_drain(
    *, run_sec: float = SENDER_RUN_SEC, limits: ChatLimits | None = None
) -> int:
    """Send what waits in the outbox for up to `run_sec`, within the chat's limits; returns the
    messages sent. Does nothing while another sender holds the lease."""
    if not telegram_configured():
        return 0
    client = get_redis()
    limiter = ChatLimiter(client, settings.TELEGRAM_CHAT_ID, limits or chat_limits_from_settings())
    outbox = Outbox(client, settings.TELEGRAM_CHAT_ID)
    sent = 0
    with redis_lease(client, SENDER_LEASE_KEY, ttl_sec=SENDER_LEASE_SEC) as held:
        if not held:
            return 0
        deadline = time.monotonic() + run_sec
        while time.monotonic() < deadline and outbox.size():
            slot = limiter.wait_for_slot(deadline - time.monotonic())
            if not slot.granted:
                break
            sent += _send_next(limiter, outbox, slot)
    return sent


def _send_next(limiter: ChatLimiter, outbox: Outbox, slot: Slot) -> int:
    """Send the oldest waiting alert, or a digest of the oldest ones, in the booked slot."""
    alerts = _waiting_alerts(outbox, limiter.limits.digest_max)
    if not alerts:
        return 0
    waiting = outbox.size()
    kind = plan_next(
        fetched=len(alerts), waiting=waiting, slot_left=slot.left, limits=limiter.limits
    )
    if kind is MessageKind.SINGLE:
        carried = same_move(alerts)
        text = move_text(carried)
    else:
        text, carried = digest(alerts, waiting=waiting)
    ids = [a.id for a in carried]
    result = _telegram_post(text)
    limiter.confirm(slot)
    if result.ok:
        _record_attempt(ids, error="")
        outbox.remove(ids)
        limiter.succeeded()
        return 1
    _record_attempt(ids, error=result.detail)
    if result.retry_after is not None:
        limiter.pause(result.retry_after, PAUSE_REASON_429)
        pause = result.retry_after
    else:
        pause = limiter.failed(result.detail[:200])
    logger.warning(
        "telegram send failed; alerts stay queued",
        extra={"alert_ids": ids, "cause": result.detail, "pause_sec": pause},
    )
    return 0


def _waiting_alerts(outbox: Outbox, count: int) -> list[OpenInterestAlert]:
    """The oldest waiting alerts; ids of deleted or already delivered alerts leave the outbox."""
    ids = outbox.oldest(count)
    found = OpenInterestAlert.objects.in_bulk(ids)
    done = set(
        AlertDelivery.objects.filter(
            alert_id__in=ids, channel=DeliveryChannel.TELEGRAM, delivered=True
        ).values_list("alert_id", flat=True)
    )
    gone = [i for i in ids if i not in found or i in done]
    if gone:
        outbox.remove(gone)
        logger.info("outbox entries already delivered or deleted", extra={"alert_ids": gone})
    return [found[i] for i in ids if i in found and i not in done]


def _record_attempt(alert_ids: list[int], *, error: str) -> None:
    AlertDelivery.objects.bulk_create(
        [AlertDelivery(alert_id=i, channel=DeliveryChannel.TELEGRAM) for i in alert_ids],
        ignore_conflicts=True,
    )
    AlertDelivery.objects.filter(alert_id__in=alert_ids, channel=DeliveryChannel.TELEGRAM).update(
        attempts=F("attempts") + 1,
        delivered=not error,
        last_error=redact(error)[:1000],
        updated_at=timezone.now(),
    )


def telegram_send_now(text: str, *, max_wait_sec: float = 5.0) -> SendResult:
    """Send one message outside the outbox (the test alert), through the chat's limiter."""
    limiter = ChatLimiter(get_redis(), settings.TELEGRAM_CHAT_ID, chat_limits_from_settings())
    slot = limiter.wait_for_slot(max_wait_sec)
    if not slot.granted:
        return SendResult(False, f"chat rate-limited for another {slot.wait_sec:.1f} s")
    result = _telegram_post(text)
    limiter.confirm(slot)
    if result.retry_after is not None:
        limiter.pause(result.retry_after, PAUSE_REASON_429)
    return result


def _telegram_post(text: str) -> SendResult:
    url = f"{settings.TELEGRAM_API_URL}/bot{settings.TELEGRAM_BOT_TOKEN}/sendMessage"
    body = {"chat_id": settings.TELEGRAM_CHAT_ID, "text": text, "disable_web_page_preview": True}
    try:
        response = requests.post(url, json=body, timeout=HTTP_TIMEOUT)
    except requests.RequestException as exc:
        # the exception's text carries the URL, and so the bot token
        return SendResult(False, redact(f"{type(exc).__name__}: {exc}"))
    if response.status_code < 300:
        return SendResult(True, f"HTTP {response.status_code}")
    detail = redact(f"HTTP {response.status_code}: {response.text[:200]}")
    retry_after = None
    if response.status_code == 429:
        try:
            retry_after = float(response.json()["parameters"]["retry_after"])
        except (ValueError, KeyError, TypeError):
            retry_after = None
    return SendResult(False, detail, retry_after)
