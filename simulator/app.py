"""Request handling: Binance endpoints, rate limits, faults and the /sim/* control API."""

from __future__ import annotations

import copy
import json
import logging
import re
import time
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from exchange.weights import is_futures_data, request_weight
from simulator.config import FAULT_KEYS, SimConfig
from simulator.faults import (
    HTML_502,
    NON_JSON_BODY,
    SERVER_ERRORS,
    FaultPlan,
    Faults,
    Tamper,
)
from simulator.limits import RateLimiter, Verdict
from simulator.market import (
    HIST_PERIODS,
    KLINE_INTERVALS,
    Market,
    SymbolState,
    load_replay_csv,
)
from simulator.streams import StreamHub, StreamSettings

log = logging.getLogger("simulator")

JSON_TYPE = b"application/json"
HTML_TYPE = b"text/html"
SYMBOL_PATTERN = re.compile(r"^[\w\-.]{1,50}$")
LOWER_CASE = re.compile(r"[a-z]")
NOT_FOUND_HTML = (
    b'<!DOCTYPE html><html lang="en"><head><meta charset="UTF-8" /><title>Binance</title></head>'
    b'<body><div class="not-fount-container"><div class="not-fount-tips">'
    b'<span class="not-fount-tips-bold">404</span> Sorry! The page you\xe2\x80\x99re looking for '
    b"cannot be found.</div></div></body></html>"
)


def now_ms() -> int:
    return time.time_ns() // 1_000_000


class ApiError(Exception):
    def __init__(self, code: int, msg: str, status: int = 400) -> None:
        super().__init__(msg)
        self.code = code
        self.msg = msg
        self.status = status


@dataclass
class Response:
    status: int
    body: bytes
    content_type: bytes = JSON_TYPE
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    delay_sec: float = 0.0
    hold: bool = False


