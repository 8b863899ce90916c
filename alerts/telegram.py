"""Telegram delivery: an outbox in Redis drained by one sender within each chat's rate limits.

Telegram allows about one message per second per chat and 20 per minute per group. Alerts are
never sent from the detection path and never one Celery task each: ``telegram_outbox_push``
adds alert ids to the chat's outbox (a sorted set scored by alert id, so oldest first and a
repeated push is a no-op), and ``telegram_outbox_drain`` (the beat task, under a Redis lease so
one sender runs at a time) sends them. When more alerts wait than the limits let through one by
one, the next message is a digest of up to ``digest_max`` of them.

Nothing is dropped: an alert leaves the outbox only after Telegram answered 2xx for the message
that carried it. A crash between that answer and the removal sends it once more (at least once).

The limiter is one Lua script on the Redis clock, shared by every process: a chat's pause
(after a 429's ``retry_after`` or a failure), the minimum interval between messages, and a
rolling-window log of send times. Slots are booked before sending and moved to the time the
answer came back, so Telegram never sees two messages closer than the interval.
"""

import logging
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

import redis
import requests
from django.conf import settings
from django.db.models import F
from django.utils import timezone

from alerts.models import AlertDelivery, DeliveryChannel, OpenInterestAlert
from alerts.services import symbol_links
from common.locks import redis_lease
from common.redaction import redact
from common.redis import get_redis

logger = logging.getLogger(__name__)

MESSAGE_MAX_CHARS = 4096
SENDER_LEASE_KEY = "volspike:telegram:sender"
SENDER_RUN_SEC = 15.0  # one drain's budget; beat starts the next one every ~2 s
SENDER_LEASE_SEC = 45.0  # longer than the task's hard time limit
FAILURE_BACKOFF_MAX_SEC = 60.0
HTTP_TIMEOUT = (3, 10)

