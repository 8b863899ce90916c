"""The streams tests' fixtures: the settings that point the stream client at the simulator,
and a StreamsProcess run on a thread of the test."""

import threading
import time
from collections.abc import Iterator

import pytest

from common.redis import get_redis
from oi import poller
from streams.runner import StreamsProcess

ON_SIMULATOR_STALE_FACTOR = 2.0  # stale after 2 s without a mark-price frame


@pytest.fixture
def on_simulator(sim, settings, redis_client):
    settings.BINANCE_BASE_URL = sim.base_url
    settings.STREAMS_BASE_URL = f"ws://{sim.host}:{sim.port}"
    settings.STREAMS_STALE_FACTOR = ON_SIMULATOR_STALE_FACTOR
    settings.STREAMS_RECONNECT_BASE_SEC = 0.2
    settings.STREAMS_RECONNECT_MAX_SEC = 1.0
    settings.STREAMS_SILENCE_RECONNECT_SEC = 30.0
    settings.STREAMS_TICKER_WARMUP_SEC = 1.0
    get_redis.cache_clear()
    poller._thread_clients.__dict__.clear()
    yield sim
    get_redis.cache_clear()


@pytest.fixture
def streams_process(on_simulator) -> Iterator[StreamsProcess]:
    stop = threading.Event()
    process = StreamsProcess()
    thread = threading.Thread(target=process.run, args=(stop,), daemon=True)
    thread.start()
    yield process
    stop.set()
    thread.join(timeout=10)


def wait_for(condition, timeout: float, step: float = 0.1) -> float:
    """Seconds until `condition()` held; fails after `timeout`."""
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > timeout:
            raise AssertionError(f"not within {timeout} s")
        time.sleep(step)
    return time.monotonic() - started
