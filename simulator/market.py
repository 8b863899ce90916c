"""The simulated market: symbols, open interest, mark price and 24h volume as functions of time.

Every value is a pure function of (seed, symbol, time) plus the injected events and overrides, so
the market does not depend on how often it is asked and two simulators with the same seed started
on the same UTC day agree. Open interest and log price follow random walks on a 5-minute grid that
starts `history_days` before the start day (OI mean-reverts slowly; random spikes and dumps are
jumps in the walk); between grid points the value is interpolated with a small deterministic
wiggle that vanishes at the grid points, so openInterestHist rows equal the live value at their
timestamps. The 24h quote volume is a slow deterministic oscillation around a heavy-tailed base.

Symbol metadata (filters, precisions, statuses) comes from a real exchangeInfo capture
(AlphaDogsResearch/Coinbase-Python @96360e4, 2025-12-24), base prices from a real premiumIndex
capture (qirong77/BitVigil @ff1c1a3, 2024-11-27); both live in data/market_template.json.gz.
"""

from __future__ import annotations

import copy
import csv
import gzip
import json
import math
import random
import zlib
from array import array
from bisect import bisect_right
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

MINUTE_MS = 60_000
GRID_MS = 300_000
HOUR_MS = 3_600_000
DAY_MS = 86_400_000
PERPETUAL_DELIVERY_MS = 4133404800000
CHUNK_STEPS = 1024
TEMPLATE_PATH = Path(__file__).parent / "data" / "market_template.json.gz"

OI_SIGMA_5M_MAJOR = 0.0018
OI_SIGMA_5M_ALT = 0.0030
PRICE_SIGMA_5M_MAJOR = 0.0014
PRICE_SIGMA_5M_ALT = 0.0030
OI_MEAN_REVERSION_PER_STEP = 1.0 / (3 * 288)
MAJORS = {"BTCUSDT", "ETHUSDT", "BTCUSDC", "ETHUSDC"}
TOP_VOLUME = (
    "BTCUSDT",
    "ETHUSDT",
    "SOLUSDT",
    "XRPUSDT",
    "DOGEUSDT",
    "1000PEPEUSDT",
    "SUIUSDT",
    "BNBUSDT",
    "ADAUSDT",
    "LINKUSDT",
    "ENAUSDT",
    "AVAXUSDT",
    "LTCUSDT",
    "WIFUSDT",
    "TRXUSDT",
    "AAVEUSDT",
)

_MASK64 = (1 << 64) - 1


