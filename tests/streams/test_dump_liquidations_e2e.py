"""A dump on the exchange reaches the alert with its liquidations, through the real system:
simulator (REST + market streams) → streams process → Postgres; poller (Celery worker + beat) →
rules → the alert row and its payload carry the long liquidations of the alert's window."""

import sys
from decimal import Decimal

import pytest

from alerts.formatting import alert_payload
from alerts.models import AlertRule, OpenInterestAlert
from common.timeutil import ms_from_datetime
from liquidity.models import LiquidSymbol
from oi.ring import ring_read
from tests.fixtures import processes
from tests.fixtures.processes import ManagedProcess, wait_until

pytestmark = pytest.mark.integration

IN_FLIGHT_MS = 10_000
"""Liquidations of the last seconds before an alert's sample may not be stored yet when it is
evaluated: a frame leaves the exchange ~1 s after its trade and is flushed to Postgres every
STREAMS_LIQUIDATION_FLUSH_SEC (1 s); on a loaded machine a few seconds more. The alert's sum is a
lower bound by that much too (typically 2-3 s of them)."""


def emitted_long_usd(records: list[dict], symbol: str, since_ms: int, until_ms: int) -> Decimal:
    return sum(
        (
            Decimal(r["quantity"]) * Decimal(r["average_price"])
            for r in records
            if r["symbol"] == symbol
            and r["side"] == "SELL"
            and since_ms < r["trade_time"] <= until_ms
        ),
        Decimal(0),
    )


def test_a_dump_alert_carries_the_long_liquidations_of_its_window(
    sim, celery_processes, redis_client
):
    AlertRule.objects.update(min_delta_contracts=None)
    sim.control("PATCH", "/sim/streams/faults", {"liquidation_rate": 0})  # dumps' only
    env = {
        "BINANCE_BASE_URL": sim.base_url,
        "STREAMS_BASE_URL": f"ws://{sim.host}:{sim.port}",
    }
    streams = ManagedProcess(
        "streams", [sys.executable, "manage.py", "streams_run"], processes.test_process_env(**env)
    )
    try:
        celery_processes.start_procfile_worker("worker", **env)
        celery_processes.start_procfile_worker("poller", **env)
        celery_processes.start_beat(**env)
        symbol = wait_until(
            lambda: (
                LiquidSymbol.objects.order_by("symbol").values_list("symbol", flat=True).first()
            ),
            30,
            "the universe never filled",
        )
        wait_until(lambda: len(ring_read(redis_client, symbol)) > 36, 60, "no backfilled baseline")

        sim.inject_event(symbol, "dump", 20)

        alert = wait_until(
            lambda: OpenInterestAlert.objects.filter(
                symbol=symbol, direction="DOWN", window_sec=300
            ).first(),
            30,
            "no dump alert",
        )
    finally:
        streams.stop()

    records = sim.control("GET", "/sim/streams/liquidations")
    ts_ms = ms_from_datetime(alert.ts)
    since_ms = ts_ms - alert.window_sec * 1000
    everything = emitted_long_usd(records, symbol, since_ms, ts_ms)
    settled = emitted_long_usd(records, symbol, since_ms, ts_ms - IN_FLIGHT_MS)
    # the alert holds exactly the window's emitted liquidations up to some cutoff in the last
    # IN_FLIGHT_MS before its sample (later ones were still on their way): none missing before
    # the cutoff, none counted twice, none from outside the window
    cutoffs = {since_ms} | {
        r["trade_time"]
        for r in records
        if r["symbol"] == symbol and since_ms < r["trade_time"] <= ts_ms
    }
    prefix_sums = {emitted_long_usd(records, symbol, since_ms, cut) for cut in cutoffs}
    assert alert.liquidations_long_usd > 0
    assert settled <= alert.liquidations_long_usd <= everything
    assert alert.liquidations_long_usd in prefix_sums, (alert.liquidations_long_usd, prefix_sums)
    assert alert.liquidations_short_usd == 0  # no background ones: dumps liquidate longs
    payload = alert_payload(alert)
    assert payload["liquidationsLongUsd"] == float(alert.liquidations_long_usd)
    assert payload["liquidationsBound"] == "lower"
