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
