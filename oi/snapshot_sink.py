"""Where the poller's snapshot batches go: this project's Postgres (through the same service as
the ingest API) or, in the design's split deployment, a remote backend's ingest URL.

A batch that cannot be delivered now is parked in a Redis list and retried by a beat task;
delivery is idempotent on (symbol, ts, source), so a retry never duplicates a row.
"""

import json
import logging
import time

import requests
from django.conf import settings
from django.db import DatabaseError
from django.utils import timezone

from common.formatting import iso_z
from common.redis import get_redis
from oi.batches import SnapshotRow, parse_snapshot_batch
from oi.services import snapshot_rows_store

logger = logging.getLogger(__name__)

PENDING_KEY = "oi:snapshots:pending"
REMOTE_ATTEMPTS = 3


class DeliveryFailed(Exception):
    pass


def snapshot_rows_deliver(rows: list[SnapshotRow]) -> bool:
    """Deliver now, or park the batch for a later retry (logged). True when delivered now."""
    if not rows:
        return True
    try:
        if settings.OI_REMOTE_INGEST_URL:
            _post_remote(snapshot_rows_payload(rows))
        else:
            _store_local(rows)
    except DeliveryFailed as exc:
        get_redis().rpush(PENDING_KEY, json.dumps(snapshot_rows_payload(rows)))
        logger.error(
            "snapshot batch parked for retry", extra={"rows": len(rows), "cause": str(exc)}
        )
        return False
    return True


def snapshot_pending_flush(*, max_batches: int = 100) -> int:
    """Retry parked batches in order; stop at the first that still fails. Returns delivered."""
    redis = get_redis()
    delivered = 0
    for _ in range(max_batches):
        raw = redis.lindex(PENDING_KEY, 0)
        if raw is None:
            break
        try:
            _deliver(json.loads(raw))
        except DeliveryFailed as exc:
            logger.warning("parked snapshot batch still undeliverable", extra={"cause": str(exc)})
            break
        redis.lpop(PENDING_KEY)
        delivered += 1
    return delivered


def snapshot_rows_payload(rows: list[SnapshotRow]) -> dict:
    """The design's §4.4 batch, with each row's own sample time."""
    return {
        "timestamp": iso_z(max(row.ts for row in rows)),
        "totalSymbols": len(rows),
        "data": [row.as_json() for row in rows],
    }


def _deliver(payload: dict) -> None:
    if settings.OI_REMOTE_INGEST_URL:
        _post_remote(payload)
        return
    batch = parse_snapshot_batch(payload, now=timezone.now(), max_rows=len(payload["data"]))
    _store_local(batch.rows)


def _store_local(rows: list[SnapshotRow]) -> None:
    try:
        snapshot_rows_store(rows=rows)
    except DatabaseError as exc:
        raise DeliveryFailed(f"{type(exc).__name__}: {exc}") from exc


def _post_remote(payload: dict) -> None:
    headers = {"Authorization": f"Token {settings.OI_REMOTE_INGEST_TOKEN}"}
    cause = ""
    for attempt in range(REMOTE_ATTEMPTS):
        try:
            response = requests.post(
                settings.OI_REMOTE_INGEST_URL, json=payload, headers=headers, timeout=(3, 15)
            )
        except requests.RequestException as exc:
            cause = f"{type(exc).__name__}: {exc}"
        else:
            if response.status_code < 300:
                return
            cause = f"HTTP {response.status_code}: {response.text[:200]}"
            if 400 <= response.status_code < 500 and response.status_code != 429:
                break  # the remote refuses this batch; retrying now cannot help
        time.sleep(min(2**attempt * 0.5, 4))
    raise DeliveryFailed(f"remote ingest failed: {cause}")
