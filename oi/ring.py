"""Per-symbol open-interest ring buffers: one Redis sorted set per symbol.

Score = the exchange's sample time in ms; member = "<time_ms>:<open_interest>", then ":p<price>"
when the mark price at the sample is known and ":h" for a sample backfilled from
openInterestHist. Equal values at different times are both kept, while the same sample stored
twice collapses into one (readers also keep only the first member of a time).
Every append trims by age and renews a TTL, so symbols that leave the universe do not linger,
and never holds the future: a sample dated more than RING_MAX_AHEAD_MS ahead of the writer's
clock is not added, and members that far ahead are trimmed (one would freeze its symbol's
screener row and silence its alerts until that time comes).

The coarse ring (``oi:ring5m:<symbol>``, same member format) keeps the earliest sample of each
5-minute bucket for OI_COARSE_RING_WINDOW_SEC (25 h): what 4 h and 24 h windows read (oi.coarse).
It is written in the same round trip as the full-resolution ring, by a Lua script that keeps a
bucket's earliest member whatever order samples arrive in.
"""

import hashlib
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal

import redis

from oi.coarse import COARSE_BUCKET_MS

logger = logging.getLogger(__name__)

RING_KEY_PREFIX = "oi:ring:"
COARSE_RING_KEY_PREFIX = "oi:ring5m:"
# The last guard (samples are refused at 10 s ahead where they come in): clocks of the processes
# writing may differ a little, never by a minute.
RING_MAX_AHEAD_MS = 60_000
LAST_SAMPLE_KEY = "oi:last_sample_ms"


@dataclass(frozen=True, slots=True)
class RingSample:
    time_ms: int
    open_interest: Decimal
    backfilled: bool = False
    mark_price: Decimal | None = None


def ring_key(symbol: str) -> str:
    return f"{RING_KEY_PREFIX}{symbol}"


def coarse_ring_key(symbol: str) -> str:
    return f"{COARSE_RING_KEY_PREFIX}{symbol}"


# KEYS[1]: the coarse ring; ARGV: bucket ms, cutoff ms, future ms, ttl ms, then (time, member)
# pairs. Each sample replaces its bucket's member only when it is earlier (or the bucket is
# empty), then the ring is trimmed by age and the future and its TTL renewed.
_COARSE_APPEND_LUA = """
local key = KEYS[1]
local bucket = tonumber(ARGV[1])
for i = 5, #ARGV, 2 do
  local t = tonumber(ARGV[i])
  local low = t - (t % bucket)
  local high = low + bucket - 1
  local first = redis.call('ZRANGEBYSCORE', key, low, high, 'WITHSCORES', 'LIMIT', 0, 1)
  if #first == 0 then
    redis.call('ZADD', key, t, ARGV[i + 1])
  elseif tonumber(first[2]) > t then
    redis.call('ZREMRANGEBYSCORE', key, low, high)
    redis.call('ZADD', key, t, ARGV[i + 1])
  end
end
redis.call('ZREMRANGEBYSCORE', key, '-inf', '(' .. ARGV[2])
redis.call('ZREMRANGEBYSCORE', key, '(' .. ARGV[3], '+inf')
redis.call('PEXPIRE', key, ARGV[4])
return 1
"""
_COARSE_APPEND_SHA = hashlib.sha1(_COARSE_APPEND_LUA.encode(), usedforsecurity=False).hexdigest()


def encode_member(sample: RingSample) -> str:
    price = f":p{sample.mark_price:f}" if sample.mark_price is not None else ""
    suffix = ":h" if sample.backfilled else ""
    return f"{sample.time_ms}:{sample.open_interest:f}{price}{suffix}"


def decode_member(member: str) -> RingSample:
    time_ms, open_interest, *flags = member.split(":")
    mark_price = next((Decimal(flag[1:]) for flag in flags if flag.startswith("p")), None)
    return RingSample(
        int(time_ms), Decimal(open_interest), backfilled="h" in flags, mark_price=mark_price
    )


def decode_members(members: Iterable[str | bytes]) -> list[RingSample]:
    """Members in score order, decoded; of several members with one time only the first."""
    samples: list[RingSample] = []
    for member in members:
        sample = decode_member(member if isinstance(member, str) else member.decode())
        if not samples or sample.time_ms != samples[-1].time_ms:
            samples.append(sample)
    return samples


