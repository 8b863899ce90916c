"""Alert evaluation on new samples, in the poller's path (and for ingested samples).

Each worker process keeps one `BaselineTracker` per symbol. A symbol's shards may run in
different processes, so before evaluating, a batch reads from the ring buffers only the samples
each tracker has not seen yet (one pipelined round trip per batch): each new sample costs
O(log n), never a re-read of the whole window.
"""

import logging
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from decimal import Decimal

from django.conf import settings

from alerts.detection import BaselineTracker, DetectionParams, Verdict, resolve_params
from alerts.models import AlertSource, AlertThresholdOverride
from alerts.payloads import AlertCandidate
from alerts.services import RaisedAlert, alert_raise
from common.redis import get_redis
from oi.keys import BACKFILL_DONE_KEY
from oi.ring import decode_member, ring_key

logger = logging.getLogger(__name__)

PARAMS_CACHE_SEC = 10.0

# symbol -> (tracker, the symbol's backfill stamp when the tracker was built)
_trackers: dict[str, tuple[BaselineTracker, str | None]] = {}
_params_cache: tuple[float, DetectionParams, dict[str, dict]] | None = None


def default_params() -> DetectionParams:
    return DetectionParams(
        w_low_sec=settings.OI_ALERT_W_LOW_SEC,
        w_high_sec=settings.OI_ALERT_W_HIGH_SEC,
        min_baseline_samples=settings.OI_ALERT_MIN_BASELINE_SAMPLES,
        spike_threshold_pct=settings.OI_SPIKE_THRESHOLD_PCT,
        dump_threshold_pct=settings.OI_DUMP_THRESHOLD_PCT,
        min_delta_contracts=settings.OI_MIN_DELTA_CONTRACTS,
        min_delta_usd=settings.OI_MIN_DELTA_USD,
        cooldown_sec=settings.OI_ALERT_COOLDOWN_SEC,
    )


def params_for(symbol: str) -> DetectionParams:
    """Global settings with the symbol's admin overrides on top; re-read every 10 s, so edits
    take effect without a restart."""
    global _params_cache
    now = time.monotonic()
    if _params_cache is None or now - _params_cache[0] > PARAMS_CACHE_SEC:
        overrides = {
            row["symbol"]: row
            for row in AlertThresholdOverride.objects.values(
                "symbol",
                "spike_threshold_pct",
                "dump_threshold_pct",
                "min_delta_contracts",
                "min_delta_usd",
                "cooldown_sec",
            )
        }
        _params_cache = (now, default_params(), overrides)
    _, defaults, overrides = _params_cache
    override = overrides.get(symbol)
    if override is None:
        return defaults
    return resolve_params(defaults, {k: v for k, v in override.items() if k != "symbol"})


def alerts_evaluate(
    symbols: Iterable[str],
    *,
    mark_prices: dict[str, Decimal | None],
    source: str = AlertSource.POLLER,
) -> list[RaisedAlert]:
    """Bring each symbol's tracker up to date from its ring buffer and raise what it finds."""
    symbols = list(dict.fromkeys(symbols))
    if not symbols:
        return []
    defaults = default_params()
    _trackers_sync(symbols, defaults)
    raised: list[RaisedAlert] = []
    for symbol in symbols:
        tracker = _trackers[symbol][0]
        if tracker.latest is None:
            continue
        params = params_for(symbol)
        verdict = tracker.evaluate(params, mark_prices.get(symbol))
        if verdict.is_blocked:
            logger.info(
                "alert blocked by a minimum",
                extra={
                    "symbol": symbol,
                    "cause": verdict.reason.value,
                    "pct_change": f"{verdict.pct_change:.4f}",
                },
            )
        if verdict.is_alert:
            raised.append(
                alert_raise(_candidate(symbol, verdict, source), cooldown_sec=params.cooldown_sec)
            )
    return raised


def _trackers_sync(symbols: list[str], params: DetectionParams) -> None:
    """Feed each tracker the ring samples it has not seen. A tracker made before its symbol's
    backfill landed (the backfill stamp changed) is rebuilt from the whole window instead, so
    history written behind its latest sample is never missed."""
    redis = get_redis()
    now_ms = time.time_ns() // 1_000_000
    stamps = redis.mget([BACKFILL_DONE_KEY.format(symbol) for symbol in symbols])
    rebuild: set[str] = set()
    with redis.pipeline(transaction=False) as pipe:
        for symbol, stamp in zip(symbols, stamps, strict=True):
            known = _trackers.get(symbol)
            if known is None or known[1] != stamp or known[0].latest is None:
                rebuild.add(symbol)
                since: int | str = now_ms - params.w_high_ms - 60_000
            else:
                since = f"({known[0].latest[0]}"
            pipe.zrangebyscore(ring_key(symbol), since, "+inf")
        new_members = pipe.execute()
    for symbol, stamp, members in zip(symbols, stamps, new_members, strict=True):
        samples = [decode_member(member) for member in members]
        if symbol in rebuild:
            tracker = BaselineTracker.from_samples(
                [(sample.time_ms, sample.open_interest) for sample in samples],
                w_low_sec=params.w_low_sec,
                w_high_sec=params.w_high_sec,
            )
            _trackers[symbol] = (tracker, stamp)
        else:
            tracker = _trackers[symbol][0]
            for sample in samples:
                tracker.add(sample.time_ms, sample.open_interest)


def _candidate(symbol: str, verdict: Verdict, source: str) -> AlertCandidate:
    return AlertCandidate(
        symbol=symbol,
        direction=verdict.direction.value,
        baseline=Decimal(repr(verdict.baseline)),
        current=Decimal(repr(verdict.current)),
        pct_change=Decimal(repr(verdict.pct_change)),
        abs_change=Decimal(repr(verdict.abs_change)),
        ts=datetime.fromtimestamp(verdict.t_ms / 1000, tz=UTC),
        source=source,
    )
