"""The schema's invariants live in Postgres itself, and its indexes serve the hot reads at scale."""

from datetime import UTC, datetime

import pytest
from django.db import IntegrityError, connection, transaction

from oi.selectors import _LATEST_USD_SQL, snapshot_at_or_before_queryset

pytestmark = pytest.mark.django_db

SNAPSHOT_ROWS = 1_000_000
ALERT_ROWS = 200_000


def insert_snapshot_sql(
    open_interest: str = "1", source: str = "'realtime'", mark: str = "NULL"
) -> str:
    return (
        "INSERT INTO open_interest_snapshots (symbol, ts, open_interest, mark_price, source) "
        f"VALUES ('BTCUSDT', now(), {open_interest}, {mark}, {source})"
    )


def insert_alert_sql(direction: str = "'UP'", source: str = "'oi_realtime_poller'") -> str:
    return (
        "INSERT INTO open_interest_alerts "
        "(symbol, direction, baseline, current, pct_change, abs_change, source, ts) "
        f"VALUES ('BTCUSDT', {direction}, 100, 110, 0.1, 10, {source}, now())"
    )


@pytest.mark.parametrize(
    ("sql", "constraint"),
    [
        (insert_snapshot_sql(open_interest="-1"), "oi_snapshot_oi_nonneg"),
        (insert_snapshot_sql(mark="-2"), "oi_snapshot_mark_price_nonneg"),
        (insert_snapshot_sql(source="'hourly'"), "oi_snapshot_source_known"),
        (insert_alert_sql(direction="'FLAT'"), "oi_alert_direction_known"),
        (insert_alert_sql(source="'telepathy'"), "oi_alert_source_known"),
    ],
)
def test_postgres_refuses_rows_that_break_the_invariants(sql, constraint):
    with (
        pytest.raises(IntegrityError, match=constraint),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(sql)


def test_postgres_refuses_a_second_identical_alert():
    with connection.cursor() as cursor:
        cursor.execute(insert_alert_sql().replace("now()", "'2025-12-01T00:00:00Z'"))
        with pytest.raises(IntegrityError, match="oi_alert_uniq"), transaction.atomic():
            cursor.execute(insert_alert_sql().replace("now()", "'2025-12-01T00:00:00Z'"))


def explain(sql: str, params: list) -> str:
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN " + sql, params)
        return "\n".join(row[0] for row in cursor.fetchall())


def test_hot_reads_use_indexes_not_sequential_scans_at_a_million_rows():
    # given a million snapshots (500 symbols × 2000 samples) and 200k alerts
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO open_interest_snapshots (symbol, ts, open_interest, source)
            SELECT 'S' || (i %% 500) || 'USDT',
                   timestamptz '2025-12-01' + (i / 500) * interval '10 seconds',
                   i, 'realtime'
            FROM generate_series(1, %s) AS i
            """,
            [SNAPSHOT_ROWS],
        )
        cursor.execute(
            """
            INSERT INTO open_interest_alerts
                (symbol, direction, baseline, current, pct_change, abs_change, source, ts)
            SELECT 'S' || (i %% 500) || 'USDT', 'UP', 100, 110, 0.1, 10, 'oi_realtime_poller',
                   timestamptz '2025-01-01' + i * interval '1 minute'
            FROM generate_series(1, %s) AS i
            """,
            [ALERT_ROWS],
        )
        cursor.execute("ANALYZE open_interest_snapshots")
        cursor.execute("ANALYZE open_interest_alerts")

    # when the planner is asked for the hot reads
    latest_samples = explain(
        "SELECT * FROM open_interest_snapshots WHERE symbol = %s ORDER BY ts DESC LIMIT 100",
        ["S7USDT"],
    )
    alerts_since = explain(
        "SELECT * FROM open_interest_alerts WHERE ts >= %s ORDER BY ts DESC LIMIT 100",
        ["2025-05-01T00:00:00Z"],
    )
    symbol_alerts_since = explain(
        "SELECT * FROM open_interest_alerts WHERE symbol = %s AND ts >= %s ORDER BY ts DESC LIMIT 100",
        ["S7USDT", "2025-03-01T00:00:00Z"],
    )
    # the hourly script's oiChange reference (GET .../snapshot?symbol=&ts=), the selector's own
    snapshot_at = snapshot_at_or_before_queryset(
        symbol="S7USDT", ts=datetime(2025, 12, 1, 2, 30, tzinfo=UTC)
    ).explain()
    # the frontend's map of every symbol's latest USD value (GET /api/market/open-interest)
    latest_usd = explain(_LATEST_USD_SQL, [datetime(2025, 12, 1, tzinfo=UTC)])
    print(latest_samples, alerts_since, symbol_alerts_since, snapshot_at, latest_usd, sep="\n\n")

    # then each uses an index, none a sequential scan
    assert "oi_snapshot_symbol_ts_source_uniq" in latest_samples
    assert "oi_alert_ts_idx" in alerts_since
    assert "oi_alert_symbol_ts_idx" in symbol_alerts_since
    assert "Index Scan Backward using oi_snapshot_symbol_ts_source_uniq" in snapshot_at
    assert "Limit" in snapshot_at.splitlines()[0]
    assert "Index Scan Backward using oi_snapshot_symbol_ts_source_uniq" in latest_usd
    for plan in (latest_samples, alerts_since, symbol_alerts_since, snapshot_at, latest_usd):
        assert "Seq Scan" not in plan
