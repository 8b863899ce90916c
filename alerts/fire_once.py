"""Fire once: claim the alert in Redis, then store its row; a claim is given back if storing
fails, so no alert is lost to it.

The rules engine (re-arm states, fields of one hash changed by compare-and-set) and the ingest
cooldowns (one key per (symbol, direction[, window]), its TTL the cooldown) both fire this way. A
process killed between claiming and storing leaves a claim with no row behind it: a claim at least
``CLAIM_STALE_MS`` old whose row does not exist is stale and is dropped (that alert may fire
again); one whose row exists stands.
"""

from collections.abc import Callable
from enum import StrEnum
from typing import TypeVar

from django.db import DatabaseError

# A claim still pending after this long belongs to a process that died before storing its alert.
CLAIM_STALE_MS = 30_000

T = TypeVar("T")


class ClaimStatus(StrEnum):
    FRESH = "fresh"  # younger than CLAIM_STALE_MS: its process may still be storing the row
    STORED = "stored"  # its row exists: the claim stands
    STALE = "stale"  # old and no row behind it: drop it


def claim_status(age_ms: int, row_exists: Callable[[], bool]) -> ClaimStatus:
    """What a claim held by another process is; the database is asked only once it is old."""
    if age_ms < CLAIM_STALE_MS:
        return ClaimStatus.FRESH
    return ClaimStatus.STORED if row_exists() else ClaimStatus.STALE


def store_claimed(store: Callable[[], T], give_back: Callable[[], object]) -> T:
    """Store a claimed alert; on a database error give the claim back, then re-raise."""
    try:
        return store()
    except DatabaseError:
        give_back()
        raise


# Compare-and-set of many hash fields: ARGV holds (field, expected, new) triples; '' is "absent".
_HASH_CAS = """
local results = {}
for i = 1, #ARGV, 3 do
    local current = redis.call('HGET', KEYS[1], ARGV[i]) or ''
    if current == ARGV[i + 1] then
        if ARGV[i + 2] == '' then
            redis.call('HDEL', KEYS[1], ARGV[i])
        else
            redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 2])
        end
        results[#results + 1] = 1
    else
        results[#results + 1] = 0
    end
end
return results
"""

_DELETE_IF_EQUAL = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


def hash_claims_swap(redis, key: str, changes: list[tuple[str, str, str]]) -> dict[str, bool]:
    """Each (field, expected, new) of ``changes`` set atomically where the field still holds
    ``expected`` ('' for absent; a new '' deletes it); field -> whether it was set."""
    if not changes:
        return {}
    done = redis.eval(_HASH_CAS, 1, key, *[part for change in changes for part in change])
    return {field: bool(ok) for (field, _, _), ok in zip(changes, done, strict=True)}


def key_claim(redis, key: str, value: int | str, ttl_sec: int) -> bool:
    """Claim ``key`` for ``ttl_sec`` unless someone holds it."""
    return bool(redis.set(key, value, nx=True, ex=ttl_sec))


def key_release(redis, key: str, value: int | str) -> None:
    """Give ``key`` back if it still holds ``value`` (never someone else's later claim)."""
    redis.eval(_DELETE_IF_EQUAL, 1, key, value)
