"""Publishing events to WebSocket subscribers through the Channels layer (Redis pub/sub)."""

import logging

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

logger = logging.getLogger(__name__)

OI_UPDATES_GROUP = "oi_updates"
OI_ALERTS_GROUP = "oi_alerts"
VOLUME_ALERTS_GROUP = "volume_alerts"


def broadcast(group: str, message: dict) -> None:
    """Send `message` (with a `type` naming the consumer handler) to every member of `group`.

    Delivery is best effort: a subscriber that misses it catches up from the database.
    """
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        async_to_sync(layer.group_send)(group, message)
    except Exception as exc:  # noqa: BLE001 - a lost broadcast must never break the poller
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
