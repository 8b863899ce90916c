"""One Binance request budget shared by every process and host that leaves from the same IP.

The state lives in Redis and every decision is taken by one Lua script that reads the Redis
server clock (``TIME``), so all hosts agree on time and no two processes can spend the same
weight. Limits are GCRAs (generic cell rate algorithm): a request of weight ``w`` moves a
"theoretical arrival time" forward by ``w`` emission intervals, which spreads requests evenly
and allows only a small burst.

Checked atomically, per request:

* the shared back-off ("nobody sends before T"), set after a 429/418 or when the exchange's
  ``X-MBX-USED-WEIGHT-1M`` shows more weight used than this limiter admitted;
* the consumer's own weight/min (e.g. "poller" 2000; consumers without a configured budget get
  what the configured ones leave of the IP budget);
* the IP's weight/min, derived from the exchange's limit (2400, or what exchangeInfo reports)
  minus a safety margin and the burst;
* for ``/futures/data/*`` (weight 0) instead: their own 1000 requests / 5 min IP limit.

Window bound: a GCRA at rate R admits at most ``R·W/60 + max(burst, weight)`` in any span of
W seconds, so the IP rate is ``limit·(1 − margin) − burst`` and Binance's calendar-minute window
never sees more than ``limit·(1 − margin)`` plus one large request from this limiter.

Budgets are named by an egress id: workers that share an IP share one id; a host with its own
IP gets its own.
"""

import asyncio
import atexit
import math
import os
import threading
import time
import weakref
from collections.abc import Callable, Generator, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

import redis

from exchange.errors import BudgetExhausted, ExchangeUnavailable
from exchange.weights import (
    DEFAULT_IP_WEIGHT_LIMIT_PER_MIN,
    FUTURES_DATA_LIMIT_REQUESTS,
    FUTURES_DATA_LIMIT_WINDOW_SEC,
)

REASON_OK = 0
REASON_BACKOFF = 1
REASON_CONSUMER = 2
REASON_IP = 3
REASON_FUTURES_DATA = 4
REASON_NAMES = {
    REASON_BACKOFF: "backoff",
    REASON_CONSUMER: "consumer",
    REASON_IP: "ip",
    REASON_FUTURES_DATA: "futures_data",
}

