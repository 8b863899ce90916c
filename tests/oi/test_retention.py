"""Snapshot retention: old rows go, recent rows stay, in bounded batches; beat runs it hourly."""

from datetime import UTC, datetime, timedelta

import pytest
from django.conf import settings as django_settings
from django.db import connection

from oi.models import OpenInterestSnapshot
from oi.retention import snapshots_prune

NOW = datetime(2026, 1, 31, 12, 0, tzinfo=UTC)

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def fresh_redis(redis_client):
    from common.redis import get_redis

    get_redis.cache_clear()
    yield
    get_redis.cache_clear()


def insert_hourly_snapshots(days_back: int) -> None:
    """One row per symbol per hour for `days_back` days before NOW (2 symbols)."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO open_interest_snapshots (symbol, ts, open_interest, source)
            SELECT symbol, %s - hours * interval '1 hour', 1, 'realtime'
            FROM generate_series(0, %s) AS hours, unnest(ARRAY['BTCUSDT', 'ETHUSDT']) AS symbol
            """,
            [NOW, days_back * 24 - 1],
        )


def test_only_snapshots_older_than_the_retention_are_deleted(settings):
    settings.OI_SNAPSHOT_RETENTION_DAYS = 30
    insert_hourly_snapshots(days_back=40)  # 2 × 960 rows
    cutoff = NOW - timedelta(days=30)
    old = OpenInterestSnapshot.objects.filter(ts__lt=cutoff).count()
    kept = OpenInterestSnapshot.objects.filter(ts__gte=cutoff).count()
    assert (old, kept) == (2 * 239, 2 * 721)

    result = snapshots_prune(now=NOW, batch_size=100)

    assert (result.deleted, result.finished, result.cutoff) == (old, True, cutoff)
    assert OpenInterestSnapshot.objects.filter(ts__lt=cutoff).count() == 0
    assert OpenInterestSnapshot.objects.count() == kept
    # again: nothing more to do
    assert snapshots_prune(now=NOW, batch_size=100).deleted == 0


def test_a_run_out_of_time_stops_between_batches_and_the_next_one_finishes(settings):
    settings.OI_SNAPSHOT_RETENTION_DAYS = 30
    insert_hourly_snapshots(days_back=40)
    partial = snapshots_prune(now=NOW, batch_size=50, time_budget_sec=0)
    assert (partial.deleted, partial.finished) == (50, False)
    rest = snapshots_prune(now=NOW, batch_size=50)
    assert rest.deleted == 2 * 239 - 50
    assert rest.finished


def test_beat_prunes_hourly_and_each_run_expires_before_the_next():
    entry = django_settings.CELERY_BEAT_SCHEDULE["oi-snapshots-prune"]
    assert entry["task"] == "oi.snapshots_prune"
    assert entry["options"]["expires"] <= entry["schedule"] == 3600.0
