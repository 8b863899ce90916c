"""Postgres connections terminated under a running system: it recovers by itself, and no sample
the poller fetched is lost (batches that could not be written are parked and retried)."""

import time
from datetime import UTC, datetime

import pytest
import redis as redis_lib
from django.db import connection

from liquidity.models import LiquidSymbol
from oi.models import OpenInterestSnapshot
from oi.ring import ring_read
from tests.fixtures.processes import OwnRedis, wait_until

pytestmark = [
    pytest.mark.integration,
    pytest.mark.reliability,
    pytest.mark.django_db(transaction=True),
]


def terminate_other_connections() -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        return cursor.fetchone()[0]


def test_terminated_postgres_connections_lose_no_fetched_sample(
    sim, celery_processes, redis_client, api_client
):
    env = {"BINANCE_BASE_URL": sim.base_url}
    celery_processes.start_worker(queues="default,oi_backfill", **env)
    celery_processes.start_worker(queues="oi_poll", concurrency=4, **env)
    celery_processes.start_beat(**env)
    wait_until(lambda: LiquidSymbol.objects.exists(), 30, "the universe never filled")
    members = sorted(LiquidSymbol.objects.values_list("symbol", flat=True))
    wait_until(lambda: OpenInterestSnapshot.objects.exists(), 30, "no snapshot stored")
    start_ms = time.time() * 1000

    # when every worker's database connection is cut, three times over 10 s
    terminated = 0
    for _ in range(3):
        terminated += terminate_other_connections()
        time.sleep(3.5)
    assert terminated > 0
    end_ms = time.time() * 1000

    # then every realtime sample the poller fetched in that span ends up in Postgres
    def fetched() -> set[tuple[str, int]]:
        return {
            (symbol, sample.time_ms)
            for symbol in members
            for sample in ring_read(redis_client, symbol, since_ms=int(start_ms))
            if not sample.backfilled and sample.time_ms < end_ms
        }

    def missing() -> set[tuple[str, int]]:
        stored = {
            (symbol, int(ts.timestamp() * 1000))
            for symbol, ts in OpenInterestSnapshot.objects.filter(
                source="realtime", ts__gte=_utc(start_ms)
            ).values_list("symbol", "ts")
        }
        return fetched() - stored

    assert len(fetched()) > len(members)
    # parked batches are retried every 30 s by beat
    wait_until(lambda: not missing(), 45, "fetched samples never reached Postgres")
    # and polling goes on normally afterwards
    resumed_from = time.time() * 1000
    time.sleep(6)
    assert OpenInterestSnapshot.objects.filter(ts__gte=_utc(resumed_from)).exists()


def _utc(ms: float) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


def test_a_redis_restart_is_survived_and_what_was_lost_is_rebuilt(
    sim, celery_processes, api_client
):
    # given the whole system on a Redis of its own
    redis_server = OwnRedis()
    redis_server.start()
    try:
        # supervised as in the Procfile: kombu can kill a worker while the broker is away
        env = {"BINANCE_BASE_URL": sim.base_url, "TEST_REDIS_URL": redis_server.url}
        celery_processes.start_worker(queues="default,oi_backfill", supervised=True, **env)
        celery_processes.start_worker(queues="oi_poll", concurrency=4, supervised=True, **env)
        celery_processes.start_beat(supervised=True, **env)
        wait_until(lambda: LiquidSymbol.objects.exists(), 30, "the universe never filled")
        members = sorted(LiquidSymbol.objects.values_list("symbol", flat=True))
        wait_until(lambda: OpenInterestSnapshot.objects.exists(), 30, "no snapshot stored")

        # when Redis goes away (losing everything it held) and comes back 3 s later
        redis_server.stop()
        time.sleep(3)
        redis_server.start()
        back_ms = time.time() * 1000

        # then, by itself: every liquid symbol is polled again, the universe is back in Redis
        # (from Postgres) and the ring buffers are rebuilt from openInterestHist
        def polled_since_back() -> bool:
            times = sim.stats(symbols=members)["open_interest_times"]
            return all(any(t >= back_ms for t in times.get(s, [])) for s in members)

        wait_until(polled_since_back, 60, "polling did not resume after the Redis restart")
        client = redis_lib.Redis.from_url(redis_server.url, decode_responses=True)
        assert client.smembers("oi:liquid_universe") == set(members)
        wait_until(
            lambda: all(len(ring_read(client, s)) > 30 for s in members),
            20 + len(members) / 3,
            "ring buffers were not rebuilt",
        )
    finally:
        redis_server.stop()
