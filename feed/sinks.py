"""The sample pipeline's live feed (see oi.pipeline): each batch as one update to the feed's
clients, before alert evaluation."""

from common.realtime import OI_UPDATES_GROUP, GroupMessageType, broadcast
from oi.pipeline import SampleBatch


def feed_publish(batch: SampleBatch) -> None:
    """The batch's rows (`as_json`) to the update group: the feed consumer sends each client an
    `open_interest_update` frame of the rows it subscribed to. Best effort: a publish that fails
    or takes too long is logged and given up (a client catches up from the samples API); it never
    stops the pipeline."""
    broadcast(
        OI_UPDATES_GROUP,
        {"type": GroupMessageType.OI_UPDATE, "data": [r.as_json() for r in batch.rows]},
    )
