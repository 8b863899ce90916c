"""A channel's rate limits, shared by every process through Redis, and what to send next.

Each platform has its own limits (Telegram about one message per second per chat and 20 per
minute per group; a Discord webhook 5 requests per 2 s; a Slack incoming webhook about one
message per second). ``ChannelLimits`` holds such numbers and ``plan_next`` (pure) decides
whether the next message carries one move or a digest. ``ChannelLimiter`` keeps to the limits
for every process at once: one Lua script on the Redis clock books a channel's next send slot
against its pause (after a 429's retry-after, a rate-limit header saying the bucket is empty,
or a failure), the platform's pause (Discord's global 429), the minimum interval between
messages and a rolling-window log of send times. Slots are booked before sending and moved to the time the answer came back,
so Telegram never sees two messages closer than the interval. The Redis client is given, never
looked up: this module reads no settings.
"""

import secrets
import time
from dataclasses import dataclass
from enum import StrEnum

import redis

FAILURE_BACKOFF_MAX_SEC = 60.0
FAILURES_TTL_SEC = 600

# KEYS: 1 pause-until (µs), 2 last send (µs), 3 send log (zset: token -> µs), 4 the platform's
#       pause-until (µs; every channel of the platform)
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
local platform_pause = tonumber(redis.call('GET', KEYS[4]) or '0')
if platform_pause > at then at = platform_pause end
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


class ChannelKey(StrEnum):
    """The Redis keys of one channel (one hash tag, so they share a cluster slot)."""

    OUTBOX = "outbox"
    PAUSE_UNTIL = "pause_until"
    PAUSE_REASON = "pause_reason"
    LAST_SENT = "last_sent"
    SENT_LOG = "sent_log"
    FAILURES = "failures"
    SENDER = "sender"


def channel_key(channel_id: int, key: ChannelKey) -> str:
    return f"volspike:channel:{{{channel_id}}}:{key}"


def platform_pause_key(platform: str) -> str:
    """A pause for every channel of a platform (Discord's global rate limit)."""
    return f"volspike:platform:{platform}:pause_until"


@dataclass(frozen=True)
class ChannelLimits:
    """Per-channel limits: `per_sec` messages a second and `per_min` in any rolling `window_sec`.
    More than `digest_after` waiting (or more than the window's allowance) makes a digest of at
    most `digest_max` alerts; `digest_after=None` never digests (one message per alert)."""

    per_sec: float = 1.0
    per_min: int = 20
    window_sec: float = 60.0
    digest_after: int | None = 5
    digest_max: int = 25

    def __post_init__(self) -> None:
        if self.per_sec <= 0 or self.per_min < 1 or self.window_sec <= 0 or self.digest_max < 1:
            raise ValueError("channel limits must be positive")


@dataclass(frozen=True)
class Slot:
    granted: bool
    wait_sec: float
    left: int  # messages that still fit in the rolling window after this one
    token: str


class MessageKind(StrEnum):
    SINGLE = "single"
    DIGEST = "digest"


def plan_next(*, fetched: int, waiting: int, slot_left: int, limits: ChannelLimits) -> MessageKind:
    """One alert per message while the limits let every waiting alert go one by one (at most
    `digest_after` wait and the rolling window has room for them all); a digest otherwise.
    `fetched` is how many of the oldest waiting alerts are at hand (at most `digest_max`)."""
    if limits.digest_after is None or fetched == 1:
        return MessageKind.SINGLE
    if waiting <= limits.digest_after and waiting - 1 <= slot_left:
        return MessageKind.SINGLE
    return MessageKind.DIGEST


def failure_backoff_sec(failures_in_a_row: int) -> float:
    """1 s after a failure, doubling with each failure in a row, up to a minute."""
    return min(2.0 ** (failures_in_a_row - 1), FAILURE_BACKOFF_MAX_SEC)


class ChannelLimiter:
    """The shared send limiter of one channel (all processes agree through Redis)."""

    def __init__(
        self, client: redis.Redis, channel_id: int, limits: ChannelLimits, *, platform: str
    ) -> None:
        self.redis = client
        self.limits = limits
        self.channel_id = channel_id
        self.platform = platform
        self._acquire = client.register_script(ACQUIRE_LUA)
        self._confirm = client.register_script(CONFIRM_LUA)
        self._pause = client.register_script(PAUSE_LUA)

    def _key(self, key: ChannelKey) -> str:
        return channel_key(self.channel_id, key)

    def acquire(self, max_wait_sec: float) -> Slot:
        """Book the channel's next send slot if it is at most `max_wait_sec` away."""
        token = secrets.token_hex(8)
        granted, wait_us, left = self._acquire(
            keys=[
                self._key(ChannelKey.PAUSE_UNTIL),
                self._key(ChannelKey.LAST_SENT),
                self._key(ChannelKey.SENT_LOG),
                platform_pause_key(self.platform),
            ],
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
            keys=[self._key(ChannelKey.LAST_SENT), self._key(ChannelKey.SENT_LOG)],
            args=[slot.token, repr(self.limits.window_sec * 1e6)],
        )

    def pause(self, seconds: float, reason: str, *, whole_platform: bool = False) -> None:
        """No send before `seconds` from now (on every channel of the platform with
        `whole_platform`: Discord's global limit)."""
        pause_key = (
            platform_pause_key(self.platform)
            if whole_platform
            else self._key(ChannelKey.PAUSE_UNTIL)
        )
        self._pause(
            keys=[pause_key, self._key(ChannelKey.PAUSE_REASON)], args=[repr(seconds), reason]
        )

    def failed(self, reason: str) -> float:
        """Pause after a failure (``failure_backoff_sec``); returns the pause."""
        failures = self.redis.incr(self._key(ChannelKey.FAILURES))
        self.redis.expire(self._key(ChannelKey.FAILURES), FAILURES_TTL_SEC)
        seconds = failure_backoff_sec(failures)
        self.pause(seconds, reason)
        return seconds

    def succeeded(self) -> None:
        self.redis.delete(self._key(ChannelKey.FAILURES))
