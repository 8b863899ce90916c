"""The sample pipeline's alert evaluation (see oi.pipeline): every enabled rule on the batch's
symbols, after the batch is in the ring and on the feed."""

import logging

from alerts.evaluation import alerts_evaluate
from alerts.models import AlertSource
from oi.pipeline import BatchOrigin, SampleBatch

logger = logging.getLogger(__name__)

ALERT_SOURCES = {BatchOrigin.POLLER: AlertSource.POLLER, BatchOrigin.INGEST: AlertSource.INGEST}


def alerts_evaluate_batch(batch: SampleBatch) -> None:
    """Evaluate the batch's symbols at their latest samples, each with its last mark price in the
    batch. A failure is logged with its cause and never stops polling (nor the other sinks)."""
    mark_prices = {row.symbol: row.mark_price for row in batch.rows}
    try:
        alerts_evaluate(batch.symbols, mark_prices=mark_prices, source=ALERT_SOURCES[batch.origin])
    except Exception as exc:
        logger.exception(
            "alert evaluation failed",
            extra={"cause": repr(exc), "symbols": len(mark_prices), "origin": batch.origin.value},
        )