def dumps(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def error_body(code: int, msg: str) -> bytes:
    return dumps({"code": code, "msg": msg})


class Params:
    """Query parameters with Binance's validation errors."""

    def __init__(self, query: str) -> None:
        self.values: dict[str, str] = {}
        self.read: set[str] = set()
        self.error: ApiError | None = None
        for key, value in parse_qsl(query, keep_blank_values=True):
            if key in self.values:
                self.error = ApiError(-1101, "Duplicate values for a parameter detected.")
            self.values[key] = value

    def text(self, name: str, required: bool = False) -> str | None:
        self.read.add(name)
        value = self.values.get(name)
        if value is None or value == "":
            if required:
                raise ApiError(
                    -1102,
                    f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed.",
                )
            if value == "":
                raise ApiError(-1105, f"Parameter '{name}' was empty.")
            return None
        return value

    def integer(self, name: str, required: bool = False) -> int | None:
        raw = self.text(name, required)
        if raw is None:
            return None
        if not re.fullmatch(r"-?[0-9]{1,20}", raw):
            raise ApiError(
                -1100,
                f"Illegal characters found in parameter '{name}'; legal range is '^-?[0-9]{{1,20}}$'.",
            )
        return int(raw)

    def finish(self) -> None:
        unread = [k for k in self.values if k not in self.read]
        if unread:
            raise ApiError(
                -1104,
                f"Not all sent parameters were read; read '{len(self.values) - len(unread)}' parameter(s) "
                f"but was sent '{len(self.values)}'.",
            )


class Stats:
    def __init__(self, keep: int) -> None:
        self.keep = keep
        self.reset()

    def reset(self) -> None:
        self.oi_times: dict[str, deque[int]] = {}
        self.status_counts: dict[int, int] = defaultdict(int)
        self.total = 0
        self.started_ms = now_ms()

    def record_oi(self, symbol: str, at_ms: int) -> None:
        times = self.oi_times.get(symbol)
        if times is None:
            times = self.oi_times[symbol] = deque(maxlen=self.keep)
        times.append(at_ms)


Handler = Callable[[Params, int], Any]


class SimulatorApp:
    """Everything except the socket layer; `handle` maps one HTTP request to one Response."""

    def __init__(self, config: SimConfig, clock: Callable[[], int] = now_ms) -> None:
        self.config = config
        self.clock = clock
        self.start_ms = clock()
        self.market = Market(
            seed=config.seed,
            symbol_count=config.symbols,
            start_ms=self.start_ms,
            history_days=config.history_days,
            event_rate_per_day=config.event_rate_per_day,
            oi_sample_ms=config.oi_sample_ms,
        )
        self.market.replay_speed = config.replay_speed
        for spec in config.replay:
            symbol, _, path = spec.partition("=")
            state = self.market.symbols.get(symbol.strip())
            if state is None:
                raise SystemExit(f"--replay: unknown symbol {symbol!r}")
            state.replay = load_replay_csv(path.strip())
        self._original_infos = {
            name: copy.deepcopy(s.info) for name, s in self.market.symbols.items()
        }
        self.limiter = RateLimiter(
            weight_limit=config.weight_limit,
            data_limit=config.futures_data_limit,
            data_window_sec=config.futures_data_window_sec,
            ban_after_429s=config.ban_after_429s,
            ban_base_sec=config.ban_base_sec,
            ban_max_sec=config.ban_max_sec,
        )
        self.faults = self._initial_faults()
        self.tampers: list[Tamper] = []
        self.stats = Stats(config.stats_keep)
        self.streams = StreamHub(
            self.market,
            StreamSettings(
                max_connection_sec=config.ws_max_connection_sec,
                ping_interval_sec=config.ws_ping_interval_sec,
                liquidation_rate=config.ws_liquidation_rate,
            ),
        )
        self.routes: dict[str, Handler] = {
            "/fapi/v1/ping": self.ping,
            "/fapi/v1/time": self.time,
            "/fapi/v1/exchangeInfo": self.exchange_info,
            "/fapi/v1/ticker/24hr": self.ticker_24hr,
            "/fapi/v1/openInterest": self.open_interest,
            "/fapi/v1/premiumIndex": self.premium_index,
            "/futures/data/openInterestHist": self.open_interest_hist,
            "/fapi/v1/klines": self.klines,
        }

    def _initial_faults(self) -> Faults:
        faults = Faults(seed=self.config.seed)
        faults.update(self.config.fault_settings())
        return faults

    # ----------------------------------------------------------------- dispatch
    def handle(self, method: str, path: str, query: str, body: bytes, ip: str) -> Response:
        if path.startswith("/sim/"):
            return self.control(method, path, query, body)
        now = self.clock()
        handler = self.routes.get(path)
        self.stats.total += 1
        ip_state = self.limiter.state(ip)
        ip_state.requests += 1
        ip_state.endpoints[path] += 1
        if handler is None or method not in ("GET", "HEAD"):
            weight_used = self.limiter.current_weight(ip, now)
            response = Response(404, NOT_FOUND_HTML, HTML_TYPE)
        else:
            params = Params(query)
            if (
                path == "/fapi/v1/openInterest"
                and params.values.get("symbol") in self.market.symbols
            ):
                self.stats.record_oi(params.values["symbol"], now)
            verdict = self.limiter.check(
                ip, request_weight(path, params.values), is_futures_data(path), now
            )
            weight_used = verdict.weight_used
            if verdict.status != 200:
                response = self._limit_response(verdict, ip)
            elif tamper := self._tamper_for(path, params):
                response = self._tampered_response(tamper, handler, params, now)
            else:
                plan = self.faults.plan(path, ip)
                response = self._fault_response(plan, handler, params, now) if plan else None
                response = response or self._serve(handler, params, now)
                if plan is not None:
                    response.delay_sec = plan.delay_sec
        response.headers.append((b"x-mbx-used-weight-1m", str(weight_used).encode()))
        self.stats.status_counts[response.status] += 1
        return response

    def _serve(self, handler: Handler, params: Params, now: int) -> Response:
        try:
            if params.error is not None:
                raise params.error
            payload = handler(params, now)
            params.finish()
        except ApiError as exc:
            return Response(exc.status, error_body(exc.code, exc.msg))
        return Response(200, payload if isinstance(payload, bytes) else dumps(payload))

    def _limit_response(self, verdict: Verdict, ip: str) -> Response:
        headers = [(b"retry-after", str(verdict.retry_after_sec).encode())]
        if verdict.status == 418:
            msg = (
                f"Way too many requests; IP({ip}) banned until {verdict.banned_until}. "
                "Please use the websocket for live updates to avoid bans."
            )
            return Response(418, error_body(-1003, msg), headers=headers)
        if verdict.reason == "futures_data":
            msg = (
                f"Too many requests; current limit of IP({ip}) is {self.limiter.data_limit} requests per "
                f"{self.limiter.data_window_ms // 60000} minutes. Please use the websocket for live updates "
                "to avoid polling the API."
            )
        else:
            msg = (
                f"Too many requests; current limit of IP({ip}) is {self.limiter.weight_limit} requests per "
                "minute. Please use the websocket for live updates to avoid polling the API."
            )
        return Response(429, error_body(-1003, msg), headers=headers)

    def _fault_response(
        self, plan: FaultPlan, handler: Handler, params: Params, now: int
    ) -> Response | None:
        if plan.kind == "timeout":
            return Response(0, b"", hold=True)
        if plan.kind == "error":
            return Response(plan.status, SERVER_ERRORS.get(plan.status, SERVER_ERRORS[503]))
        if plan.kind == "html":
            return Response(502, HTML_502, HTML_TYPE)
        if plan.kind == "nonjson":
            return Response(200, NON_JSON_BODY, b"text/plain")
        if plan.kind == "truncate":
            response = self._serve(handler, params, now)
            response.body = response.body[: max(1, len(response.body) // 2)]
            return response
        return None

    def _tamper_for(self, path: str, params: Params) -> Tamper | None:
        symbol = params.values.get("symbol")
        return next((t for t in self.tampers if t.matches(path, symbol)), None)

    def _tampered_response(
        self, tamper: Tamper, handler: Handler, params: Params, now: int
    ) -> Response:
        tamper.used()
        headers = [(k.lower().encode(), v.encode()) for k, v in tamper.headers.items()]
        if tamper.status or tamper.body is not None:
            body = (tamper.body or "").encode()
            return Response(tamper.status or 200, body, headers=headers)
        response = self._serve(handler, params, now)
        if response.status == 200:
            response.body = dumps(tamper.rewrite(json.loads(response.body), now))
        response.headers.extend(headers)
        return response

    # ----------------------------------------------------------------- endpoints
    def _symbol(self, params: Params, required: bool) -> SymbolState | None:
        name = params.text("symbol", required)
        if name is None:
            return None
        if not SYMBOL_PATTERN.match(name) or LOWER_CASE.search(name):
            raise ApiError(
                -1100,
                "Illegal characters found in parameter 'symbol'; legal range is '^[\\w\\-._&&[^a-z]]{1,50}$'.",
            )
        state = self.market.get(name)
        if state is None:
            raise ApiError(-1121, "Invalid symbol.")
        return state

    def ping(self, params: Params, now: int) -> Any:
        return b"{}"

    def time(self, params: Params, now: int) -> Any:
        return {"serverTime": now}

    def exchange_info(self, params: Params, now: int) -> Any:
        rate_limits = [
            {
                "rateLimitType": "REQUEST_WEIGHT",
                "interval": "MINUTE",
                "intervalNum": 1,
                "limit": self.limiter.weight_limit,
            },
            {"rateLimitType": "ORDERS", "interval": "MINUTE", "intervalNum": 1, "limit": 1200},
            {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 300},
        ]
        head = {
            "timezone": "UTC",
            "serverTime": now,
            "futuresType": "U_MARGINED",
            "rateLimits": rate_limits,
            "exchangeFilters": [],
            "assets": self.market.assets,
        }
        return (
            dumps(head)[:-1]
            + b',"symbols":'
            + self.market.exchange_info_symbols_json().encode()
            + b"}"
        )

    def ticker_24hr(self, params: Params, now: int) -> Any:
        state = self._symbol(params, required=False)
        if state is not None:
            return self.market.ticker_payload(state, now)
        return [
            self.market.ticker_payload(s, now)
            for s in self.market.listed()
            if s.status != "PENDING_TRADING"
        ]

    def open_interest(self, params: Params, now: int) -> Any:
        state = self._symbol(params, required=True)
        assert state is not None
        return self.market.open_interest_payload(state, now)

    def premium_index(self, params: Params, now: int) -> Any:
        state = self._symbol(params, required=False)
        if state is not None:
            return self.market.premium_index_payload(state, now)
        return [self.market.premium_index_payload(s, now) for s in self.market.listed()]

    def open_interest_hist(self, params: Params, now: int) -> Any:
        state = self._symbol(params, required=True)
        assert state is not None
        period = params.text("period", required=True)
        if period not in HIST_PERIODS:
            raise ApiError(
                -1102, "Mandatory parameter 'period' was not sent, was empty/null, or malformed."
            )
        limit = params.integer("limit")
        limit = 30 if limit is None else limit
        if limit <= 0:
            raise ApiError(-1130, "Data sent for parameter 'limit' is not valid.")
        limit = min(limit, 500)
        start, end = params.integer("startTime"), params.integer("endTime")
        if start is not None and end is not None and start > end:
            raise ApiError(-1023, "Start time is greater than end time.")
        return self.market.open_interest_hist(state, HIST_PERIODS[period], limit, start, end, now)

    def klines(self, params: Params, now: int) -> Any:
        state = self._symbol(params, required=True)
        assert state is not None
        interval = params.text("interval", required=True)
        if interval not in KLINE_INTERVALS:
            raise ApiError(-1120, "Invalid interval.")
        limit = params.integer("limit")
        limit = 500 if limit is None else limit
        if limit <= 0:
            raise ApiError(-1130, "Data sent for parameter 'limit' is not valid.")
        limit = min(limit, 1500)
        start, end = params.integer("startTime"), params.integer("endTime")
        if start is not None and end is not None and start > end:
            raise ApiError(-1023, "Start time is greater than end time.")
        return self.market.klines(state, interval, limit, start, end, now)

    # ----------------------------------------------------------------- control API
    def control(self, method: str, path: str, query: str, body: bytes) -> Response:
        try:
            data = json.loads(body) if body.strip() else {}
            if not isinstance(data, dict):
                raise ValueError("body must be a JSON object")
            result = self._control(method, path, dict(parse_qsl(query)), data)
        except LookupError as exc:
            return Response(404, dumps({"error": f"not found: {exc}"}))
        except (ValueError, TypeError) as exc:
            return Response(400, dumps({"error": str(exc)}))
        return Response(200, dumps(result))

    def _control(self, method: str, path: str, query: dict[str, str], data: dict[str, Any]) -> Any:
        now = self.clock()
        if path == "/sim/stats" and method == "GET":
            return self.stats_payload(query, now)
        if path == "/sim/reset" and method == "POST":
            self.reset()
            return {"ok": True}
        if path == "/sim/faults":
            if method in ("POST", "PATCH"):
                unknown = set(data) - {*FAULT_KEYS, "error_status", "paths", "ips", "remaining"}
                if unknown:
                    raise ValueError(f"unknown fault settings: {sorted(unknown)}")
                if method == "POST":
                    self.faults = self._initial_faults()
                self.faults.update(data)
            elif method == "DELETE":
                self.faults = Faults(seed=self.config.seed)
            return self.faults.as_dict()
        if path == "/sim/tampers":
            if method == "POST":
                self.tampers.append(Tamper.from_json(data))
            elif method == "DELETE":
                self.tampers.clear()
            return [tamper.as_dict() for tamper in self.tampers]
        if path.startswith("/sim/streams"):
            return self._streams_control(method, path, data)
        if path == "/sim/settings":
            if method == "POST":
                self._apply_settings(data)
            return self.settings_payload()
        if path == "/sim/ratelimit" and method == "POST":
            status = int(data.get("status", 429))
            if status not in (429, 418):
                raise ValueError("status must be 429 or 418")
            until = self.limiter.force(data.get("ip"), status, float(data.get("seconds", 60)), now)
            return {"status": status, "ip": data.get("ip"), "until": until}
        if path == "/sim/events":
            if method == "POST":
                return self._inject(data, now)
            return {
                name: [e.as_dict() for e in s.events]
                for name, s in self.market.symbols.items()
                if s.events
            }
        if path.startswith("/sim/symbols/"):
            name = path[len("/sim/symbols/") :]
            state = self.market.symbols.get(name)
            if state is None:
                raise LookupError(name)
            if method == "POST":
                allowed = {"status", "quoteVolume", "delisted", "deliveryDate", "openInterest"}
                unknown = set(data) - allowed
                if unknown:
                    raise ValueError(f"unknown symbol fields: {sorted(unknown)}")
                self.market.set_symbol(name, data, now)
            return self.symbol_payload(state, now)
        if path == "/sim/symbols" and method == "GET":
            return [self.symbol_payload(s, now) for s in self.market.symbols.values()]
        raise LookupError(f"{method} {path}")

    def _streams_control(self, method: str, path: str, data: dict[str, Any]) -> Any:
        hub = self.streams
        if path == "/sim/streams" and method == "GET":
            return hub.stats()
        if path == "/sim/streams/faults":
            if method == "POST":
                hub.settings = StreamSettings(**hub.start_settings.as_dict())
            if method in ("POST", "PATCH"):
                hub.settings.update(data)
            elif method == "DELETE":
                hub.settings = StreamSettings(**hub.start_settings.as_dict())
            return hub.settings.as_dict()
        if path == "/sim/streams/drop" and method == "POST":
            return {"dropped": hub.drop_all()}
        if path == "/sim/streams/liquidations" and method == "GET":
            return hub.liquidations_payload()
        raise LookupError(f"{method} {path}")

    def _inject(self, data: dict[str, Any], now: int) -> dict[str, Any]:
        name = str(data.get("symbol", ""))
        if name not in self.market.symbols:
            raise LookupError(name)
        kind = data.get("kind")
        if kind not in ("spike", "dump"):
            raise ValueError("kind must be spike or dump")
        pct = float(data.get("pct", 10))
        at = int(data.get("at") or self.market.oi_sample_time(now))
        duration = int(data.get("duration") or 0)
        event = self.market.inject_event(name, kind, pct, at, duration)
        return {"symbol": name, **event.as_dict()}

    def _apply_settings(self, data: dict[str, Any]) -> None:
        limiter_keys = {
            "weight_limit": "weight_limit",
            "futures_data_limit": "data_limit",
            "ban_after_429s": "ban_after_429s",
            "ban_base_sec": "ban_base_sec",
            "ban_max_sec": "ban_max_sec",
        }
        for key, value in data.items():
            if key in limiter_keys:
                current = getattr(self.limiter, limiter_keys[key])
                setattr(self.limiter, limiter_keys[key], type(current)(value))
            elif key == "futures_data_window_sec":
                self.limiter.data_window_ms = int(float(value) * 1000)
            else:
                raise ValueError(f"unknown setting {key!r}")

    def settings_payload(self) -> dict[str, Any]:
        limiter = self.limiter
        return {
            "weight_limit": limiter.weight_limit,
            "futures_data_limit": limiter.data_limit,
            "futures_data_window_sec": limiter.data_window_ms / 1000,
            "ban_after_429s": limiter.ban_after_429s,
            "ban_base_sec": limiter.ban_base_sec,
            "ban_max_sec": limiter.ban_max_sec,
            "seed": self.config.seed,
            "symbols": len(self.market.listed()),
            "start_ms": self.start_ms,
            "anchor_ms": self.market.anchor_ms,
        }

    def symbol_payload(self, state: SymbolState, now: int) -> dict[str, Any]:
        return {
            "symbol": state.name,
            "status": state.status,
            "contractType": state.info["contractType"],
            "quoteAsset": state.info["quoteAsset"],
            "delisted": state.delisted,
            "quoteVolume": f"{self.market.quote_volume(state, now):.2f}",
            "openInterest": f"{self.market.open_interest(state, self.market.oi_sample_time(now)):.8f}",
            "markPrice": f"{self.market.mark_price(state, now):.8f}",
            "replay": state.replay.source if state.replay else None,
            "events": [e.as_dict() for e in state.events],
        }

    def stats_payload(self, query: dict[str, str], now: int) -> dict[str, Any]:
        wanted_ip = query.get("ip")
        ips: dict[str, Any] = {}
        for ip, state in self.limiter.ips.items():
            if wanted_ip and ip != wanted_ip:
                continue
            weight = self.limiter.current_weight(ip, now)
            ips[ip] = {
                "weight_used": weight,
                "weight_last_60s": state.weight_in_last(now),
                "weight_max_60s": state.weight_max_sliding(),
                "futures_data_used": state.data_used,
                "requests": state.requests,
                "count_429": state.count_429,
                "count_418": state.count_418,
                "banned_until": state.banned_until if state.banned_until > now else 0,
                "ban_offences": state.offences,
                "endpoints": dict(state.endpoints),
            }
        symbols = query.get("symbols")
        wanted = set(symbols.split(",")) if symbols else None
        return {
            "now": now,
            "started_ms": self.stats.started_ms,
            "total_requests": self.stats.total,
            "statuses": {str(k): v for k, v in self.stats.status_counts.items()},
            "ips": ips,
            "open_interest_times": {
                name: list(times)
                for name, times in self.stats.oi_times.items()
                if wanted is None or name in wanted
            },
            "faults": self.faults.as_dict(),
        }

    def reset(self) -> None:
        """Back to the settings given at start: no faults, events, overrides, counters or bans."""
        self.limiter.reset()
        self.limiter.weight_limit = self.config.weight_limit
        self.limiter.data_limit = self.config.futures_data_limit
        self.limiter.data_window_ms = int(self.config.futures_data_window_sec * 1000)
        self.limiter.ban_after_429s = self.config.ban_after_429s
        self.limiter.ban_base_sec = self.config.ban_base_sec
        self.limiter.ban_max_sec = self.config.ban_max_sec
        self.faults = self._initial_faults()
        self.tampers.clear()
        self.stats.reset()
        self.streams.reset()
        self.market.restore_symbols(self._original_infos)
