"""One pipeline for every open-interest sample, from the poller or from the ingest API.

Both hand a checked ``SampleBatch`` (rows that passed oi.batches' rules) to
``sample_batch_process``, which runs the sinks named in ``settings.SAMPLE_PIPELINE_SINKS``, in
that order, each a callable taking the batch. A new sink is one module and one settings line.

The order is a contract, not a detail:

1. Postgres (``oi.sinks.postgres_store``) before the ring (``oi.sinks.ring_append``): a worker
   killed in between must not leave a sample in a ring buffer (and so in an alert tracker) that
   never reaches Postgres. A batch Postgres cannot take now is parked in Redis and written by a
   retry, which counts as reaching it.
2. The ring before the feed and the alerts: the alert engine brings its trackers up to date from
   the ring (it also holds what other processes wrote), and a client told of a sample can read
   it back from the samples API.
3. The feed (``feed.sinks.feed_publish``) before the alerts
   (``alerts.sinks.alerts_evaluate_batch``): an update frame does not wait for alert evaluation
   and the INSERT of what fires.

A sink decides what its own failure means, and says so: the Postgres sink parks the batch and
the pipeline goes on (an exception it cannot handle, such as Redis down while parking, stops the
batch there); the feed is best effort (a lost frame is logged); the alert sink logs a failed
evaluation and never stops polling.
"""

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import StrEnum
from functools import cache

from django.conf import settings
from django.utils.module_loading import import_string

from oi.batches import SnapshotRow


class BatchOrigin(StrEnum):
    """Where a batch came from."""

    POLLER = "poller"
    INGEST = "ingest"


@dataclass(frozen=True, slots=True)
class SampleBatch:
    """Checked samples on their way through the sinks."""

    rows: tuple[SnapshotRow, ...]
    origin: BatchOrigin
    at_ms: int
    """When the batch entered the pipeline (epoch ms): the clock the ring trims by."""
    stored: bool = False
    """Already in Postgres: the ingest API stores its batch inside the request (its answer counts
    the inserted rows, and a failure is a 500 for the client to retry, not a parked batch), then
    hands the rows of liquid symbols to the pipeline."""

    @property
    def symbols(self) -> list[str]:
        """The batch's symbols, each once, in the order of their first row."""
        return list(dict.fromkeys(row.symbol for row in self.rows))


Sink = Callable[[SampleBatch], None]


@cache
def _sinks_loaded(paths: tuple[str, ...]) -> tuple[Sink, ...]:
    return tuple(import_string(path) for path in paths)


def pipeline_sinks() -> tuple[Sink, ...]:
    """The sinks of SAMPLE_PIPELINE_SINKS, imported once per distinct list."""
    return _sinks_loaded(tuple(settings.SAMPLE_PIPELINE_SINKS))


def sample_batch_process(batch: SampleBatch) -> None:
    """Run every sink on the batch, in the settings' order (see the module's docstring)."""
    if not batch.rows:
        return
    for sink in pipeline_sinks():
        sink(batch)


# --- a batch across a Celery task (the ingest path's second half, in a worker) -------------------


def sample_batch_payload(rows: Iterable[SnapshotRow], *, origin: BatchOrigin, stored: bool) -> dict:
    """A batch's rows as JSON for a task; the task's ``sample_batch_from_payload`` takes its own
    time when it runs (the ring trims by the clock of the process writing it)."""
    return {
        "origin": origin.value,
        "stored": stored,
        "rows": [row.as_json() for row in rows],
    }


def sample_batch_from_payload(payload: dict, *, at_ms: int) -> SampleBatch:
    return SampleBatch(
        rows=tuple(SnapshotRow.from_json(row) for row in payload["rows"]),
        origin=BatchOrigin(payload["origin"]),
        at_ms=at_ms,
        stored=bool(payload["stored"]),
    )
