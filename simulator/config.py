"""Simulator settings: defaults, SIM_* environment variables and command-line flags."""

from __future__ import annotations

import argparse
import dataclasses
import os
from dataclasses import dataclass, field
from typing import Any

from exchange.weights import (
    DEFAULT_IP_WEIGHT_LIMIT_PER_MIN,
    FUTURES_DATA_LIMIT_REQUESTS,
    FUTURES_DATA_LIMIT_WINDOW_SEC,
)


@dataclass
class SimConfig:
    host: str = "127.0.0.1"
    port: int = 8090
    seed: int = 1
    symbols: int = 650
    weight_limit: int = DEFAULT_IP_WEIGHT_LIMIT_PER_MIN
    futures_data_limit: int = FUTURES_DATA_LIMIT_REQUESTS
    futures_data_window_sec: int = FUTURES_DATA_LIMIT_WINDOW_SEC
    # A 429'd client that sends this many more requests in the same window is banned (418).
    ban_after_429s: int = 10
    ban_base_sec: float = 120.0
    ban_max_sec: float = 3 * 24 * 3600.0
    # Random OI spikes/dumps per symbol per day (0 turns them off).
    event_rate_per_day: float = 0.3
    # Period at which the exchange samples open interest (the "time" field of openInterest).
    oi_sample_ms: int = 1000
    history_days: int = 31
    # Fault settings at start; the same keys as POST /sim/faults.
    latency_ms: float = 0.0
    latency_jitter_ms: float = 0.0
    error_rate: float = 0.0
    timeout_rate: float = 0.0
    truncate_rate: float = 0.0
    nonjson_rate: float = 0.0
    html_rate: float = 0.0
    # "SYMBOL=path.csv" pairs binding a symbol's OI to a recorded series.
    replay: list[str] = field(default_factory=list)
    replay_speed: float = 1.0
    stats_keep: int = 500
    # Market WebSocket streams (simulator.streams), served on the same port.
    ws_max_connection_sec: float = 86_400.0
    ws_ping_interval_sec: float = 180.0
    ws_liquidation_rate: float = 0.0005
    log_level: str = "WARNING"

    def fault_settings(self) -> dict[str, float]:
        return {name: getattr(self, name) for name in FAULT_KEYS}

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


FAULT_KEYS = (
    "latency_ms",
    "latency_jitter_ms",
    "error_rate",
    "timeout_rate",
    "truncate_rate",
    "nonjson_rate",
    "html_rate",
)


HELP = {
    "host": "address to listen on",
    "port": "port to listen on",
    "seed": "market seed (same seed + same UTC start day => same market)",
    "symbols": "number of symbols",
    "weight_limit": "REQUEST_WEIGHT per IP per calendar minute",
    "futures_data_limit": "/futures/data/* requests per IP per window",
    "futures_data_window_sec": "window of the /futures/data/* limit",
    "ban_after_429s": "429s in one window before a 418 ban",
    "ban_base_sec": "first ban length; doubles per repeat offence",
    "ban_max_sec": "longest ban",
    "event_rate_per_day": "random OI spikes/dumps per symbol per day (0 = off)",
    "oi_sample_ms": "open-interest sampling period (the openInterest 'time')",
    "history_days": "days of 5-minute history before the start day",
    "latency_ms": "added latency",
    "latency_jitter_ms": "added random latency, 0..jitter",
    "error_rate": "share of 5xx answers",
    "timeout_rate": "share of requests held without an answer",
    "truncate_rate": "share of truncated JSON bodies",
    "nonjson_rate": "share of non-JSON bodies",
    "html_rate": "share of HTML 502 pages",
    "replay": "SYMBOL=path.csv: bind a symbol's OI to a recorded series",
    "replay_speed": "replay speed factor (60 = an hour per minute)",
    "stats_keep": "openInterest request times kept per symbol",
    "ws_max_connection_sec": "stream connection life before the server closes it (Binance: 24 h)",
    "ws_ping_interval_sec": "server ping period on stream connections (Binance: 180 s)",
    "ws_liquidation_rate": "background liquidations per symbol per second, 0..1 (dumps add more)",
    "log_level": "logging level",
}


def _env_value(name: str, default: Any) -> Any:
    raw = os.environ.get("SIM_" + name.upper())
    if raw is None or raw == "":
        return default
    if isinstance(default, bool):
        return raw.lower() in ("1", "true", "yes", "on")
    if isinstance(default, int):
        return int(raw)
    if isinstance(default, float):
        return float(raw)
    if isinstance(default, list):
        return [item.strip() for item in raw.split(",") if item.strip()]
    return raw


def load_config(argv: list[str] | None = None) -> SimConfig:
    """Defaults, overridden by SIM_* environment variables, overridden by command-line flags."""
    defaults = SimConfig()
    env_values = {
        f.name: _env_value(f.name, getattr(defaults, f.name)) for f in dataclasses.fields(SimConfig)
    }
    parser = argparse.ArgumentParser(
        prog="python -m simulator", description="Local Binance USDⓈ-M futures simulator."
    )
    for f in dataclasses.fields(SimConfig):
        flag = "--" + f.name.replace("_", "-")
        value = env_values[f.name]
        if isinstance(value, list):
            parser.add_argument(
                flag,
                action="append",
                default=None,
                help=f"{HELP[f.name]} (repeatable; env SIM_{f.name.upper()}, comma-separated)",
            )
        else:
            parser.add_argument(
                flag,
                type=type(value),
                default=value,
                help=f"{HELP[f.name]}; default {value!r} (env SIM_{f.name.upper()})",
            )
    args = parser.parse_args(argv)
    values = vars(args)
    for name, value in env_values.items():
        if isinstance(value, list) and values[name] is None:
            values[name] = value
    return SimConfig(**values)
