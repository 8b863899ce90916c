"""A Redis lease lock: at most one holder across all processes and hosts."""

import secrets
from collections.abc import Iterator
from contextlib import contextmanager

import redis

_RELEASE_IF_OWNER = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
    return redis.call('DEL', KEYS[1])
end
return 0
"""


@contextmanager
def redis_lease(client: redis.Redis, name: str, *, ttl_sec: float) -> Iterator[bool]:
    """Yields True when this caller holds `name` for up to `ttl_sec`, False when another does.

    The lease expires by itself if its holder dies; only the holder's own token releases it.
    """
    token = secrets.token_hex(16)
    acquired = bool(client.set(name, token, nx=True, px=int(ttl_sec * 1000)))
    try:
        yield acquired
    finally:
        if acquired:
            client.eval(_RELEASE_IF_OWNER, 1, name, token)
