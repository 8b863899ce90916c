"""Migration 0005 turns each delivery row's channel kind into a channel row, keeping history:
the kind the settings still configure gets its settings' target, one they no longer configure a
disabled channel that says why."""

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

BEFORE = [("alerts", "0004_alert_uniq_per_window")]
AFTER = [("alerts", "0005_alert_channels")]


def migrate(targets) -> None:
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)


@pytest.fixture
def back_to_the_latest_schema():
    """Later tests on this database need every migration applied, not just this one's."""
    yield
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(executor.loader.graph.leaf_nodes())


@pytest.mark.django_db(transaction=True)
def test_existing_delivery_rows_keep_their_history_on_channels(settings, back_to_the_latest_schema):
    migrate(BEFORE)
    with connection.cursor() as cursor:
        cursor.execute(
            """INSERT INTO open_interest_alerts (symbol, direction, baseline, current, pct_change,
                   abs_change, source, ts, created_at, rule_name, reference)
               VALUES ('BTCUSDT', 'UP', 1, 2, 1, 1, 'ingest', now(), now(), '', '') RETURNING id"""
        )
        (alert_id,) = cursor.fetchone()
        cursor.execute(
            """INSERT INTO open_interest_alert_deliveries
                   (alert_id, channel, delivered, attempts, last_error, updated_at)
               VALUES (%s, 'telegram', true, 1, '', now()), (%s, 'webhook', false, 6, 'HTTP 500',
                       now())""",
            [alert_id, alert_id],
        )
    settings.TELEGRAM_BOT_TOKEN, settings.TELEGRAM_CHAT_ID = "123:abc", "-1001"
    settings.ALERT_WEBHOOK_URL = ""

    migrate(AFTER)

    with connection.cursor() as cursor:
        cursor.execute(
            """SELECT c.name, c.kind, c.enabled, c.bot_token, c.telegram_chat_id,
                      c.disabled_reason <> '', d.delivered, d.attempts, d.last_error
               FROM open_interest_alert_deliveries d
               JOIN open_interest_alert_channels c ON c.id = d.channel_id ORDER BY c.name"""
        )
        rows = cursor.fetchall()
    assert rows == [
        ("telegram (settings)", "telegram", True, "123:abc", "-1001", False, True, 1, ""),
        ("webhook (settings)", "webhook", False, "", "", True, False, 6, "HTTP 500"),
    ]