def ring_append(
    client: redis.Redis,
    samples_by_symbol: dict[str, Sequence[RingSample]],
    *,
    window_ms: int,
    now_ms: int,
    record_last_sample: bool = True,
    coarse_window_ms: int | None = None,
) -> None:
    """Append, trim by age (and the future) and renew the TTL of every symbol's buffer in one
    round trip; with ``coarse_window_ms``, the symbol's coarse ring too (kept that long)."""
    if not samples_by_symbol:
        return
    try:
        _ring_append_once(
            client, samples_by_symbol, window_ms=window_ms, now_ms=now_ms,
            record_last_sample=record_last_sample, coarse_window_ms=coarse_window_ms,
        )  # fmt: skip
    except redis.exceptions.NoScriptError:
        # Redis lost its script cache (a restart): load the coarse script and append again
        # (every command of the append is idempotent).
        client.script_load(_COARSE_APPEND_LUA)
        _ring_append_once(
            client, samples_by_symbol, window_ms=window_ms, now_ms=now_ms,
            record_last_sample=record_last_sample, coarse_window_ms=coarse_window_ms,
        )  # fmt: skip


def _ring_append_once(
    client: redis.Redis,
    samples_by_symbol: dict[str, Sequence[RingSample]],
    *,
    window_ms: int,
    now_ms: int,
    record_last_sample: bool,
    coarse_window_ms: int | None,
) -> None:
    cutoff_ms = now_ms - window_ms
    future_ms = now_ms + RING_MAX_AHEAD_MS
    with client.pipeline(transaction=False) as pipe:
        latest: dict[str, int] = {}
        for symbol, given in samples_by_symbol.items():
            samples = [sample for sample in given if sample.time_ms <= future_ms]
            if len(samples) < len(given):
                logger.warning(
                    "ring sample refused: dated ahead of the clock",
                    extra={"symbol": symbol, "cause": f"time_ms > {future_ms}"},
                )
            if not samples:
                continue
            key = ring_key(symbol)
            pipe.zadd(key, {encode_member(sample): sample.time_ms for sample in samples})
            pipe.zremrangebyscore(key, "-inf", f"({cutoff_ms}")
            pipe.zremrangebyscore(key, f"({future_ms}", "+inf")
            pipe.pexpire(key, window_ms)
            if coarse_window_ms:
                # EVALSHA queued as is: a Script object in a pipeline would cost one more round
                # trip per append (redis-py asks SCRIPT EXISTS before every such pipeline).
                pipe.evalsha(
                    _COARSE_APPEND_SHA, 1, coarse_ring_key(symbol),
                    COARSE_BUCKET_MS, now_ms - coarse_window_ms, future_ms, coarse_window_ms,
                    *_time_member_pairs(samples),
                )  # fmt: skip
            latest[symbol] = max(sample.time_ms for sample in samples)
        if record_last_sample and latest:
            pipe.hset(LAST_SAMPLE_KEY, mapping=latest)
        pipe.execute()


def _time_member_pairs(samples: Sequence[RingSample]) -> list:
    pairs: list = []
    for sample in sorted(samples, key=lambda sample: sample.time_ms):
        pairs += [sample.time_ms, encode_member(sample)]
    return pairs


def coarse_ring_read(client: redis.Redis, symbol: str, *, since_ms: int) -> list[RingSample]:
    """The coarse samples from ``since_ms`` on, oldest first."""
    return decode_members(client.zrangebyscore(coarse_ring_key(symbol), since_ms, "+inf"))


def ring_read(
    client: redis.Redis, symbol: str, *, since_ms: int | None = None, newest_first: bool = False,
    limit: int | None = None,
) -> list[RingSample]:  # fmt: skip
    key = ring_key(symbol)
    low = "-inf" if since_ms is None else since_ms
    if newest_first:
        members = client.zrevrangebyscore(key, "+inf", low, start=0 if limit else None, num=limit)
    else:
        members = client.zrangebyscore(key, low, "+inf", start=0 if limit else None, num=limit)
    return decode_members(members)


def last_sample_times(client: redis.Redis, symbols: Iterable[str] | None = None) -> dict[str, int]:
    if symbols is None:
        return {k: int(v) for k, v in client.hgetall(LAST_SAMPLE_KEY).items()}
    symbols = list(symbols)
    if not symbols:
        return {}
    values = client.hmget(LAST_SAMPLE_KEY, symbols)
    return {s: int(v) for s, v in zip(symbols, values, strict=True) if v is not None}
