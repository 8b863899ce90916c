"""Storing liquidation-burst alerts: one INSERT, idempotent on (rule, symbol, side, time), then
the feed frame and the channels' outboxes after commit."""

import logging
from decimal import Decimal

from django.db import connection, transaction

from alerts.channels.services import liquidation_alert_delivery_queue
from alerts.liquidation_rules import BurstVerdict
from alerts.liquidation_texts import liquidation_alert_payload
from alerts.models import AlertRule, LiquidationAlert
from common.realtime import OI_ALERTS_GROUP, GroupMessageType, broadcast_on_commit
from common.timeutil import datetime_from_ms

logger = logging.getLogger(__name__)

_INSERT_SQL = f"""
INSERT INTO {LiquidationAlert._meta.db_table}
    (rule_id, rule_name, symbol, side, window_sec, usd, count, other_side_usd, threshold_usd,
     quote_volume_24h, mark_price, ts, created_at)
VALUES ((SELECT id FROM {AlertRule._meta.db_table} WHERE id = %(rule_id)s), %(rule_name)s,
        %(symbol)s, %(side)s, %(window_sec)s, %(usd)s, %(count)s, %(other_side_usd)s,
        %(threshold_usd)s, %(quote_volume_24h)s, %(mark_price)s, %(ts)s, now())
ON CONFLICT (rule_name, symbol, side, ts) DO NOTHING
RETURNING id
"""  # noqa: S608 (table names only)


@transaction.atomic
def liquidation_alert_store(
    verdict: BurstVerdict, *, mark_price: Decimal | None
) -> LiquidationAlert | None:
    """Store the burst (None when it is stored already: a rebuilt tracker found it again); after
    commit, publish it on the feed and queue it on the channels. A rule deleted meanwhile leaves
    the alert without its rule, its name kept."""
    params = {
        "rule_id": verdict.rule.rule_id,
        "rule_name": verdict.rule.name,
        "symbol": verdict.symbol,
        "side": verdict.side.value,
        "window_sec": verdict.rule.window_sec,
        "usd": verdict.usd,
        "count": verdict.count,
        "other_side_usd": verdict.other_side_usd,
        "threshold_usd": verdict.threshold_usd,
        "quote_volume_24h": verdict.quote_volume_24h,
        "mark_price": mark_price,
        "ts": datetime_from_ms(verdict.t_ms),
    }
    with connection.cursor() as cursor:
        cursor.execute(_INSERT_SQL, params)
        row = cursor.fetchone()
    if row is None:
        return None
    alert = LiquidationAlert.objects.get(pk=row[0])
    broadcast_on_commit(
        OI_ALERTS_GROUP,
        {"type": GroupMessageType.LIQUIDATION_ALERT, "alert": liquidation_alert_payload(alert)},
    )
    transaction.on_commit(lambda: liquidation_alert_delivery_queue(alert.id))
    logger.info(
        "liquidation burst alert",
        extra={
            "symbol": alert.symbol,
            "side": alert.side,
            "usd": f"{alert.usd:.2f}",
            "rule": alert.rule_name,
            "alert_id": alert.id,
        },
    )
    return alert
