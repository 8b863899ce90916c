"""The live feed's wire format: every frame type, client action and error code, in one place.

A frame is a JSON object whose `type` is a FrameType; the builders below are the only places
frames are shaped, and `frame_text` the only encoding (compact separators: what clients parse
today, byte for byte).
"""

import json
from enum import StrEnum

# `subscribed` names this instead of a list when the client takes every symbol.
ALL_SYMBOLS = "*"


class FrameType(StrEnum):
    """Server → client."""

    SUBSCRIBED = "subscribed"  # the symbols now followed (after connect and every subscribe)
    OPEN_INTEREST_UPDATE = "open_interest_update"  # a batch of samples, rows of `as_json`
    OPEN_INTEREST_ALERT = "open_interest_alert"  # the §5.3 alert payload with its id
    VOLUME_ALERT = "volume_alert"  # an hourly volume alert, upstream's `VolumeAlert` row
    LIQUIDATION_ALERT = "liquidation_alert"  # a liquidation burst (alerts.liquidation_texts)
    PONG = "pong"  # the answer to a ping, after every frame queued before it
    ERROR = "error"  # a message refused: `error` (an ErrorCode) and a `message` for people


class ClientAction(StrEnum):
    """Client → server: the `action` of a message."""

    SUBSCRIBE = "subscribe"
    CATCH_UP = "catch_up"
    PING = "ping"


class ErrorCode(StrEnum):
    """The `error` of an error frame."""

    INVALID_JSON = "invalid_json"
    INVALID_MESSAGE = "invalid_message"
    UNKNOWN_ACTION = "unknown_action"
    INVALID_SYMBOLS = "invalid_symbols"
    TOO_MANY_SYMBOLS = "too_many_symbols"
    UNKNOWN_SYMBOLS = "unknown_symbols"
    INVALID_AFTER_ID = "invalid_after_id"
    INVALID_VOLUME_AFTER_ID = "invalid_volume_after_id"


def subscribed(symbols: set[str] | None) -> dict:
    """`symbols`: sorted, or ALL_SYMBOLS when the client follows every symbol (None or empty)."""
    return {"type": FrameType.SUBSCRIBED, "symbols": sorted(symbols) if symbols else ALL_SYMBOLS}


def open_interest_update(rows: list[dict]) -> dict:
    return {"type": FrameType.OPEN_INTEREST_UPDATE, "data": rows}


def open_interest_alert(alert: dict) -> dict:
    return {"type": FrameType.OPEN_INTEREST_ALERT, "data": alert}


def volume_alert(alert: dict) -> dict:
    return {"type": FrameType.VOLUME_ALERT, "data": alert}


def liquidation_alert(alert: dict) -> dict:
    return {"type": FrameType.LIQUIDATION_ALERT, "data": alert}


def pong() -> dict:
    return {"type": FrameType.PONG}


def error(code: ErrorCode, message: str, **extra: object) -> dict:
    """`extra`: more fields after `message` (e.g. the refused `symbols`, and `more`)."""
    return {"type": FrameType.ERROR, "error": code, "message": message, **extra}


def frame_text(frame: dict) -> str:
    """A frame as sent: compact JSON (enum members encode as their values)."""
    return json.dumps(frame, separators=(",", ":"))
