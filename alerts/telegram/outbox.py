"""A chat's outbox in Redis: the ids of the alerts waiting for Telegram, oldest first.

A sorted set scored by alert id, so the oldest alert comes first and a repeated push is a
no-op. An id leaves only once the message that carried it was accepted (or the alert is gone or
already delivered): nothing is dropped, and a crash between Telegram's answer and the removal
sends it once more (at least once). The Redis client is given; this module reads no settings.
"""

from collections.abc import Iterable, Sequence

import redis

from alerts.telegram.limiter import ChatKey, chat_key


class Outbox:
    def __init__(self, client: redis.Redis, chat_id: str) -> None:
        self.redis = client
        self.key = chat_key(chat_id, ChatKey.OUTBOX)

    def push(self, alert_ids: Sequence[int]) -> None:
        if alert_ids:
            self.redis.zadd(self.key, {str(i): i for i in alert_ids}, nx=True)

    def size(self) -> int:
        return self.redis.zcard(self.key)

    def oldest(self, count: int) -> list[int]:
        return [int(i) for i in self.redis.zrange(self.key, 0, count - 1)]

    def remove(self, alert_ids: Iterable[int]) -> None:
        members = [str(i) for i in alert_ids]
        if members:
            self.redis.zrem(self.key, *members)
