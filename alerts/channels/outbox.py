"""A channel's outbox in Redis: what waits for the channel, oldest first.

A sorted set whose members are entries (``alert:<id>``, ``liq:<id>`` or ``ops:<id>``, the id
of a stored ``OpenInterestAlert``, ``LiquidationAlert`` or ``OpsMessage``) scored by the time they were queued, so the oldest
comes first and a repeated push is a no-op (``NX`` keeps the first score). An entry leaves only
once the message that carried it was accepted (or what it names is gone or already delivered):
nothing is dropped, and a crash between the platform's answer and the removal sends it once more
(at least once). The Redis client is given; this module reads no settings.
"""

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum

import redis

from alerts.channels.limiter import ChannelKey, channel_key


class EntryKind(StrEnum):
    ALERT = "alert"
    LIQUIDATION = "liq"
    OPS = "ops"


@dataclass(frozen=True)
class Entry:
    kind: EntryKind
    id: int

    @property
    def member(self) -> str:
        return f"{self.kind}:{self.id}"

    @classmethod
    def parse(cls, member: str) -> "Entry":
        kind, _, raw_id = member.rpartition(":")
        if not kind:  # written by the Telegram outbox before channels were data
            return cls(EntryKind.ALERT, int(raw_id))
        return cls(EntryKind(kind), int(raw_id))


def alert_entries(alert_ids: Iterable[int]) -> list[Entry]:
    return [Entry(EntryKind.ALERT, i) for i in alert_ids]


class Outbox:
    def __init__(self, client: redis.Redis, channel_id: int) -> None:
        self.redis = client
        self.key = channel_key(channel_id, ChannelKey.OUTBOX)

    def push(self, entries: Sequence[Entry], *, score_us: int | None = None) -> None:
        """Queue entries in their order (a repeated push keeps the entry's first place)."""
        if entries:
            base = score_us if score_us is not None else time.time_ns() // 1000
            self.redis.zadd(self.key, {e.member: base + n for n, e in enumerate(entries)}, nx=True)

    def size(self) -> int:
        return self.redis.zcard(self.key)

    def oldest(self, count: int) -> list[Entry]:
        return [Entry.parse(m) for m in self.redis.zrange(self.key, 0, count - 1)]

    def remove(self, entries: Iterable[Entry]) -> None:
        members = [e.member for e in entries]
        if members:
            self.redis.zrem(self.key, *members)

    def adopt(self, old_key: str) -> int:
        """Move the alert ids of an outbox of before channels (``volspike:telegram:{chat}:outbox``,
        members the bare ids, scored by id) into this one; returns how many moved."""
        ids = [int(m) for m in self.redis.zrange(old_key, 0, -1)]
        if ids:
            self.push(alert_entries(sorted(ids)), score_us=0)
            self.redis.delete(old_key)
        return len(ids)
