"""The hourly volume script's alert body (VolSpike `POST /api/volume-alerts/ingest`), parsed and
checked. Pure: no I/O.

Both versions of the script are taken as they send: the older one has no detectionTime,
priceChange or oiChange and may send `fundingRate: null`. Any optional field may be null (=
absent). Unknown fields are not refused (upstream drops them silently): they are returned, so the
answer can list them.
"""

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from common.errors import InvalidInput
from common.parsing import (
    ignored_field_names,
    kind_of,
    parse_decimal,
    parse_timestamp,
    text_problem,
)
from common.symbols import SYMBOL_MAX_LENGTH, symbol_problem

ALERT_TYPES = ("SPIKE", "HALF_UPDATE", "FULL_UPDATE")
CANDLE_DIRECTIONS = ("bullish", "bearish")
REQUIRED_FIELDS = (
    "symbol", "asset", "currentVolume", "previousVolume", "volumeRatio", "message", "timestamp",
    "hourTimestamp",
)  # fmt: skip
OPTIONAL_FIELDS = (
    "price", "fundingRate", "candleDirection", "detectionTime", "isUpdate", "alertType",
    "priceChange", "oiChange",
)  # fmt: skip
KNOWN_FIELDS = frozenset(REQUIRED_FIELDS + OPTIONAL_FIELDS)
MESSAGE_MAX_LENGTH = 4000


@dataclass(frozen=True)
class VolumeAlertCandidate:
    symbol: str
    asset: str
    current_volume: float
    previous_volume: float
    volume_ratio: float
    price: float | None
    funding_rate: float | None
    price_change: float | None
    oi_change: float | None
    candle_direction: str
    alert_type: str
    is_update: bool
    message: str
    ts: datetime
    detection_time: datetime
    hour_timestamp: datetime


@dataclass(frozen=True)
class ParsedVolumeAlert:
    candidate: VolumeAlertCandidate
    ignored_fields: list[str]


def parse_volume_alert(payload: object, *, now: datetime) -> ParsedVolumeAlert:
    """Validate a body; raise `InvalidInput` naming the first bad field and why."""
    if not isinstance(payload, Mapping):
        raise InvalidInput(field="body", reason=f"must be a JSON object, got {kind_of(payload)}")
    for field in REQUIRED_FIELDS:
        if payload.get(field) is None:
            raise InvalidInput(field=field, reason="is required")
    problem = symbol_problem(payload["symbol"])
    if problem:
        raise InvalidInput(field="symbol", reason=problem)
    asset = payload["asset"]
    if not isinstance(asset, str) or not 1 <= len(asset) <= SYMBOL_MAX_LENGTH:
        raise InvalidInput(
            field="asset", reason=f"must be a string of 1 to {SYMBOL_MAX_LENGTH} characters"
        )
    message = payload["message"]
    if not isinstance(message, str):
        raise InvalidInput(field="message", reason=f"must be a string, got {kind_of(message)}")
    for field, text in (("asset", asset), ("message", message)):
        problem = text_problem(text)
        if problem:
            raise InvalidInput(field=field, reason=problem)
    if len(message) > MESSAGE_MAX_LENGTH:
        raise InvalidInput(
            field="message", reason=f"is longer than {MESSAGE_MAX_LENGTH} characters"
        )

    ts = parse_timestamp(payload["timestamp"], field="timestamp", now=now)
    hour_timestamp = parse_timestamp(payload["hourTimestamp"], field="hourTimestamp", now=now)
    if (hour_timestamp.minute, hour_timestamp.second, hour_timestamp.microsecond) != (0, 0, 0):
        raise InvalidInput(
            field="hourTimestamp", reason="must be on the hour (the open time of the 1h candle)"
        )
    detection_time = ts
    if payload.get("detectionTime") is not None:
        detection_time = parse_timestamp(payload["detectionTime"], field="detectionTime", now=now)

    alert_type = payload.get("alertType") or "SPIKE"
    if alert_type not in ALERT_TYPES:
        raise InvalidInput(field="alertType", reason=f"must be one of {', '.join(ALERT_TYPES)}")
    candle_direction = payload.get("candleDirection") or ""
    if candle_direction and candle_direction not in CANDLE_DIRECTIONS:
        raise InvalidInput(field="candleDirection", reason="must be bullish or bearish")
    is_update = payload.get("isUpdate", False)
    if is_update is None:
        is_update = False
    if not isinstance(is_update, bool):
        raise InvalidInput(field="isUpdate", reason=f"must be a boolean, got {kind_of(is_update)}")

    return ParsedVolumeAlert(
        candidate=VolumeAlertCandidate(
            symbol=payload["symbol"],
            asset=asset,
            current_volume=_number(payload, "currentVolume"),
            previous_volume=_number(payload, "previousVolume"),
            volume_ratio=_number(payload, "volumeRatio"),
            price=_optional_number(payload, "price"),
            funding_rate=_optional_number(payload, "fundingRate", allow_negative=True),
            price_change=_optional_number(payload, "priceChange", allow_negative=True),
            oi_change=_optional_number(payload, "oiChange", allow_negative=True),
            candle_direction=candle_direction,
            alert_type=alert_type,
            is_update=is_update,
            message=message,
            ts=ts,
            detection_time=detection_time,
            hour_timestamp=hour_timestamp,
        ),
        ignored_fields=ignored_field_names(set(payload) - KNOWN_FIELDS),
    )


def _number(payload: Mapping, field: str, *, allow_negative: bool = False) -> float:
    value = float(parse_decimal(payload[field], field=field, allow_negative=allow_negative))
    if not math.isfinite(value):
        raise InvalidInput(field=field, reason="must be finite")
    return value


def _optional_number(payload: Mapping, field: str, *, allow_negative: bool = False) -> float | None:
    if payload.get(field) is None:
        return None
    return _number(payload, field, allow_negative=allow_negative)