# KEYS: 1 pause-until (µs), 2 last send (µs), 3 send log (zset: token -> µs)
# ARGV: 1 interval (µs), 2 messages per window, 3 window (µs), 4 longest acceptable wait (µs),
#       5 token
# Returns {granted, wait_us, left}: granted books a slot wait_us from now, after which `left`
# more messages fit in the window; refused (nothing booked): the earliest slot is wait_us away.
ACQUIRE_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval, per, window = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', '(' .. string.format('%.0f', now - window))
local at = now
local pause = tonumber(redis.call('GET', KEYS[1]) or '0')
if pause > at then at = pause end
local last = tonumber(redis.call('GET', KEYS[2]) or '0')
if last + interval > at then at = last + interval end
local count = redis.call('ZCARD', KEYS[3])
if count >= per then
  local entry = redis.call('ZRANGE', KEYS[3], count - per, count - per, 'WITHSCORES')
  local leaves = tonumber(entry[2]) + window
  if leaves > at then at = leaves end
end
at = math.ceil(at)
if at - now > tonumber(ARGV[4]) then return {0, at - now, 0} end
local ttl_ms = math.ceil((at - now + window) / 1000) + 1000
redis.call('SET', KEYS[2], string.format('%.0f', at), 'PX', ttl_ms)
redis.call('ZADD', KEYS[3], string.format('%.0f', at), ARGV[5])
redis.call('PEXPIRE', KEYS[3], ttl_ms)
local in_window = redis.call('ZCOUNT', KEYS[3], '(' .. string.format('%.0f', at - window), '+inf')
return {1, at - now, per - in_window}
"""

# KEYS: 1 last send (µs), 2 send log. ARGV: 1 token, 2 window (µs).
# Moves a booked slot to now (when the answer came back), never earlier.
CONFIRM_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local ttl_ms = math.ceil(tonumber(ARGV[2]) / 1000) + 1000
if now > tonumber(redis.call('GET', KEYS[1]) or '0') then
  redis.call('SET', KEYS[1], string.format('%.0f', now), 'PX', ttl_ms)
end
local booked = redis.call('ZSCORE', KEYS[2], ARGV[1])
if booked and now > tonumber(booked) then
  redis.call('ZADD', KEYS[2], string.format('%.0f', now), ARGV[1])
  redis.call('PEXPIRE', KEYS[2], ttl_ms)
end
return 1
"""

# KEYS: 1 pause-until (µs), 2 reason. ARGV: 1 seconds, 2 reason. A pause is never shortened.
PAUSE_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local target = math.ceil(now + tonumber(ARGV[1]) * 1000000)
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
if current >= target then return current end
local ttl_ms = math.ceil((target - now) / 1000) + 1000
redis.call('SET', KEYS[1], string.format('%.0f', target), 'PX', ttl_ms)
redis.call('SET', KEYS[2], ARGV[2], 'PX', ttl_ms)
return target
"""


@dataclass(frozen=True)
class ChatLimits:
    """Per-chat limits: `per_sec` messages a second and `per_min` in any rolling `window_sec`.
    More than `digest_after` waiting (or more than the window's allowance) makes a digest of at
    most `digest_max` alerts."""

    per_sec: float = 1.0
    per_min: int = 20
    window_sec: float = 60.0
    digest_after: int = 5
    digest_max: int = 25

    def __post_init__(self) -> None:
        if self.per_sec <= 0 or self.per_min < 1 or self.window_sec <= 0 or self.digest_max < 1:
            raise ValueError("Telegram limits must be positive")

    @classmethod
    def from_settings(cls) -> "ChatLimits":
        return cls(
            per_sec=settings.TELEGRAM_MAX_PER_SEC,
            per_min=settings.TELEGRAM_MAX_PER_MIN,
            digest_after=settings.TELEGRAM_DIGEST_AFTER,
            digest_max=settings.TELEGRAM_DIGEST_MAX_ALERTS,
        )


@dataclass(frozen=True)
class Slot:
    granted: bool
    wait_sec: float
    left: int  # messages that still fit in the rolling window after this one
    token: str


@dataclass(frozen=True)
class SendResult:
    ok: bool
    detail: str
    retry_after: float | None = None


def telegram_configured() -> bool:
    return bool(settings.TELEGRAM_BOT_TOKEN and settings.TELEGRAM_CHAT_ID)


def _keys(chat_id: str) -> dict[str, str]:
    base = f"volspike:telegram:{{{chat_id}}}"
    return {
        "outbox": f"{base}:outbox",
        "pause_until": f"{base}:pause_until",
        "pause_reason": f"{base}:pause_reason",
        "last": f"{base}:last_sent",
        "log": f"{base}:sent_log",
        "failures": f"{base}:failures",
    }


class ChatLimiter:
    """The shared send limiter of one chat (all processes agree through Redis)."""

    def __init__(self, client: redis.Redis, chat_id: str, limits: ChatLimits) -> None:
        self.redis = client
        self.limits = limits
        self.keys = _keys(chat_id)
        self._acquire = client.register_script(ACQUIRE_LUA)
        self._confirm = client.register_script(CONFIRM_LUA)
        self._pause = client.register_script(PAUSE_LUA)

    def acquire(self, max_wait_sec: float) -> Slot:
        """Book the chat's next send slot if it is at most `max_wait_sec` away."""
        token = secrets.token_hex(8)
        granted, wait_us, left = self._acquire(
            keys=[self.keys["pause_until"], self.keys["last"], self.keys["log"]],
            args=[
                repr(1e6 / self.limits.per_sec),
                self.limits.per_min,
                repr(self.limits.window_sec * 1e6),
                repr(max(max_wait_sec, 0.0) * 1e6),
                token,
            ],
        )
        return Slot(bool(granted), int(wait_us) / 1e6, int(left), token)

    def wait_for_slot(self, max_wait_sec: float) -> Slot:
        slot = self.acquire(max_wait_sec)
        if slot.granted and slot.wait_sec > 0:
            time.sleep(slot.wait_sec)
        return slot

    def confirm(self, slot: Slot) -> None:
        """Count the booked message from now (its answer came back) rather than its slot."""
        self._confirm(
            keys=[self.keys["last"], self.keys["log"]],
            args=[slot.token, repr(self.limits.window_sec * 1e6)],
        )

    def pause(self, seconds: float, reason: str) -> None:
        self._pause(
            keys=[self.keys["pause_until"], self.keys["pause_reason"]], args=[repr(seconds), reason]
        )

    def failed(self, reason: str) -> float:
        """Pause after a failure: 1 s, doubling with each failure in a row, up to a minute."""
        failures = self.redis.incr(self.keys["failures"])
        self.redis.expire(self.keys["failures"], 600)
        seconds = min(2.0 ** (failures - 1), FAILURE_BACKOFF_MAX_SEC)
        self.pause(seconds, reason)
        return seconds

    def succeeded(self) -> None:
        self.redis.delete(self.keys["failures"])


def telegram_outbox_push(alert_ids: Sequence[int]) -> None:
    """Queue alerts for the configured chat (a repeated push is a no-op)."""
    if not alert_ids or not telegram_configured():
        return
    outbox = _keys(settings.TELEGRAM_CHAT_ID)["outbox"]
    get_redis().zadd(outbox, {str(i): i for i in alert_ids}, nx=True)


def telegram_outbox_size() -> int:
    return get_redis().zcard(_keys(settings.TELEGRAM_CHAT_ID)["outbox"])


def telegram_outbox_drain(
    *, run_sec: float = SENDER_RUN_SEC, limits: ChatLimits | None = None
) -> int:
    """Send what waits in the outbox for up to `run_sec`, within the chat's limits; returns the
    messages sent. Does nothing while another sender holds the lease."""
    if not telegram_configured():
        return 0
    client = get_redis()
    limiter = ChatLimiter(client, settings.TELEGRAM_CHAT_ID, limits or ChatLimits.from_settings())
    outbox = limiter.keys["outbox"]
    sent = 0
    with redis_lease(client, SENDER_LEASE_KEY, ttl_sec=SENDER_LEASE_SEC) as held:
        if not held:
            return 0
        deadline = time.monotonic() + run_sec
        while time.monotonic() < deadline and client.zcard(outbox):
            slot = limiter.wait_for_slot(deadline - time.monotonic())
            if not slot.granted:
                break
            sent += _send_next(limiter, slot)
    return sent


def _send_next(limiter: ChatLimiter, slot: Slot) -> int:
    """Send the oldest waiting alert, or a digest of the oldest ones, in the booked slot."""
    limits = limiter.limits
    outbox = limiter.keys["outbox"]
    alerts = _waiting_alerts(limiter, limits.digest_max)
    if not alerts:
        return 0
    waiting = limiter.redis.zcard(outbox)
    if len(alerts) == 1 or (waiting <= limits.digest_after and waiting - 1 <= slot.left):
        carried, text = alerts[:1], alert_text(alerts[0])
    else:
        text, carried = _digest(alerts, waiting)
    ids = [a.id for a in carried]
    result = _telegram_post(text)
    limiter.confirm(slot)
    if result.ok:
        _record_attempt(ids, error="")
        limiter.redis.zrem(outbox, *map(str, ids))
        limiter.succeeded()
        return 1
    _record_attempt(ids, error=result.detail)
    if result.retry_after is not None:
        limiter.pause(result.retry_after, "429")
        pause = result.retry_after
    else:
        pause = limiter.failed(result.detail[:200])
    logger.warning(
        "telegram send failed; alerts stay queued",
        extra={"alert_ids": ids, "cause": result.detail, "pause_sec": pause},
    )
    return 0


def _waiting_alerts(limiter: ChatLimiter, count: int) -> list[OpenInterestAlert]:
    """The oldest waiting alerts; ids of deleted or already delivered alerts leave the outbox."""
    outbox = limiter.keys["outbox"]
    ids = [int(i) for i in limiter.redis.zrange(outbox, 0, count - 1)]
    found = OpenInterestAlert.objects.in_bulk(ids)
    done = set(
        AlertDelivery.objects.filter(
            alert_id__in=ids, channel=DeliveryChannel.TELEGRAM, delivered=True
        ).values_list("alert_id", flat=True)
    )
    gone = [i for i in ids if i not in found or i in done]
    if gone:
        limiter.redis.zrem(outbox, *map(str, gone))
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
    limiter = ChatLimiter(get_redis(), settings.TELEGRAM_CHAT_ID, ChatLimits.from_settings())
    slot = limiter.wait_for_slot(max_wait_sec)
    if not slot.granted:
        return SendResult(False, f"chat rate-limited for another {slot.wait_sec:.1f} s")
    result = _telegram_post(text)
    limiter.confirm(slot)
    if result.retry_after is not None:
        limiter.pause(result.retry_after, "429")
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


# --- Message texts ---------------------------------------------------------------------------


def alert_text(alert: OpenInterestAlert, *, title: str = "") -> str:
    """One alert as a plain-text Telegram message; context that is not known is left out."""
    arrow = _arrow(alert)
    kind = "spike" if alert.direction == "UP" else "dump"
    lines = [f"{title}{arrow} {alert.symbol} open interest {kind} {_pct(alert.pct_change)}"]
    if alert.rule_name:
        window = f", {_window(alert.window_sec)} window" if alert.window_sec else ""
        lines.append(f"Rule {alert.rule_name}{window}")
    elif alert.window_sec:
        lines.append(f"{_window(alert.window_sec)} window")
    lines.append(
        f"OI {alert.baseline:,.0f} → {alert.current:,.0f} contracts ({alert.abs_change:+,.0f})"
    )
    if alert.oi_usd_before is not None and alert.oi_usd_after is not None:
        lines.append(f"OI {_usd(alert.oi_usd_before)} → {_usd(alert.oi_usd_after)}")
    if alert.price_change_pct is not None:
        over = " over the window" if alert.window_sec else ""
        mark = f" (mark {_price(alert.mark_price)})" if alert.mark_price is not None else ""
        lines.append(f"Price {_pct(alert.price_change_pct)}{over}{mark}")
    elif alert.mark_price is not None:
        lines.append(f"Mark price {_price(alert.mark_price)}")
    if alert.funding_rate is not None:
        lines.append(f"Funding {_pct(alert.funding_rate, 4)}")
    if alert.quote_volume_24h is not None:
        lines.append(f"24h volume {_usd(alert.quote_volume_24h)}")
    if alert.alerts_24h is not None:
        lines.append(f"{alert.alerts_24h} alert{'s' if alert.alerts_24h != 1 else ''} in 24 h")
    lines.append(f"{alert.ts:%Y-%m-%d %H:%M:%S} UTC")
    links = symbol_links(alert.symbol)
    lines.append(f"Binance: {links['binance']}")
    lines.append(f"TradingView: {links['tradingview']}")
    return "\n".join(lines)


def digest_text(alerts: Sequence[OpenInterestAlert]) -> str:
    """Several alerts in one message, one line each; lines beyond Telegram's 4096 characters
    are left out (and counted in the last line)."""
    return _digest(alerts, len(alerts))[0]


def _digest(
    alerts: Sequence[OpenInterestAlert], waiting: int
) -> tuple[str, list[OpenInterestAlert]]:
    """The digest text and the alerts it carries (a prefix of `alerts` that fits)."""
    carried: list[OpenInterestAlert] = []
    lines: list[str] = []
    size = 200  # room for the header and the last line
    for alert in alerts:
        line = _digest_line(alert)
        if carried and size + len(line) + 1 > MESSAGE_MAX_CHARS:
            break
        carried.append(alert)
        lines.append(line)
        size += len(line) + 1
    header = f"⚡ {len(carried)} open interest alerts (digest, rate limit)"
    rest = waiting - len(carried)
    footer = [f"… {rest} more queued, next message" if rest > 0 else ""]
    text = "\n".join([header, *lines, *footer]).rstrip("\n")
    return text[:MESSAGE_MAX_CHARS], carried


def _digest_line(alert: OpenInterestAlert) -> str:
    parts = [f"{_arrow(alert)} {alert.symbol}"]
    if alert.rule_name or alert.window_sec:
        rule = alert.rule_name or "window"
        parts.append(f"{rule}/{_window(alert.window_sec)}" if alert.window_sec else rule)
    parts.append(f"OI {_pct(alert.pct_change)}")
    if alert.price_change_pct is not None:
        parts.append(f"price {_pct(alert.price_change_pct)}")
    parts.append(f"{alert.ts:%H:%M:%S}")
    return " · ".join(parts)


def _arrow(alert: OpenInterestAlert) -> str:
    return "📈" if alert.direction == "UP" else "📉"


def _pct(fraction: Decimal | float, digits: int = 2) -> str:
    return f"{float(fraction) * 100:+.{digits}f}%"


def _window(seconds: int | None) -> str:
    if not seconds:
        return ""
    if seconds % 3600 == 0:
        return f"{seconds // 3600}h"
    if seconds % 60 == 0:
        return f"{seconds // 60}m"
    return f"{seconds}s"


def _usd(value: Decimal | float) -> str:
    amount = float(value)
    for limit, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "K")):
        if abs(amount) >= limit:
            return f"${amount / limit:,.1f}{suffix}"
    return f"${amount:,.0f}"


def _price(value: Decimal | float) -> str:
    return f"{float(value):,.{_price_digits(float(value))}f}"


def _price_digits(value: float) -> int:
    magnitude = abs(value)
    if magnitude >= 1000:
        return 2
    if magnitude >= 1:
        return 4
    return 6
