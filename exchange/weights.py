"""Binance USDⓈ-M request weights, shared by the client (to charge the budget) and the simulator.

Source: ../shared/binance/API_FACTS.md §1.1.
"""

from collections.abc import Mapping

# /futures/data/* endpoints cost no REQUEST_WEIGHT but count against their own per-IP limit.
FUTURES_DATA_LIMIT_REQUESTS = 1000
FUTURES_DATA_LIMIT_WINDOW_SEC = 300
DEFAULT_IP_WEIGHT_LIMIT_PER_MIN = 2400


def klines_weight(limit: int) -> int:
    if limit < 100:
        return 1
    if limit < 500:
        return 2
    if limit <= 1000:
        return 5
    return 10


def request_weight(path: str, params: Mapping[str, object] | None = None) -> int:
    """Weight Binance charges to the per-IP REQUEST_WEIGHT minute counter for one request."""
    params = params or {}
    has_symbol = bool(params.get("symbol"))
    if path == "/fapi/v1/ticker/24hr":
        return 1 if has_symbol else 40
    if path == "/fapi/v1/premiumIndex":
        return 1 if has_symbol else 10
    if path == "/fapi/v1/klines":
        try:
            limit = int(params.get("limit", 500))  # type: ignore[arg-type]
        except (TypeError, ValueError):
            limit = 500
        return klines_weight(limit)
    if path.startswith("/futures/data/"):
        return 0
    return 1


def is_futures_data(path: str) -> bool:
    return path.startswith("/futures/data/")
