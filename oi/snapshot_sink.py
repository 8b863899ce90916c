"""Where the poller's snapshot batches go: this project's Postgres (through the same service as
the ingest API) or, in the design's split deployment, a remote backend's ingest URL.

A batch that cannot be delivered now (Postgres or the remote unreachable) is parked in a Redis
list and retried by a beat task; delivery is idempotent on (symbol, ts, source), so a retry never
duplicates a row. A batch refused for good (a value Postgres cannot hold, a remote answering
400, a parked payload that no longer parses) is moved to the dead letters (Postgres,
`SnapshotDeadLetter`, in the admin and /metrics) and the flush goes on with the next one: one
poisoned batch never holds back everything parked behind it.
"""

import json
import logging
import time

import requests
from django.conf import settings
from django.db import DatabaseError, DataError, IntegrityError
from django.utils import timezone

from common.errors import InvalidInput
from common.formatting import iso_z
from common.redis import get_redis
from oi.batches import SnapshotRow, parse_snapshot_batch
from oi.models import SnapshotDeadLetter
from oi.services import snapshot_rows_store

logger = logging.getLogger(__name__)

PENDING_KEY = "oi:snapshots:pending"
REMOTE_ATTEMPTS = 3
# Remote answers that refuse this batch itself (retrying the same bytes cannot help). 401, 403
# and 404 are a configuration problem, not the batch's: those batches stay parked.
REMOTE_REFUSALS = frozenset({400, 413, 422})
DEAD_LETTER_SYMBOLS = 20
CAUSE_MAX_CHARS = 2000


class DeliveryFailed(Exception):
    """Not delivered now; the same batch may be delivered later (parked)."""


class DeliveryRefused(Exception):
    """The store refuses this batch for good (dead letter)."""


def snapshot_rows_deliver(rows: list[SnapshotRow]) -> bool:
    """Deliver now, or park the batch for a later retry, or dead-letter it when it is refused for
    good (logged). True when delivered now."""
    if not rows:
        return True
    try:
        if settings.OI_REMOTE_INGEST_URL:
            _post_remote(snapshot_rows_payload(rows))
        else:
            _store_local(rows)  # the JSON payload only if it must be parked (every batch, 10/s)
    except DeliveryRefused as exc:
        payload = snapshot_rows_payload(rows)
        if not _dead_letter(payload, str(exc)):
            _park(payload, f"refused, and the dead letter could not be written: {exc}")
        return False
    except DeliveryFailed as exc:
        _park(snapshot_rows_payload(rows), str(exc))
        return False
    return True


def snapshot_pending_flush(*, max_batches: int = 100) -> int:
    """Retry parked batches in order: a batch refused for good moves to the dead letters and the
    flush goes on; the first that still fails for now stops it. Returns how many were stored."""
    redis = get_redis()
    delivered = 0
    for _ in range(max_batches):
        raw = redis.lindex(PENDING_KEY, 0)
        if raw is None:
            break
        payload: dict | str | bytes = raw
        try:
            payload = _parked_payload(raw)
            _deliver(payload)
        except DeliveryRefused as exc:
            if not _dead_letter(payload, str(exc)):
                break  # Postgres cannot take the dead letter either: try again next time
            redis.lrem(PENDING_KEY, 1, raw)
            continue
        except DeliveryFailed as exc:
            logger.warning("parked snapshot batch still undeliverable", extra={"cause": str(exc)})
            break
        redis.lrem(PENDING_KEY, 1, raw)  # this very batch, even if another flush ran meanwhile
        delivered += 1
    return delivered


def dead_letters_retry(letters: list[SnapshotDeadLetter]) -> tuple[int, int]:
    """Deliver dead letters again (after a fix); each stored one is deleted. Returns (stored,
    refused again); a letter that fails for now stays as it is."""
    stored = refused = 0
    for letter in letters:
        try:
            _deliver(letter.payload)
        except DeliveryRefused as exc:
            refused += 1
            letter.cause = _cause(str(exc))
            letter.save(update_fields=["cause"])
            continue
        except DeliveryFailed:
            continue
        letter.delete()
        stored += 1
    return stored, refused


def dead_letter_count() -> int:
    return SnapshotDeadLetter.objects.count()


def snapshot_rows_payload(rows: list[SnapshotRow]) -> dict:
    """The design's §4.4 batch, with each row's own sample time."""
    return {
        "timestamp": iso_z(max(row.ts for row in rows)),
        "totalSymbols": len(rows),
        "data": [row.as_json() for row in rows],
    }


def _park(payload: dict, cause: str) -> None:
    get_redis().rpush(PENDING_KEY, json.dumps(payload))
    logger.error(
        "snapshot batch parked for retry", extra={"rows": len(payload["data"]), "cause": cause}
    )


def _dead_letter(payload: dict | str | bytes, cause: str) -> bool:
    """Keep a refused batch with its cause; False when Postgres cannot take it now."""
    rows = payload.get("data") if isinstance(payload, dict) else None
    rows = rows if isinstance(rows, list) else []
    symbols = [
        str(row.get("symbol")) for row in rows[:DEAD_LETTER_SYMBOLS] if isinstance(row, dict)
    ]
    try:
        SnapshotDeadLetter.objects.create(
            rows=len(rows),
            symbols=",".join(symbols),
            cause=_cause(cause),
            payload=payload if isinstance(payload, dict) else {"unparsed": _text(payload)},
        )
    except DatabaseError as exc:
        logger.error(
            "snapshot dead letter not written", extra={"cause": f"{type(exc).__name__}: {exc}"}
        )
        return False
    logger.error(
        "snapshot batch refused for good: moved to the dead letters",
        extra={"rows": len(rows), "symbols": ",".join(symbols[:5]), "cause": _cause(cause)},
    )
    return True


def _text(raw: str | bytes) -> str:
    return raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw


def _cause(text: str) -> str:
    return text[:CAUSE_MAX_CHARS]


def _parked_payload(raw: str | bytes) -> dict:
    try:
        payload = json.loads(raw)
    except ValueError as exc:
        raise DeliveryRefused(f"parked batch is not JSON: {exc}") from exc
    if not isinstance(payload, dict) or not isinstance(payload.get("data"), list):
        raise DeliveryRefused("parked batch has no data list")
    return payload


def _deliver(payload: dict) -> None:
    if settings.OI_REMOTE_INGEST_URL:
        _post_remote(payload)
        return
    try:
        batch = parse_snapshot_batch(
            payload, now=timezone.now(), max_rows=max(len(payload.get("data") or []), 1)
        )
    except InvalidInput as exc:
        raise DeliveryRefused(f"InvalidInput: {exc}") from exc
    _store_local(batch.rows)


def _store_local(rows: list[SnapshotRow]) -> None:
    try:
        snapshot_rows_store(rows=rows)
    except (DataError, IntegrityError) as exc:
        # Postgres answered, and refuses these values (out of range, a CHECK): for good.
        raise DeliveryRefused(f"{type(exc).__name__}: {exc}") from exc
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
            if response.status_code in REMOTE_REFUSALS:
                raise DeliveryRefused(f"remote ingest refused the batch: {cause}")
            if 400 <= response.status_code < 500 and response.status_code not in (408, 429):
                break  # 401/403/404: configuration; retrying now cannot help, later may
        time.sleep(min(2**attempt * 0.5, 4))
    raise DeliveryFailed(f"remote ingest failed: {cause}")