# KEYS: 1 back-off-until (µs), 2 learned IP limit, 3 IP TAT, 4 consumer TAT, 5 futures-data TAT,
#       6 the egress's outcome counts (hash)
# ARGV: 1 weight, 2 futures_data (0/1), 3 default IP limit/min, 4 safety margin, 5 burst,
#       6 consumer rate/min (0 = remainder), 7 sum of configured consumer rates,
#       8 remainder floor (fraction of the IP rate), 9 futures-data interval (µs per request),
#       10 futures-data burst, 11 longest wait the caller accepts (µs),
#       12 stage: "consumer" books the consumer's own rate, "ip" the IP's, "both" both at once;
#          "auto" the consumer's and, when that slot is at most ARGV[13] µs away, the IP's too
#          in the same call (both at the later of their slots, as "both"); a request that must
#          wait longer for its consumer's slot books only that one, and the IP's after its wait
#          (a consumer waiting on its own share never holds an IP slot it cannot use yet)
#       13 the consumer wait up to which "auto" books the IP's slot at once (µs)
#       14.. pairs of outcome and count: answers this process has counted since its last call,
#          added to KEYS[6] (so counting an answer costs no round trip of its own)
# Returns {granted, wait_us, reason, ip_limit, now_us, ip_booked}. Granted: the request is
# booked and may leave in wait_us. Refused: the earliest possible slot is wait_us away, and
# nothing was booked. ip_booked: 1 when the IP level was booked.
ACQUIRE_LUA = """
for i = 14, #ARGV, 2 do redis.call('HINCRBY', KEYS[6], ARGV[i], ARGV[i + 1]) end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
-- A learned limit only ever lowers the configured one (set_ip_limit keeps it in the sane band).
local limit = math.min(tonumber(redis.call('GET', KEYS[2]) or ARGV[3]), tonumber(ARGV[3]))
local max_wait = tonumber(ARGV[11])

local backoff_until = tonumber(redis.call('GET', KEYS[1]) or '0')
if backoff_until > now then
  return {0, backoff_until - now, 1, limit, now, 0}
end

local levels = {}
local function add_level(key, interval, burst, cost, reason)
  local tat = tonumber(redis.call('GET', key) or '0')
  if tat < now then tat = now end
  local allow_at = tat + interval * cost - interval * math.max(burst, cost)
  if allow_at < now then allow_at = now end
  levels[#levels + 1] = {key, interval, cost, tat, allow_at, reason}
end

local function book(level, send_at)
  local new_tat = math.ceil(math.max(level[4], send_at) + level[2] * level[3])
  local ttl_ms = math.ceil((new_tat - now) / 1000) + 1000
  redis.call('SET', level[1], string.format('%.0f', new_tat), 'PX', ttl_ms)
end

local stage = ARGV[12]
local ip_booked = 0
if ARGV[2] == '1' then
  add_level(KEYS[5], tonumber(ARGV[9]), tonumber(ARGV[10]), 1, 4)
else
  local weight = tonumber(ARGV[1])
  if weight <= 0 then return {1, 0, 0, limit, now, 1} end
  local burst = tonumber(ARGV[5])
  local ip_rate = math.max(math.floor(limit * (1 - tonumber(ARGV[4]))) - burst, 1)
  local consumer_rate = tonumber(ARGV[6])
  if consumer_rate <= 0 then
    consumer_rate = math.max(ip_rate - tonumber(ARGV[7]), math.ceil(ip_rate * tonumber(ARGV[8])))
  end
  if stage == 'auto' then
    add_level(KEYS[4], 60000000 / consumer_rate, burst, weight, 2)
    local consumer_at = math.ceil(levels[1][5])
    if consumer_at - now > max_wait then return {0, consumer_at - now, 2, limit, now, 0} end
    if consumer_at - now > tonumber(ARGV[13]) then
      book(levels[1], consumer_at)
      return {1, consumer_at - now, 2, limit, now, 0}
    end
  elseif stage ~= 'ip' then
    add_level(KEYS[4], 60000000 / consumer_rate, burst, weight, 2)
  end
  if stage ~= 'consumer' then
    add_level(KEYS[3], 60000000 / ip_rate, burst, weight, 3)
    ip_booked = 1
  end
end

local send_at, reason = now, 0
for _, level in ipairs(levels) do
  if level[5] > send_at then send_at, reason = level[5], level[6] end
end
send_at = math.ceil(send_at)
if send_at - now > max_wait then return {0, send_at - now, reason, limit, now, 0} end

for _, level in ipairs(levels) do book(level, send_at) end
return {1, send_at - now, reason, limit, now, ip_booked}
"""

# KEYS: 1 back-off-until (µs), 2 back-off reason
# ARGV: 1 mode ("at": absolute µs, "in": µs from now, "minute": next minute + ARGV[2] µs),
#       2 value, 3 reason, 4 longest back-off (µs from now)
# Returns {until_us, now_us}; an earlier deadline never shortens a later one, and no deadline
# lies further than the longest back-off from now (a hostile "banned until" cannot stop us for
# years).
BACKOFF_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local mode = ARGV[1]
local value = tonumber(ARGV[2])
local target
if mode == 'at' then
  target = value
elseif mode == 'in' then
  target = now + value
else
  target = (math.floor(now / 60000000) + 1) * 60000000 + value
