"""The sample pipeline's live feed (see oi.pipeline): each batch as one update to the feed's
clients, before alert evaluation."""

from common.realtime import OI_UPDATES_GROUP, broadcast
from oi.pipeline import SampleBatch

# The channel-layer message type: the feed consumer's handler `oi_update`, which sends it to
# each client as an `open_interest_update` frame (the rows of the symbols it subscribed to).
OI_UPDATE_MESSAGE = "oi.update"


def feed_publish(batch: SampleBatch) -> None:
    """Best effort: a publish that fails or takes too long is logged and given up (a client
    catches up from the samples API); it never stops the pipeline."""
    broadcast(
        OI_UPDATES_GROUP, {"type": OI_UPDATE_MESSAGE, "data": [r.as_json() for r in batch.rows]}
    )
