"""The streams process as the Procfile runs it, beside the real Celery poller and beat: while the
mark-price stream is fresh no premiumIndex request leaves; silenced, the poller is on REST within
a window; back, it leaves REST again, and the exchange never answers 429."""

import sys
import time

import pytest

from tests.fixtures import processes
from tests.fixtures.processes import ManagedProcess, wait_until, whole_universe_dispatched

pytestmark = pytest.mark.integration

STALE_FACTOR = "2"  # stale after 2 s without a mark-price frame


def premium_index_times(sim) -> int:
    return sum(
        ip["endpoints"].get("/fapi/v1/premiumIndex", 0) for ip in sim.stats()["ips"].values()
    )


WINDOWS_STILL_PLANNED_SEC = 2 * 2 + 1
"""After a dispatch switched the mark-price source: two 2 s windows and a second."""


def poller_streams(api_client) -> dict:
    return api_client.get("/api/market/open-interest/poller").json()["marketStreams"]


def test_the_poller_follows_the_mark_price_streams_freshness(
    sim, celery_processes, redis_client, api_client
):
    env = {
        "BINANCE_BASE_URL": sim.base_url,
        "STREAMS_BASE_URL": f"ws://{sim.host}:{sim.port}",
        "STREAMS_STALE_FACTOR": STALE_FACTOR,
        "LIQUIDITY_REFRESH_SEC": "30",
    }
    streams = ManagedProcess(
        "streams", [sys.executable, "manage.py", "streams_run"], processes.test_process_env(**env)
    )
    try:
        celery_processes.start_procfile_worker("worker", **env)
        celery_processes.start_procfile_worker("poller", **env)
        celery_processes.start_beat(**env)
        whole_universe_dispatched(api_client)
        wait_until(
            lambda: poller_streams(api_client)["streams"]["!markPrice@arr@1s"]["state"] == "fresh",
            20,
            "the mark-price stream never became fresh",
        )
        # the window under way (and one starting within the shard lead) may still hold a
        # premiumIndex call; the windows planned ahead were planned again without it
        time.sleep(WINDOWS_STILL_PLANNED_SEC)

        # fresh: no premiumIndex over several intervals, while open interest is polled
        before, oi_before = premium_index_times(sim), sim.stats()["total_requests"]
        time.sleep(8)
        assert premium_index_times(sim) == before
        assert sim.stats()["total_requests"] - oi_before > 50
        assert poller_streams(api_client)["markPriceSource"] == "stream"

        # silenced: premiumIndex leaves within the threshold and one dispatch window
        sim.control("PATCH", "/sim/streams/faults", {"silent": ["!markPrice@arr@1s"]})
        silenced = time.monotonic()
        wait_until(lambda: premium_index_times(sim) > before, 15, "no REST fallback")
        assert time.monotonic() - silenced <= 2 + 1 + 2 + 1.5  # stale + cadence + window + lead
        wait_until(lambda: poller_streams(api_client)["markPriceSource"] == "rest", 10, "rest")

        # back: fresh again, and REST is left from the next window (the windows planned
        # meanwhile are planned again without it)
        sim.control("PATCH", "/sim/streams/faults", {"silent": []})
        wait_until(
            lambda: poller_streams(api_client)["markPriceSource"] == "stream", 10, "stream back"
        )
        time.sleep(WINDOWS_STILL_PLANNED_SEC)
        back = premium_index_times(sim)
        time.sleep(8)
        assert premium_index_times(sim) == back

        for ip_stats in sim.stats()["ips"].values():
            assert ip_stats["count_429"] == 0 and ip_stats["count_418"] == 0
    finally:
        streams.stop()