end
target = math.min(math.ceil(target), now + tonumber(ARGV[4]))
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
if current >= target then return {current, now} end
if target <= now then return {0, now} end
local ttl_ms = math.ceil((target - now) / 1000) + 1000
redis.call('SET', KEYS[1], string.format('%.0f', target), 'PX', ttl_ms)
redis.call('SET', KEYS[2], ARGV[3], 'PX', ttl_ms)
return {target, now}
"""


# Binance's longest ban: bans grow "from 2 minutes to 3 days" (API_FACTS.md, [GI]). No 429 or 418,
# whatever its Retry-After or "banned until", stops traffic for longer than this.
MAX_BACKOFF_SECONDS = 3 * 24 * 3600


# Answers counted in a process reach Redis with its next budget call, or within this many seconds.
OUTCOME_FLUSH_SEC = 1.0


def _default_consumer_budgets() -> dict[str, int]:
    return {"poller": 2000}


@dataclass(frozen=True)
class BudgetConfig:
    """How the IP's request weight is shared. Rates are Binance weight per minute."""

    egress_id: str = "default"
    ip_weight_limit: int = DEFAULT_IP_WEIGHT_LIMIT_PER_MIN
    safety_margin: float = 0.05
    burst: int = 20
    consumer_budgets: Mapping[str, int] = field(default_factory=_default_consumer_budgets)
    remainder_floor: float = 0.05
    futures_data_limit: int = FUTURES_DATA_LIMIT_REQUESTS
    futures_data_window_s: int = FUTURES_DATA_LIMIT_WINDOW_SEC
    futures_data_burst: int = 5
    pause_margin_s: float = 0.25
    # A request whose consumer's slot is at most this far books the IP's slot in the same call
    # (one round trip, not two): an IP slot held this briefly before use holds no one back.
    ip_join_max_wait_s: float = 0.1
    default_max_wait_s: float = 30.0
    # A REQUEST_WEIGHT limit reported by exchangeInfo is taken only when it lies within
    # [ip_limit_floor_ratio × ip_weight_limit, ip_weight_limit]: it may lower our limit, never
    # raise it, and an absurd 1/min is ignored rather than trusted to starve every consumer.
    ip_limit_floor_ratio: float = 0.25
    max_backoff_s: float = MAX_BACKOFF_SECONDS
    key_prefix: str = "volspike:binance"

    def __post_init__(self) -> None:
        if not 0 <= self.safety_margin < 1:
            raise ValueError("safety_margin must be in [0, 1)")
        if self.burst < 1 or self.futures_data_burst < 1:
            raise ValueError("bursts must be at least 1")
        if any(rate <= 0 for rate in self.consumer_budgets.values()):
            raise ValueError("consumer budgets must be positive")
        object.__setattr__(self, "consumer_budgets", dict(self.consumer_budgets))

    def ip_rate_per_min(self, ip_limit: int | None = None) -> int:
        """The IP-level GCRA rate: the exchange limit less the safety margin and the burst."""
        limit = ip_limit or self.ip_weight_limit
        return max(math.floor(limit * (1 - self.safety_margin)) - self.burst, 1)

    def consumer_rate_per_min(self, consumer: str, ip_limit: int | None = None) -> int:
        if consumer in self.consumer_budgets:
            return self.consumer_budgets[consumer]
        ip_rate = self.ip_rate_per_min(ip_limit)
        remainder = ip_rate - sum(self.consumer_budgets.values())
        return max(remainder, math.ceil(ip_rate * self.remainder_floor))

    def futures_data_rate(self) -> float:
        """Requests per second allowed on /futures/data/* after the safety margin."""
        usable = math.floor(self.futures_data_limit * (1 - self.safety_margin))
        return max(usable - self.futures_data_burst, 1) / self.futures_data_window_s

    def pause_threshold(self, ip_limit: int | None = None) -> int:
        """Used weight above which the exchange counts more than this limiter can have admitted."""
        limit = ip_limit or self.ip_weight_limit
        return math.floor(limit * (1 - self.safety_margin / 2))


@dataclass
class BudgetStats:
    """Per-process counters of the limiter's own work (Redis round trips) and of waiting."""

    acquired: int = 0
    redis_calls: int = 0
    redis_seconds: float = 0.0
    waited_seconds: float = 0.0
    refusals: dict[str, int] = field(default_factory=dict)

    @property
    def us_per_acquire(self) -> float:
        """Time spent talking to Redis per admitted request, in microseconds (sleeps excluded)."""
        return self.redis_seconds / self.acquired * 1e6 if self.acquired else 0.0

    @property
    def us_per_redis_call(self) -> float:
        return self.redis_seconds / self.redis_calls * 1e6 if self.redis_calls else 0.0


