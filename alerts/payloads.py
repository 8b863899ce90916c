"""The alert payload of design §5.3, parsed and checked. Pure: no I/O."""

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from alerts.enums import Direction
from common.errors import InvalidInput
from common.parsing import ignored_field_names, kind_of, parse_decimal, parse_timestamp
from common.symbols import symbol_problem
from oi.regimes import DEAD_BAND_REFERENCE_SEC, Regime, regime_of

DIRECTIONS = tuple(Direction)
# pctChange must be (current - baseline) / baseline and absChange current - baseline, within
# this share of the expected value (or PCT_CHANGE_ABS_TOLERANCE, for moves near zero): producers
# round, but a pctChange that says +50% for a +1% move would alert traders on a move not made.
CHANGE_REL_TOLERANCE = Decimal("0.01")
PCT_CHANGE_ABS_TOLERANCE = Decimal("0.0001")
ALERT_FIELDS = frozenset(
    {"symbol", "direction", "baseline", "current", "pctChange", "absChange", "timestamp", "source"}
)
# Optional context the VolSpike realtime poller sends (upstream OpenInterestAlertInput).
OPTIONAL_ALERT_FIELDS = frozenset({"timeframe", "priceChange", "fundingRate"})
TIMEFRAME_WINDOW_SEC = {"5 min": 300, "15 min": 900, "1 hour": 3600}


@dataclass(frozen=True)
class AlertCandidate:
    symbol: str
    direction: str
    baseline: Decimal
    current: Decimal
    pct_change: Decimal
    abs_change: Decimal
    ts: datetime
    source: str
    # Context (issue 9): set by the rules engine, empty for alerts from other producers.
    rule_id: int | None = None
    rule_name: str = ""
    window_sec: int | None = None
    reference: str = ""
    threshold_pct: Decimal | None = None
    price_change_pct: Decimal | None = None
    mark_price: Decimal | None = None
    funding_rate: Decimal | None = None
    oi_usd_before: Decimal | None = None
    oi_usd_after: Decimal | None = None
    quote_volume_24h: Decimal | None = None
    liquidations_long_usd: Decimal | None = None
    """Long liquidations over the window from the market stream (a lower bound); None: unknown."""
    liquidations_short_usd: Decimal | None = None
    regime: str = ""
    """oi.regimes.Regime; the rules engine sets the one it gated on, others get it computed
    from their changes (``candidate_regime``)."""


def candidate_regime(candidate: AlertCandidate) -> Regime:
    """The candidate's regime: the engine's own, or one from its OI and price changes over its
    window (5 min when the producer names none)."""
    if candidate.regime:
        return Regime(candidate.regime)
    return regime_of(
        oi_change=float(candidate.pct_change),
        price_change=(
            float(candidate.price_change_pct) if candidate.price_change_pct is not None else None
        ),
        window_sec=candidate.window_sec or DEAD_BAND_REFERENCE_SEC,
    )


def parse_alert_payload(
    payload: object, *, now: datetime, sources: tuple[str, ...]
) -> AlertCandidate:
    if not isinstance(payload, Mapping):
        raise InvalidInput(field="body", reason=f"must be a JSON object, got {kind_of(payload)}")
    missing = sorted(ALERT_FIELDS - set(payload))
    if missing:
        raise InvalidInput(field=missing[0], reason="is required")
    problem = symbol_problem(payload["symbol"])
    if problem:
        raise InvalidInput(field="symbol", reason=problem)
    direction = payload["direction"]
    if direction not in DIRECTIONS:
        raise InvalidInput(field="direction", reason="must be UP or DOWN")
    source = payload["source"]
    if source not in sources:
        raise InvalidInput(field="source", reason=f"must be one of {', '.join(sources)}")
    baseline = parse_decimal(payload["baseline"], field="baseline")
    current = parse_decimal(payload["current"], field="current")
    pct_change = parse_decimal(payload["pctChange"], field="pctChange", allow_negative=True)
    abs_change = parse_decimal(payload["absChange"], field="absChange", allow_negative=True)
    if baseline == 0:
        raise InvalidInput(field="baseline", reason="must be above 0")
    sign = 1 if direction == Direction.UP else -1
    if pct_change * sign <= 0:
        raise InvalidInput(
            field="pctChange",
            reason=f"must be {'above' if sign > 0 else 'below'} 0 for {direction}",
        )
    if abs_change * sign <= 0:
        raise InvalidInput(
            field="absChange",
            reason=f"must be {'above' if sign > 0 else 'below'} 0 for {direction}",
        )
    expected_abs = current - baseline
    expected_pct = expected_abs / baseline
    if abs(pct_change - expected_pct) > max(
        PCT_CHANGE_ABS_TOLERANCE, CHANGE_REL_TOLERANCE * abs(expected_pct)
    ):
        raise InvalidInput(
            field="pctChange",
            reason=(
                f"{pct_change} does not match baseline and current: (current - baseline) / "
                f"baseline = {expected_pct:.6g} (1% tolerance)"
            ),
        )
    if abs(abs_change - expected_abs) > CHANGE_REL_TOLERANCE * abs(expected_abs):
        raise InvalidInput(
            field="absChange",
            reason=(
                f"{abs_change} does not match baseline and current: current - baseline = "
                f"{expected_abs.normalize():f} (1% tolerance)"
            ),
        )
    timeframe = payload.get("timeframe")
    if timeframe is not None and (
        not isinstance(timeframe, str) or timeframe not in TIMEFRAME_WINDOW_SEC
    ):
        raise InvalidInput(
            field="timeframe", reason=f"must be one of {', '.join(TIMEFRAME_WINDOW_SEC)}"
        )
    return AlertCandidate(
        window_sec=TIMEFRAME_WINDOW_SEC.get(timeframe),
        price_change_pct=_optional_decimal(payload, "priceChange"),
        funding_rate=_optional_decimal(payload, "fundingRate"),
        symbol=payload["symbol"],
        direction=direction,
        baseline=baseline,
        current=current,
        pct_change=pct_change,
        abs_change=abs_change,
        ts=parse_timestamp(payload["timestamp"], field="timestamp", now=now),
        source=source,
    )


def ignored_alert_fields(payload: object) -> list[str]:
    """Keys of an alert body that are neither alert fields nor known context: accepted, not
    stored, and listed in the answer (upstream drops them silently)."""
    if not isinstance(payload, Mapping):
        return []
    return ignored_field_names(set(payload) - ALERT_FIELDS - OPTIONAL_ALERT_FIELDS)


def _optional_decimal(payload: Mapping, field: str) -> Decimal | None:
    value = payload.get(field)
    return None if value is None else parse_decimal(value, field=field, allow_negative=True)
