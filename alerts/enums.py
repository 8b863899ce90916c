"""The alert engine's enums, shared by the pure rules, the evaluation, the page and the benches.
Pure: no Django."""

from enum import StrEnum


class Direction(StrEnum):
    UP = "UP"
    DOWN = "DOWN"


class VerdictReason(StrEnum):
    """Why a rule's observation is or is not an alert."""

    ALERT = "alert"
    BELOW_THRESHOLD = "below_threshold"
    BLOCKED_MIN_DELTA_CONTRACTS = "blocked_min_delta_contracts"
    BLOCKED_MIN_DELTA_USD = "blocked_min_delta_usd"
    MISSING_MARK_PRICE = "missing_mark_price"
    BLOCKED_REGIME = "blocked_regime"
    """Past the threshold, but the move's OI/price regime is not one the rule asks for."""