@dataclass(frozen=True, slots=True)
class Booking:
    """A request's first booking, made ahead with others in one round trip (``book_ahead``);
    its acquire starts from it instead of booking again."""

    answer: tuple[bool, int, int, int, bool]
    """The acquire script's answer: granted, wait (µs), reason, Redis time (µs), IP booked."""
    deadline: float
    """time.monotonic() past which the request is refused rather than kept waiting."""
    budget_s: float
    booked_at: float
    """time.monotonic() when the answer came: its wait runs from then, not from the acquire."""

    def wait_left(self) -> float:
        """Seconds until the booked slot, now."""
        return max(self.answer[1] / 1e6 - (time.monotonic() - self.booked_at), 0.0)


def _utc_from_us(epoch_us: float) -> datetime:
    return datetime.fromtimestamp(epoch_us / 1e6, tz=UTC)


class RequestBudget:
    """The shared budget of one egress IP, kept in Redis. One instance per process is enough."""

    def __init__(
        self,
        redis_client: redis.Redis,
        config: BudgetConfig | None = None,
        *,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.redis = redis_client
        self.config = config or BudgetConfig()
        self._sleep = sleep
        self._acquire_script = redis_client.register_script(ACQUIRE_LUA)
        self._backoff_script = redis_client.register_script(BACKOFF_LUA)
        self.ip_limit = self.config.ip_weight_limit
        self.stats = BudgetStats()
        base = f"{self.config.key_prefix}:{{{self.config.egress_id}}}"
        self.keys = {
            "backoff_until": f"{base}:backoff_until",
            "backoff_reason": f"{base}:backoff_reason",
            "ip_limit": f"{base}:ip_limit",
            "ip_tat": f"{base}:tat:ip",
            "futures_data_tat": f"{base}:tat:futures_data",
            "outcomes": f"{base}:outcomes",
        }
        self._consumer_tat_prefix = f"{base}:tat:consumer:"
        self._static_args_cache: dict[str, tuple[bytes, ...]] = {}
        self._ip_join_arg = str(round(self.config.ip_join_max_wait_s * 1e6)).encode()
        self._outcomes_lock = threading.Lock()
        self._outcomes_pending: dict[str, int] = {}
        self._outcomes_since = 0.0

    def _static_args(self, consumer: str) -> tuple[bytes, ...]:
        """The script's arguments 3 to 10 for ``consumer``: fixed by the frozen config, so
        formatted and encoded once per consumer instead of on every call."""
        args = self._static_args_cache.get(consumer)
        if args is None:
            cfg = self.config
            values = (
                cfg.ip_weight_limit,
                repr(cfg.safety_margin),
                cfg.burst,
                cfg.consumer_budgets.get(consumer, 0),
                sum(cfg.consumer_budgets.values()),
                repr(cfg.remainder_floor),
                repr(1e6 / cfg.futures_data_rate()),
                cfg.futures_data_burst,
            )
            args = tuple(str(value).encode() for value in values)
            self._static_args_cache[consumer] = args
        return args

    def _script_keys(self, consumer: str) -> list[str]:
        return [
            self.keys["backoff_until"],
            self.keys["ip_limit"],
            self.keys["ip_tat"],
            self._consumer_tat_prefix + consumer,
            self.keys["futures_data_tat"],
            self.keys["outcomes"],
        ]

    def _script_args(
        self, weight: int, consumer: str, futures_data: bool, max_wait_us: int, stage: str,
        outcomes: dict[str, int],
    ) -> list:  # fmt: skip
        return [
            weight,
            b"1" if futures_data else b"0",
            *self._static_args(consumer),
            max_wait_us,
            stage,
            self._ip_join_arg,
            *(item for pair in outcomes.items() for item in pair),
        ]

    def _answer_read(self, answer: list) -> tuple[bool, int, int, int, bool]:
        granted, wait_us, reason, ip_limit, now_us, ip_booked = answer
        self.ip_limit = int(ip_limit)
        return bool(granted), int(wait_us), int(reason), int(now_us), bool(ip_booked)

    def _book(
        self, weight: int, consumer: str, futures_data: bool, max_wait_us: int, stage: str = "both"
    ) -> tuple[bool, int, int, int, bool]:
        outcomes = self._outcomes_take()
        started = time.perf_counter()
        try:
            answer = self._acquire_script(
                keys=self._script_keys(consumer),
                args=self._script_args(
                    weight, consumer, futures_data, max_wait_us, stage, outcomes
                ),
            )
        except redis.RedisError as exc:
            self._outcomes_restore(outcomes)
            raise ExchangeUnavailable(f"request budget store unreachable: {exc}") from exc
        self.stats.redis_calls += 1
        self.stats.redis_seconds += time.perf_counter() - started
        return self._answer_read(answer)

    def book_ahead(
        self, count: int, weight: int, *, consumer: str = "default", max_wait: float | None = None
    ) -> list[Booking]:
        """The first booking of ``count`` requests of ``weight``, in one round trip: the same
        script as ``acquire``'s first step, run ``count`` times in a row (a pipeline, so as
        if the requests had come one after another). Give each to its ``acquire_async``
        (``booked``), which goes on from it: its wait, the IP's slot when that was not booked
        with the consumer's, a back-off begun meanwhile. (The poller books each tick's polls
        so: one round trip instead of one per poll.)"""
        if count <= 0:
            return []
        if weight < 0:
            raise ValueError("weight must be >= 0")
        budget_s = self.config.default_max_wait_s if max_wait is None else max_wait
        deadline = time.monotonic() + budget_s
        max_wait_us = max(int(budget_s * 1e6), 0)
        keys = self._script_keys(consumer)
        outcomes = self._outcomes_take()
        started = time.perf_counter()
        try:
            try:
                answers = self._book_pipeline(count, keys, weight, consumer, max_wait_us, outcomes)
            except redis.exceptions.NoScriptError:  # Redis lost its script cache (a restart)
                self.redis.script_load(ACQUIRE_LUA)
                answers = self._book_pipeline(count, keys, weight, consumer, max_wait_us, outcomes)
        except redis.RedisError as exc:
            self._outcomes_restore(outcomes)
            raise ExchangeUnavailable(f"request budget store unreachable: {exc}") from exc
        self.stats.redis_calls += 1
        self.stats.redis_seconds += time.perf_counter() - started
        booked_at = time.monotonic()
        return [
            Booking(self._answer_read(answer), deadline, budget_s, booked_at) for answer in answers
        ]

    def _book_pipeline(
        self, count: int, keys: list[str], weight: int, consumer: str, max_wait_us: int,
        outcomes: dict[str, int],
    ) -> list:  # fmt: skip
        # EVALSHA queued as is: a Script object in a pipeline costs a SCRIPT EXISTS round trip
        with self.redis.pipeline(transaction=False) as pipe:
            for n in range(count):
                args = self._script_args(weight, consumer, False, max_wait_us, "auto",
                                         outcomes if n == 0 else {})  # fmt: skip
                pipe.evalsha(self._acquire_script.sha, len(keys), *keys, *args)
            return pipe.execute()

    def acquire(
        self,
        weight: int,
        *,
        consumer: str = "default",
        futures_data: bool = False,
        max_wait: float | None = None,
    ) -> float:
        """Book the next slot for a request of ``weight``, sleep until it, return seconds waited.

        A request first books its consumer's own slot and sleeps until it; only then does it
        book the IP's slot. So a consumer waiting on its own (small) share never holds back the
        others at the IP level. (When the consumer's slot is at most ``ip_join_max_wait_s``
        away, both are booked in one Redis call: the common case costs one round trip, and one
        more to check for a back-off begun while it slept.) Within each level, slots are booked
        in arrival order across all processes, so a heavy request is not starved by light ones.
        ``futures_data`` requests (``/futures/data/*``) are charged one request against their
        own 5-minute limit instead of weight. Raises ``BudgetExhausted`` at once, without
        booking or sleeping, when a slot (or the end of a shared back-off) is further away than
        what is left of ``max_wait`` seconds (0 = fail fast; None = the configured default).
        """
        waited = 0.0
        for wait_s in self._acquire_steps(weight, consumer, futures_data, max_wait):
            self._sleep(wait_s)
            waited += wait_s
        return waited

    async def acquire_async(
        self,
        weight: int,
        *,
        consumer: str = "default",
        futures_data: bool = False,
        max_wait: float | None = None,
        booked: Booking | None = None,
    ) -> float:
        """``acquire`` for a coroutine on an event loop: the same bookings (short Redis calls,
        made as they are, in the loop's thread), its waits slept with ``asyncio.sleep``.
        ``booked``: its first booking, made by ``book_ahead`` (then ``max_wait`` is that
        call's)."""
        waited = 0.0
        steps = self._acquire_steps(weight, consumer, futures_data, max_wait, booked)
        for wait_s in steps:
            await asyncio.sleep(wait_s)
            waited += wait_s
        return waited

    def _acquire_steps(
        self,
        weight: int,
        consumer: str,
        futures_data: bool,
        max_wait: float | None,
        booked: Booking | None = None,
    ) -> Iterator[float]:
        """One acquire's bookings, in order; yields each wait (seconds) the caller sleeps before
        the next step (``acquire`` with ``time.sleep``, ``acquire_async`` with the loop's)."""
        if weight < 0:
            raise ValueError("weight must be >= 0")
        budget_s = self.config.default_max_wait_s if max_wait is None else max_wait
        deadline = time.monotonic() + budget_s
        if booked is not None:
            if futures_data:
                raise ValueError("book_ahead books no /futures/data/* request")
            deadline, budget_s = booked.deadline, booked.budget_s
        if futures_data:
            waited, _ = yield from self._acquire_stage(
                weight, consumer, True, "both", deadline, budget_s
            )
        else:
            waited, ip_booked = yield from self._acquire_stage(
                weight, consumer, False, "auto", deadline, budget_s,
                first=booked,
            )  # fmt: skip
            if not ip_booked:
                waited_ip, _ = yield from self._acquire_stage(
                    weight, consumer, False, "ip", deadline, budget_s
                )
                waited += waited_ip
        self.stats.acquired += 1
        self.stats.waited_seconds += waited

    def _acquire_stage(
        self,
        weight: int,
        consumer: str,
        futures_data: bool,
        stage: str,
        deadline: float,
        budget_s: float,
        first: Booking | None = None,
    ) -> Generator[float, None, tuple[float, bool]]:
        """Book ``stage`` (sleeping through a back-off that began meanwhile, then booking again),
        yielding each wait; return the seconds waited and whether the IP level is booked too.
        ``first``: the first booking, made ahead (``book_ahead``); its wait runs from when it was
        made (the caller may have slept towards it already)."""
        waited = 0.0
        while True:
            remaining_us = max(int((deadline - time.monotonic()) * 1e6), 0)
            if first is not None:
                granted, booked_wait_us, reason, now_us, ip_booked = first.answer
                wait_us = int(first.wait_left() * 1e6)
                first = None
            else:
                granted, wait_us, reason, now_us, ip_booked = self._book(
                    weight, consumer, futures_data, remaining_us, stage
                )
                booked_wait_us = wait_us
            wait_s = wait_us / 1e6
            name = REASON_NAMES.get(reason, "unknown")
            if not granted and (reason != REASON_BACKOFF or wait_us > remaining_us):
                self.stats.refusals[name] = self.stats.refusals.get(name, 0) + 1
                raise BudgetExhausted(
                    f"{name} limit of egress {self.config.egress_id!r} admits this "
                    f"{consumer!r} request in {wait_s:.3f}s, over the {remaining_us / 1e6:.3f}s "
                    f"left of the {budget_s:.3f}s allowed",
                    reason=name,
                    wait_seconds=wait_s,
                    retry_at=_utc_from_us(now_us + wait_us),
                )
            if wait_us:
                yield wait_s
                waited += wait_s
            if granted and stage == "auto" and not ip_booked:
                # The IP's slot is booked next, and that call sees a back-off begun meanwhile.
                return waited, ip_booked
            if granted and (not booked_wait_us or not self._backoff_active()):
                return waited, ip_booked
            if granted and ip_booked and stage == "auto":
                stage = "ip"  # a back-off began while waiting for the IP's slot: book it again

    def _backoff_active(self) -> bool:
        """Whether a back-off began while this process slept towards its booked slot."""
        started = time.perf_counter()
        try:
            until_raw = self.redis.get(self.keys["backoff_until"])
        except redis.RedisError as exc:
            raise ExchangeUnavailable(f"request budget store unreachable: {exc}") from exc
        self.stats.redis_calls += 1
        self.stats.redis_seconds += time.perf_counter() - started
        return until_raw is not None and float(until_raw) / 1e6 > time.time()

    def back_off(
        self,
        *,
        seconds: float | None = None,
        until: datetime | None = None,
        reason: str = "backoff",
    ) -> datetime | None:
        """Stop every process on this egress until ``until`` or for ``seconds`` (Redis clock).

        Returns the resulting back-off deadline (a later existing one is kept), or None when the
        time given is already past.
        """
        if (seconds is None) == (until is None):
            raise ValueError("give exactly one of seconds or until")
        longest_s = self.config.max_backoff_s
        if until is not None:
            # Clamped here too (the script clamps again on the Redis clock), so the float sent
            # to Lua stays finite and precise.
            latest = time.time() + longest_s + 60
            mode, value = "at", min(until.timestamp(), latest) * 1e6
        else:
            seconds = float(seconds)  # type: ignore[arg-type]
            if not math.isfinite(seconds):
                seconds = longest_s
            mode, value = "in", min(max(seconds, 0.0), longest_s) * 1e6
        return self._set_backoff(mode, value, reason)

    def pause_until_next_minute(self, reason: str = "used-weight") -> datetime | None:
        """Stop every process on this egress until the next minute boundary (Binance's window)."""
        return self._set_backoff("minute", self.config.pause_margin_s * 1e6, reason)

    def _set_backoff(self, mode: str, value: float, reason: str) -> datetime | None:
        until_us, _now_us = self._backoff_script(
            keys=[self.keys["backoff_until"], self.keys["backoff_reason"]],
            args=[mode, repr(float(value)), reason, repr(self.config.max_backoff_s * 1e6)],
        )
        return _utc_from_us(int(until_us)) if int(until_us) else None

    def record_outcome(self, outcome: str) -> None:
        """Count one answer (its HTTP status, or "timeout"/"connection_error") for this egress,
        across all processes: what /metrics reports as requests sent, 429s and 418s.

        A 2xx is counted in Redis with this budget's next acquire (no round trip of its own),
        or within OUTCOME_FLUSH_SEC by a background flush; any other answer at once."""
        with self._outcomes_lock:
            if not self._outcomes_pending:
                self._outcomes_since = time.monotonic()
            self._outcomes_pending[outcome] = self._outcomes_pending.get(outcome, 0) + 1
        if not outcome.startswith("2"):
            self.flush_outcomes()
        else:
            _outcome_flusher_watch(self)

    def flush_outcomes(self) -> None:
        """Write the answers counted here and not yet in Redis (never fails a request)."""
        outcomes = self._outcomes_take()
        if not outcomes:
            return
        try:
            with self.redis.pipeline(transaction=False) as pipe:
                for outcome, count in outcomes.items():
                    pipe.hincrby(self.keys["outcomes"], outcome, count)
                pipe.execute()
        except redis.RedisError:  # counting must never fail a request; kept for the next try
            self._outcomes_restore(outcomes)

    def _outcomes_take(self) -> dict[str, int]:
        with self._outcomes_lock:
            outcomes, self._outcomes_pending = self._outcomes_pending, {}
        return outcomes

    def _outcomes_restore(self, outcomes: dict[str, int]) -> None:
        if not outcomes:
            return
        with self._outcomes_lock:
            if not self._outcomes_pending:
                self._outcomes_since = time.monotonic()
            for outcome, count in outcomes.items():
                self._outcomes_pending[outcome] = self._outcomes_pending.get(outcome, 0) + count

    def _outcomes_due(self, now: float) -> bool:
        return bool(self._outcomes_pending) and now - self._outcomes_since >= OUTCOME_FLUSH_SEC

    def outcome_counts(self) -> dict[str, int]:
        self.flush_outcomes()
        raw = self.redis.hgetall(self.keys["outcomes"])
        return {(k.decode() if isinstance(k, bytes) else k): int(v) for k, v in raw.items()}

    def backoff_until(self) -> tuple[datetime, str] | None:
        """The active shared back-off deadline and its reason, if any."""
        until_raw, reason = self.redis.mget(self.keys["backoff_until"], self.keys["backoff_reason"])
        if until_raw is None:
            return None
        until = _utc_from_us(float(until_raw))
        if until <= datetime.now(tz=UTC):
            return None
        reason_text = reason.decode() if isinstance(reason, bytes) else reason
        return until, reason_text or "backoff"

    def clear_backoff(self) -> None:
        self.redis.delete(self.keys["backoff_until"], self.keys["backoff_reason"])

    def observe_used_weight(self, used_weight: int) -> bool:
        """Compare the exchange's ``X-MBX-USED-WEIGHT-1M`` with what this limiter can admit.

        This limiter alone never lets the minute counter pass ``pause_threshold``; above it some
        other program shares the IP (or the limiter lost its state), so everyone pauses until
        the minute resets. Returns True when it paused. Costs Redis nothing below the threshold.
        """
        if used_weight <= self.config.pause_threshold(self.ip_limit):
            return False
        self.pause_until_next_minute(reason=f"used-weight {used_weight}/{self.ip_limit}")
        return True

    def learned_ip_limit(self) -> int | None:
        """The REQUEST_WEIGHT limit learned from exchangeInfo for this egress (None: none yet)."""
        raw = self.redis.get(self.keys["ip_limit"])
        return int(raw) if raw is not None else None

    def accepted_ip_limit(self, reported: int) -> int | None:
        """The IP limit to use given the exchange's reported REQUEST_WEIGHT per minute: the
        smaller of the setting and the report, or None when the report lies below the sane band
        (ignored: a broken exchangeInfo must not starve every consumer for a day)."""
        configured = self.config.ip_weight_limit
        floor = math.ceil(configured * self.config.ip_limit_floor_ratio)
        if reported < floor:
            return None
        return min(configured, int(reported))

    def set_ip_limit(self, limit: int) -> int | None:
        """Record the exchange's REQUEST_WEIGHT per minute (from exchangeInfo) for all processes,
        within the sane band (see ``accepted_ip_limit``). Returns the limit now in force, or None
        when the report was ignored."""
        if limit <= 0:
            raise ValueError("limit must be positive")
        accepted = self.accepted_ip_limit(limit)
        if accepted is None:
            return None
        self.redis.set(self.keys["ip_limit"], accepted, ex=86_400)
        self.ip_limit = accepted
        return accepted

    def reset(self) -> None:
        """Forget all limiter state of this egress (tests and benchmarks)."""
        pattern = f"{self.config.key_prefix}:{{{self.config.egress_id}}}:*"
        keys = list(self.redis.scan_iter(match=pattern))
        if keys:
            self.redis.delete(*keys)


# --- the background flush of counted answers ------------------------------------------------------

_flusher_lock = threading.Lock()
_flusher_pid = 0
_flusher_budgets: "weakref.WeakSet[RequestBudget]" = weakref.WeakSet()


def _outcome_flusher_watch(budget: RequestBudget) -> None:
    """Have this process's flusher thread write ``budget``'s counted answers within
    OUTCOME_FLUSH_SEC when no acquire does it first (started once per process, after a fork
    too)."""
    global _flusher_pid
    if _flusher_pid == os.getpid() and budget in _flusher_budgets:
        return
    with _flusher_lock:
        _flusher_budgets.add(budget)
        if _flusher_pid != os.getpid():
            _flusher_pid = os.getpid()
            threading.Thread(target=_outcome_flusher, name="budget-outcomes", daemon=True).start()


def _outcome_flusher() -> None:
    while True:
        time.sleep(OUTCOME_FLUSH_SEC / 2)
        _outcomes_flush_all(due_only=True)


@atexit.register
def _outcomes_flush_all(due_only: bool = False) -> None:
    now = time.monotonic()
    for budget in list(_flusher_budgets):
        if not due_only or budget._outcomes_due(now):
            budget.flush_outcomes()


def _outcomes_forget_in_child() -> None:
    """A forked child starts with no counted answers: its parent writes its own."""
    for budget in list(_flusher_budgets):
        budget._outcomes_lock = threading.Lock()
        budget._outcomes_pending = {}


os.register_at_fork(after_in_child=_outcomes_forget_in_child)