def mix64(value: int) -> int:
    """splitmix64 finaliser: a fast deterministic hash of a 64-bit integer."""
    value = (value + 0x9E3779B97F4A7C15) & _MASK64
    value = ((value ^ (value >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    value = ((value ^ (value >> 27)) * 0x94D049BB133111EB) & _MASK64
    return value ^ (value >> 31)


def unit_noise(key: int, index: int) -> float:
    """Deterministic noise in [-1, 1) for (key, index)."""
    return mix64(key ^ mix64(index)) / 2**63 - 1.0


def fmt(value: float, decimals: int) -> str:
    return f"{value:.{decimals}f}"


def last_friday_0800(year: int, month: int) -> int:
    if month == 12:
        first_next = datetime(year + 1, 1, 1, tzinfo=UTC)
    else:
        first_next = datetime(year, month + 1, 1, tzinfo=UTC)
    day = first_next - timedelta(days=1)
    while day.weekday() != 4:
        day -= timedelta(days=1)
    return int(day.replace(hour=8).timestamp() * 1000)


def quarterly_expiries(now_ms: int) -> tuple[int, int, int]:
    """(previous, current, next) quarterly delivery times around now."""
    year = datetime.fromtimestamp(now_ms / 1000, tz=UTC).year
    expiries = [last_friday_0800(y, m) for y in (year - 1, year, year + 1) for m in (3, 6, 9, 12)]
    upcoming = next(i for i, ms in enumerate(expiries) if ms > now_ms)
    return expiries[upcoming - 1], expiries[upcoming], expiries[upcoming + 1]


def expiry_suffix(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%y%m%d")


@dataclass
class Event:
    at_ms: int
    duration_ms: int
    multiplier: float
    kind: str
    pct: float

    def factor(self, t_ms: int) -> float:
        if t_ms < self.at_ms:
            return 1.0
        if self.duration_ms <= 0 or t_ms >= self.at_ms + self.duration_ms:
            return self.multiplier
        return 1.0 + (self.multiplier - 1.0) * (t_ms - self.at_ms) / self.duration_ms

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "pct": self.pct, "at": self.at_ms, "duration": self.duration_ms}


@dataclass
class ReplaySeries:
    times: list[int]
    values: list[float]
    source: str

    def value_at(self, series_ms: float) -> float:
        idx = bisect_right(self.times, series_ms)
        if idx <= 0:
            return self.values[0]
        if idx >= len(self.times):
            return self.values[-1]
        t0, t1 = self.times[idx - 1], self.times[idx]
        v0, v1 = self.values[idx - 1], self.values[idx]
        return v0 + (v1 - v0) * (series_ms - t0) / (t1 - t0)


def load_replay_csv(path: str) -> ReplaySeries:
    """Read an OI series from a CSV of the kinds in shared/data (5m hist, 15m, 10s polls)."""
    times: list[int] = []
    values: list[float] = []
    with open(path, newline="") as handle:
        reader = csv.DictReader(handle)
        columns = [c.strip() for c in reader.fieldnames or []]
        time_col = next(
            c for c in ("timestamp_ms", "timestamp", "Datetime", "time") if c in columns
        )
        value_col = next(
            c
            for c in ("sumOpenInterest", "oi", "Open Interest", "openInterest", "open_interest")
            if c in columns
        )
        for row in reader:
            row = {(k or "").strip(): (v or "").strip() for k, v in row.items()}
            raw_time, raw_value = row.get(time_col, ""), row.get(value_col, "")
            if not raw_time or not raw_value:
                continue
            try:
                stamp = int(float(raw_time))
            except ValueError:
                stamp = int(datetime.fromisoformat(raw_time).replace(tzinfo=UTC).timestamp() * 1000)
            times.append(stamp)
            values.append(float(raw_value))
    if not times:
        raise ValueError(f"no OI rows in {path}")
    pairs = sorted(zip(times, values, strict=True))
    return ReplaySeries([p[0] for p in pairs], [p[1] for p in pairs], path)


@dataclass
class SymbolState:
    name: str
    info: dict[str, Any]
    key: int
    base_oi: float
    base_price: float
    base_quote_volume: float
    oi_sigma: float
    price_sigma: float
    volume_phases: tuple[float, float, float, float]
    supply: float
    quantity_precision: int
    price_precision: int
    frozen_at: int | None = None
    delisted: bool = False
    quote_volume_override: float | None = None
    events: list[Event] = field(default_factory=list)
    replay: ReplaySeries | None = None
    oi_grid: array = field(default_factory=lambda: array("f"))
    price_grid: array = field(default_factory=lambda: array("f"))
    walk_state: tuple[float, float] = (0.0, 0.0)

    @property
    def status(self) -> str:
        return self.info["status"]

    @property
    def is_delivery(self) -> bool:
        return (
            self.info["deliveryDate"] != PERPETUAL_DELIVERY_MS
            and "QUARTER" in self.info["contractType"]
        )


class Market:
    """All symbols and their values over time."""

    def __init__(
        self,
        seed: int,
        symbol_count: int,
        start_ms: int,
        history_days: int = 31,
        event_rate_per_day: float = 0.3,
        oi_sample_ms: int = 1000,
    ) -> None:
        self.seed = seed
        self.start_ms = start_ms
        self.anchor_ms = (start_ms // DAY_MS - history_days) * DAY_MS
        self.event_rate_per_day = event_rate_per_day
        self.oi_sample_ms = max(1, oi_sample_ms)
        self.replay_speed = 1.0
        with gzip.open(TEMPLATE_PATH, "rt") as handle:
            template = json.load(handle)
        self.assets: list[dict[str, Any]] = template["assets"]
        self._template_prices: dict[str, str] = template["markPrices"]
        self.symbols: dict[str, SymbolState] = {}
        self._exchange_info_cache: str | None = None
        self._ticker_cache: dict[str, tuple[int, dict[str, Any]]] = {}
        self._build(template["symbols"], symbol_count)

    # ----------------------------------------------------------------- universe
    def _quarterlies(self, quarter_templates: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
        """Delivery contracts re-dated around the start time: (delivering, current, next) per pair."""
        previous, current, following = quarterly_expiries(self.start_ms)
        contracts = []
        for pair in ("BTCUSDT", "ETHUSDT"):
            base = quarter_templates.get(pair)
            if base is None:
                continue
            for contract, status, expiry in (
                ("CURRENT_QUARTER DELIVERING", "DELIVERING", previous),
                ("CURRENT_QUARTER", "TRADING", current),
                ("NEXT_QUARTER", "TRADING", following),
            ):
                info = copy.deepcopy(base)
                info.update(
                    symbol=f"{pair}_{expiry_suffix(expiry)}",
                    contractType=contract,
                    status=status,
                    deliveryDate=expiry,
                    onboardDate=expiry - 185 * DAY_MS,
                )
                contracts.append(info)
        return contracts

    def _select(self, template_symbols: list[dict[str, Any]], count: int) -> list[dict[str, Any]]:
        """`count` symbols; the unusual kinds come first so that small markets still have them."""
        regular = [i for i in template_symbols if "QUARTER" not in i["contractType"]]
        quarter_templates: dict[str, dict[str, Any]] = {}
        for info in template_symbols:
            if "QUARTER" in info["contractType"]:
                quarter_templates.setdefault(info["pair"], info)
        quarterlies = self._quarterlies(quarter_templates)
        trading = [q for q in quarterlies if q["status"] == "TRADING"]
        delivering = [q for q in quarterlies if q["status"] != "TRADING"]

        def first_of(limit: int, **wanted: str) -> list[dict[str, Any]]:
            matches = [i for i in regular if all(i[k] == v for k, v in wanted.items())]
            return matches[:limit]

        priority = (
            [i for i in regular if i["symbol"] in MAJORS and i["quoteAsset"] == "USDT"]
            + trading[:2]
            + first_of(1, quoteAsset="BTC")
            + first_of(4, quoteAsset="USDC", status="TRADING")
            + first_of(4, status="SETTLING")
            + first_of(2, status="PENDING_TRADING", contractType="PERPETUAL")
            + trading[2:]
            + delivering
        )
        chosen: dict[str, dict[str, Any]] = {}
        for info in priority + regular:
            if len(chosen) >= count:
                break
            chosen.setdefault(info["symbol"], info)
        ordered = sorted(
            chosen.values(),
            key=lambda i: (
                (0, i["symbol"]) if i["symbol"] in MAJORS else (i["onboardDate"], i["symbol"])
            ),
        )
        alt_template = next((i for i in regular if i["symbol"] == "DOGEUSDT"), regular[-1])
        for extra in range(1, count - len(ordered) + 1):
            base = f"SIM{extra:04d}"
            info = copy.deepcopy(alt_template)
            info.update(
                symbol=f"{base}USDT",
                pair=f"{base}USDT",
                baseAsset=base,
                status="TRADING",
                contractType="PERPETUAL",
                onboardDate=self.anchor_ms - DAY_MS,
                deliveryDate=PERPETUAL_DELIVERY_MS,
            )
            ordered.append(info)
        return ordered

    def _build(self, template_symbols: list[dict[str, Any]], count: int) -> None:
        infos = self._select(template_symbols, count)
        rng = random.Random(f"universe:{self.seed}")
        usdt_trading = [
            i["symbol"]
            for i in infos
            if i["quoteAsset"] == "USDT"
            and i["contractType"] == "PERPETUAL"
            and i["status"] == "TRADING"
        ]
        majors = [s for s in TOP_VOLUME if s in usdt_trading]
        rest = [s for s in usdt_trading if s not in majors]
        rng.shuffle(rest)
        rank = {name: position + 1 for position, name in enumerate(majors + rest)}
        for info in infos:
            name = info["symbol"]
            key = mix64((self.seed << 32) ^ zlib.crc32(name.encode()))
            local = random.Random(f"{self.seed}:{name}")
            tick = float(
                next(f["tickSize"] for f in info["filters"] if f["filterType"] == "PRICE_FILTER")
            )
            tick = tick if tick > 0 else 10.0 ** -int(info["pricePrecision"])
            price = float(
                self._template_prices.get(name) or self._template_prices.get(info["pair"]) or 0
            )
            if price <= 0:
                price = tick * 10 ** local.uniform(3.3, 4.7)
            price *= math.exp(local.gauss(0.0, 0.15))
            pair_rank = rank.get(info["pair"], rank.get(name))
            if info["quoteAsset"] == "USDT" and pair_rank is not None:
                quote_volume = 1.5e10 * pair_rank**-1.4 * math.exp(local.gauss(0.0, 0.45))
                if info["contractType"] != "PERPETUAL":
                    quote_volume *= 0.02
            elif info["quoteAsset"] == "USDC":
                quote_volume = (
                    2e8 * local.paretovariate(1.2) ** -1 * math.exp(local.gauss(0.0, 1.0))
                )
            else:
                quote_volume = 300.0 * math.exp(local.gauss(0.0, 0.5))
            quote_volume = max(quote_volume, 50_000.0 if info["quoteAsset"] != "BTC" else 1.0)
            major = name in MAJORS or info["pair"] in MAJORS
            oi_notional = quote_volume * math.exp(local.gauss(math.log(0.5), 0.6))
            state = SymbolState(
                name=name,
                info=info,
                key=key,
                base_oi=oi_notional / price,
                base_price=price,
                base_quote_volume=quote_volume,
                oi_sigma=(OI_SIGMA_5M_MAJOR if major else OI_SIGMA_5M_ALT)
                * local.uniform(0.8, 1.25),
                price_sigma=(PRICE_SIGMA_5M_MAJOR if major else PRICE_SIGMA_5M_ALT)
                * local.uniform(0.8, 1.25),
                volume_phases=(
                    local.uniform(0, 2 * math.pi),
                    local.uniform(6, 48) * HOUR_MS,
                    local.uniform(0, 2 * math.pi),
                    local.uniform(1, 6) * HOUR_MS,
                ),
                supply=round(oi_notional / price * local.uniform(20, 400)),
                quantity_precision=int(info["quantityPrecision"]),
                price_precision=int(info["pricePrecision"]),
            )
            if info["status"] != "TRADING":
                state.frozen_at = self.anchor_ms
            self.symbols[name] = state

    # ----------------------------------------------------------------- lookup and overrides
    def get(self, name: str) -> SymbolState | None:
        state = self.symbols.get(name)
        if state is None or state.delisted:
            return None
        return state

    def listed(self) -> list[SymbolState]:
        return [s for s in self.symbols.values() if not s.delisted]

    def invalidate(self) -> None:
        self._exchange_info_cache = None
        self._ticker_cache.clear()

    def set_symbol(self, name: str, fields: dict[str, Any], now_ms: int) -> SymbolState:
        """Change a symbol's status, listing, 24h volume or OI level at runtime."""
        state = self.symbols[name]
        if "delisted" in fields:
            state.delisted = bool(fields["delisted"])
        if "status" in fields:
            status = str(fields["status"])
            state.info["status"] = status
            state.frozen_at = None if status == "TRADING" else now_ms
            if status == "SETTLING" and "deliveryDate" not in fields:
                state.info["deliveryDate"] = now_ms
        if "deliveryDate" in fields:
            state.info["deliveryDate"] = int(fields["deliveryDate"])
        if "quoteVolume" in fields:
            raw = fields["quoteVolume"]
            state.quote_volume_override = None if raw is None else float(raw)
        if "openInterest" in fields:
            target = float(fields["openInterest"])
            sample = self.oi_sample_time(now_ms)
            current = self.open_interest(state, sample)
            if current > 0:
                ratio = target / current
                state.events.append(Event(sample, 0, ratio, "set", (ratio - 1) * 100))
        self.invalidate()
        return state

    def restore_symbols(self, originals: dict[str, dict[str, Any]]) -> None:
        for name, info in originals.items():
            state = self.symbols[name]
            state.info = copy.deepcopy(info)
            state.delisted = False
            state.quote_volume_override = None
            state.events.clear()
            state.frozen_at = None if info["status"] == "TRADING" else self.anchor_ms
        self.invalidate()

    def inject_event(self, name: str, kind: str, pct: float, at_ms: int, duration_ms: int) -> Event:
        magnitude = abs(pct) / 100.0
        multiplier = 1.0 + magnitude if kind == "spike" else max(1e-6, 1.0 - magnitude)
        event = Event(at_ms, max(0, duration_ms), multiplier, kind, abs(pct))
        self.symbols[name].events.append(event)
        return event

    # ----------------------------------------------------------------- walks
    def _extend(self, state: SymbolState, step: int) -> None:
        """Generate the 5-minute grid up to and including `step` (chunks keep it deterministic)."""
        oi_grid, price_grid = state.oi_grid, state.price_grid
        p_event = self.event_rate_per_day / 288.0
        phi = 1.0 - OI_MEAN_REVERSION_PER_STEP
        oi_amp = state.oi_sigma * math.sqrt(12.0)
        price_amp = state.price_sigma * math.sqrt(12.0)
        x, y = state.walk_state
        while len(oi_grid) <= step:
            chunk = len(oi_grid) // CHUNK_STEPS
            rnd = random.Random(f"{self.seed}:{state.name}:{chunk}").random
            oi_chunk: list[float] = []
            price_chunk: list[float] = []
            for _ in range(CHUNK_STEPS):
                x = x * phi + (rnd() - 0.5) * oi_amp
                y += (rnd() - 0.5) * price_amp
                if rnd() < p_event:
                    size = 0.05 + 0.12 * rnd()
                    x += math.log(1.0 + size) if rnd() < 0.6 else math.log(1.0 - size)
                    y += (rnd() - 0.5) * 4 * price_amp
                oi_chunk.append(x)
                price_chunk.append(y)
            oi_grid.extend(oi_chunk)
            price_grid.extend(price_chunk)
        state.walk_state = (x, y)

    def _grid_position(self, state: SymbolState, t_ms: int) -> tuple[int, float, int]:
        if state.frozen_at is not None:
            t_ms = min(t_ms, state.frozen_at)
        offset = max(0, t_ms - self.anchor_ms)
        step, within = divmod(offset, GRID_MS)
        self._extend(state, step + 1)
        return step, within / GRID_MS, t_ms

    def oi_sample_time(self, now_ms: int) -> int:
        return now_ms - now_ms % self.oi_sample_ms

    def open_interest(self, state: SymbolState, t_ms: int) -> float:
        """Open interest in contracts at t (exactly the hist value on 5-minute boundaries)."""
        if state.replay is not None:
            series = state.replay
            played = series.times[0] + max(0.0, (t_ms - self.start_ms) * self.replay_speed)
            value = series.value_at(played)
        else:
            step, frac, t_eff = self._grid_position(state, t_ms)
            grid = state.oi_grid
            log_value = grid[step] + (grid[step + 1] - grid[step]) * frac
            if frac:
                wiggle = unit_noise(state.key, t_eff // self.oi_sample_ms)
                log_value += 0.5 * state.oi_sigma * math.sin(math.pi * frac) * wiggle
            value = state.base_oi * math.exp(log_value)
        for event in state.events:
            value *= event.factor(t_ms)
        return value

    def mark_price(self, state: SymbolState, t_ms: int) -> float:
        step, frac, t_eff = self._grid_position(state, t_ms)
        grid = state.price_grid
        log_value = grid[step] + (grid[step + 1] - grid[step]) * frac
        if frac:
            wiggle = unit_noise(state.key ^ 0x5A5A, t_eff // 1000)
            log_value += 0.5 * state.price_sigma * math.sin(math.pi * frac) * wiggle
        return state.base_price * math.exp(log_value)

    def quote_volume(self, state: SymbolState, t_ms: int) -> float:
        if state.quote_volume_override is not None:
            return state.quote_volume_override
        if state.status != "TRADING":
            return 0.0
        phase1, period1, phase2, period2 = state.volume_phases
        swing = 0.35 * math.sin(2 * math.pi * t_ms / period1 + phase1) + 0.2 * math.sin(
            2 * math.pi * t_ms / period2 + phase2
        )
        return state.base_quote_volume * math.exp(swing)

    def warm(self, state: SymbolState, now_ms: int) -> None:
        self._grid_position(state, now_ms + GRID_MS)

    # ----------------------------------------------------------------- payloads
    def exchange_info_symbols_json(self) -> str:
        if self._exchange_info_cache is None:
            self._exchange_info_cache = json.dumps(
                [s.info for s in self.listed()], separators=(",", ":"), ensure_ascii=False
            )
        return self._exchange_info_cache

    def open_interest_payload(self, state: SymbolState, now_ms: int) -> dict[str, Any]:
        sample = self.oi_sample_time(now_ms)
        value = self.open_interest(state, sample)
        return {
            "symbol": state.name,
            "openInterest": fmt(value, state.quantity_precision),
            "time": sample,
        }

    def ticker_payload(self, state: SymbolState, now_ms: int) -> dict[str, Any]:
        second = now_ms - now_ms % 1000
        cached = self._ticker_cache.get(state.name)
        if cached is not None and cached[0] == second:
            return cached[1]
        close_time = second if state.status == "TRADING" else (state.frozen_at or second)
        open_time = close_time - DAY_MS
        last = self.mark_price(state, close_time)
        opened = self.mark_price(state, open_time)
        high, low = max(last, opened), min(last, opened)
        first_step = max(0, (open_time - self.anchor_ms) // GRID_MS + 1)
        last_step = max(0, (close_time - self.anchor_ms) // GRID_MS)
        grid = state.price_grid
        if last_step > first_step:
            window = grid[first_step : last_step + 1]
            high = max(high, state.base_price * math.exp(max(window)))
            low = min(low, state.base_price * math.exp(min(window)))
        quote_volume = self.quote_volume(state, close_time)
        weighted = (last + opened + high + low) / 4.0
        volume = quote_volume / weighted if weighted > 0 else 0.0
        trade_notional = 900.0 if state.info["quoteAsset"] != "BTC" else 0.02
        count = int(quote_volume / trade_notional)
        last_id = 10_000_000 + (state.key % 5_000_000_000) + (close_time - self.anchor_ms) // 50
        pp, qp = state.price_precision, state.quantity_precision
        payload = {
            "symbol": state.name,
            "priceChange": fmt(last - opened, pp),
            "priceChangePercent": fmt((last / opened - 1) * 100 if opened else 0.0, 3),
            "weightedAvgPrice": fmt(weighted, pp),
            "lastPrice": fmt(last, pp),
            "lastQty": fmt(
                max(10**-qp, round(abs(unit_noise(state.key, second)) * 5000 / last, qp)), qp
            ),
            "openPrice": fmt(opened, pp),
            "highPrice": fmt(high, pp),
            "lowPrice": fmt(low, pp),
            "volume": fmt(volume, qp),
            "quoteVolume": fmt(quote_volume, 2),
            "openTime": open_time,
            "closeTime": close_time,
            "firstId": last_id - count + 1 if count else last_id,
            "lastId": last_id,
            "count": count,
        }
        self._ticker_cache[state.name] = (second, payload)
        return payload

    def premium_index_payload(self, state: SymbolState, now_ms: int) -> dict[str, Any]:
        second = now_ms - now_ms % 1000
        mark = self.mark_price(state, second)
        basis = 0.0004 * unit_noise(state.key ^ 0x77, second // 5000)
        index = mark * (1 - basis)
        settle = mark * (1 - 0.5 * basis)
        if state.is_delivery:
            funding, interest, next_funding = "0.00000000", "0.00000000", 0
        else:
            funding_period = 8 * HOUR_MS
            period = second // funding_period
            rate = 0.0001 + 0.00025 * unit_noise(
                state.key ^ 0x33, period * 97 + second // 60_000 // 10
            )
            funding = fmt(rate, 8)
            interest = "0.00010000" if state.info["quoteAsset"] == "USDT" else "0.00005000"
            next_funding = (period + 1) * funding_period
        return {
            "symbol": state.name,
            "markPrice": fmt(mark, 8),
            "indexPrice": fmt(index, 8),
            "estimatedSettlePrice": fmt(settle, 8),
            "lastFundingRate": funding,
            "interestRate": interest,
            "nextFundingTime": next_funding,
            "time": second,
        }

    def open_interest_hist(
        self,
        state: SymbolState,
        period_ms: int,
        limit: int,
        start_ms: int | None,
        end_ms: int | None,
        now_ms: int,
    ) -> list[dict[str, Any]]:
        earliest = max(self.anchor_ms, now_ms - 30 * DAY_MS)
        earliest += -earliest % period_ms
        latest = now_ms - now_ms % period_ms
        if end_ms is not None:
            latest = min(latest, end_ms - end_ms % period_ms)
        if start_ms is not None:
            first = max(earliest, start_ms + (-start_ms % period_ms))
            last = min(latest, first + (limit - 1) * period_ms)
        else:
            last = latest
            first = max(earliest, last - (limit - 1) * period_ms)
        rows = []
        t_ms = first
        while t_ms <= last:
            contracts = self.open_interest(state, t_ms)
            price = self.mark_price(state, t_ms)
            rows.append(
                {
                    "symbol": state.name,
                    "sumOpenInterest": fmt(contracts, 8),
                    "sumOpenInterestValue": fmt(contracts * price, 8),
                    "CMCCirculatingSupply": fmt(state.supply, 8),
                    "timestamp": t_ms,
                }
            )
            t_ms += period_ms
        return rows

    def klines(
        self,
        state: SymbolState,
        interval: str,
        limit: int,
        start_ms: int | None,
        end_ms: int | None,
        now_ms: int,
    ) -> list[list[Any]]:
        first_ms = max(self.anchor_ms, state.info["onboardDate"])
        opens = kline_open_times(interval, limit, start_ms, end_ms, now_ms, first_ms)
        rows: list[list[Any]] = []
        pp, qp = state.price_precision, state.quantity_precision
        for open_time, close_time in opens:
            sample_end = min(close_time, now_ms)
            points = [open_time + (sample_end - open_time) * i // 4 for i in range(5)]
            prices = [self.mark_price(state, p) for p in points]
            span_days = (close_time + 1 - open_time) / DAY_MS
            quote_volume = (
                self.quote_volume(state, open_time)
                * span_days
                * (1 + 0.3 * unit_noise(state.key ^ 0x99, open_time // MINUTE_MS))
            )
            if sample_end < close_time:
                quote_volume *= max(0.0, (sample_end - open_time) / (close_time - open_time))
            average = sum(prices) / len(prices)
            volume = quote_volume / average if average else 0.0
            taker = 0.5 + 0.1 * unit_noise(state.key ^ 0x11, open_time // MINUTE_MS)
            trades = int(quote_volume / 900.0)
            rows.append(
                [
                    open_time,
                    fmt(prices[0], pp),
                    fmt(max(prices), pp),
                    fmt(min(prices), pp),
                    fmt(prices[-1], pp),
                    fmt(volume, qp),
                    close_time,
                    fmt(quote_volume, 5),
                    trades,
                    fmt(volume * taker, qp),
                    fmt(quote_volume * taker, 5),
                    "0",
                ]
            )
        return rows


INTERVAL_MS = {
    "1m": MINUTE_MS,
    "3m": 3 * MINUTE_MS,
    "5m": 5 * MINUTE_MS,
    "15m": 15 * MINUTE_MS,
    "30m": 30 * MINUTE_MS,
    "1h": HOUR_MS,
    "2h": 2 * HOUR_MS,
    "4h": 4 * HOUR_MS,
    "6h": 6 * HOUR_MS,
    "8h": 8 * HOUR_MS,
    "12h": 12 * HOUR_MS,
    "1d": DAY_MS,
    "3d": 3 * DAY_MS,
    "1w": 7 * DAY_MS,
}
KLINE_INTERVALS = (*INTERVAL_MS, "1M")
HIST_PERIODS = {
    p: INTERVAL_MS[p] for p in ("5m", "15m", "30m", "1h", "2h", "4h", "6h", "12h", "1d")
}
WEEK_OFFSET_MS = 4 * DAY_MS


def _month_start(t_ms: int, shift: int = 0) -> int:
    moment = datetime.fromtimestamp(t_ms / 1000, tz=UTC)
    index = moment.year * 12 + moment.month - 1 + shift
    return int(datetime(index // 12, index % 12 + 1, 1, tzinfo=UTC).timestamp() * 1000)


def _align(interval: str, t_ms: int) -> int:
    if interval == "1M":
        return _month_start(t_ms)
    size = INTERVAL_MS[interval]
    offset = WEEK_OFFSET_MS if interval == "1w" else 0
    return t_ms - (t_ms - offset) % size


def _next_open(interval: str, open_ms: int) -> int:
    if interval == "1M":
        return _month_start(open_ms, 1)
    return open_ms + INTERVAL_MS[interval]


def _previous_open(interval: str, open_ms: int) -> int:
    if interval == "1M":
        return _month_start(open_ms, -1)
    return open_ms - INTERVAL_MS[interval]


def kline_open_times(
    interval: str,
    limit: int,
    start_ms: int | None,
    end_ms: int | None,
    now_ms: int,
    first_ms: int = 0,
) -> list[tuple[int, int]]:
    """(openTime, closeTime) pairs as Binance picks them for startTime/endTime/limit.

    No candle opens before `first_ms` (the listing, or here the start of the simulated history).
    """
    last_open = _align(interval, min(now_ms, end_ms) if end_ms is not None else now_ms)
    opens: list[int] = []
    if start_ms is not None:
        start_ms = max(start_ms, first_ms)
        current = _align(interval, start_ms)
        if current < start_ms:
            current = _next_open(interval, current)
        while current <= last_open and len(opens) < limit:
            opens.append(current)
            current = _next_open(interval, current)
    else:
        current = last_open
        while len(opens) < limit and current >= first_ms:
            opens.append(current)
            current = _previous_open(interval, current)
        opens.reverse()
    return [(o, _next_open(interval, o) - 1) for o in opens]
