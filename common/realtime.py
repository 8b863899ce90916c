"""Publishing events to WebSocket subscribers through the Channels layer (Redis pub/sub)."""

import asyncio
import logging
import os
import threading
from enum import StrEnum

from channels.layers import get_channel_layer
from django.db import transaction

logger = logging.getLogger(__name__)

OI_UPDATES_GROUP = "oi_updates"
OI_ALERTS_GROUP = "oi_alerts"
VOLUME_ALERTS_GROUP = "volume_alerts"
# A publish that takes longer than this is given up (best effort; clients catch up from the DB).
BROADCAST_TIMEOUT_SEC = 5.0


class GroupMessageType(StrEnum):
    """The `type` of a message published to those groups: Channels hands it to the feed
    consumer's method of that name with dots as underscores (`oi.update` → `oi_update`)."""

    OI_UPDATE = "oi.update"  # OI_UPDATES_GROUP, {"data": [sample rows]}
    OI_ALERT = "oi.alert"  # OI_ALERTS_GROUP, {"alert": alert payload}
    LIQUIDATION_ALERT = "liquidation.alert"  # OI_ALERTS_GROUP, {"alert": liquidation payload}
    VOLUME_ALERT = "volume.alert"  # VOLUME_ALERTS_GROUP, {"alert": volume alert payload}

    @property
    def handler_name(self) -> str:
        """The consumer method Channels calls for this type."""
        return self.value.replace(".", "_")


_publisher_lock = threading.Lock()
_publisher: tuple[int, asyncio.AbstractEventLoop] | None = None


def _publisher_loop() -> asyncio.AbstractEventLoop:
    """This process's event loop for publishing, run by a daemon thread, made on first use.

    `async_to_sync` would run every publish on a new event loop in a new thread, and the
    channel layer keeps one Redis connection per loop: a connection, a loop and a thread per
    batch. One loop keeps one connection, and any thread may publish through it. A forked
    child (the loop's thread does not survive a fork) makes its own.
    """
    global _publisher
    with _publisher_lock:
        if _publisher is None or _publisher[0] != os.getpid():
            loop = asyncio.new_event_loop()
            threading.Thread(
                target=loop.run_forever, name="realtime-publisher", daemon=True
            ).start()
            _publisher = (os.getpid(), loop)
        return _publisher[1]


def broadcast(group: str, message: dict) -> None:
    """Send `message` (with a `type` naming the consumer handler) to every member of `group`.

    Delivery is best effort: a subscriber that misses it catches up from the database.
    Thread-safe; waits until the message is published (or BROADCAST_TIMEOUT_SEC).
    """
    layer = get_channel_layer()
    if layer is None:
        return
    future = None
    try:
        future = asyncio.run_coroutine_threadsafe(
            layer.group_send(group, message), _publisher_loop()
        )
        future.result(timeout=BROADCAST_TIMEOUT_SEC)
    except Exception as exc:  # noqa: BLE001 - a lost broadcast must never break the poller
        if future is not None:
            future.cancel()
        logger.warning("broadcast failed", extra={"group": group, "cause": repr(exc)})


def broadcast_on_commit(group: str, message: dict) -> None:
    transaction.on_commit(lambda: broadcast(group, message))


async def channel_release(layer, channel_name: str) -> None:
    """Forget a consumer's channel in this process once the consumer ends.

    channels_redis' pub/sub layer drops a channel's queue (and its Redis subscription) only when
    a pending `receive` on it is cancelled. A consumer whose dispatch loop ends on an exception
    right after a channel message (the receive task already done) never does that, and the
    unbounded queue would receive every message of its groups for the life of the process.
    """
    loop_layer = getattr(layer, "_get_layer", lambda: None)()  # RedisPubSubLoopLayer
    if loop_layer is None or not hasattr(loop_layer, "channels"):
        return
    loop_layer.channels.pop(channel_name, None)
    try:  # a no-op when the layer's own clean-up unsubscribed it already
        await loop_layer._get_shard(channel_name).unsubscribe(channel_name)
    except Exception as exc:  # noqa: BLE001 - Redis down: the subscription dies with the connection
        logger.warning("channel unsubscribe failed", extra={"cause": repr(exc)})
