"""The backtest gives exactly the live engine's verdicts: the same moves are fed to the running
system (simulator → poller → rules engine → stored alerts) and then the backtest replays what the
poller stored in Postgres, as a job on its own queue run by the Procfile's worker. Every alert is
equal, timestamps included, over a period that starts one window after the ring's backfilled
history (which is not stored) and before any alert (the replay starts with empty re-arm state)."""

import time

import pytest
from django.test import override_settings

from alerts.models import AlertRule, OpenInterestAlert
from common.timeutil import datetime_from_ms, ms_from_datetime, now_ms
from liquidity.models import LiquidSymbol
from oi.ring import ring_read
from tests.fixtures.processes import wait_until

pytestmark = pytest.mark.integration

WINDOW_SEC = 12


def test_the_backtest_of_stored_samples_raises_exactly_the_live_alerts(
    sim, celery_processes, redis_client, writer_client
):
    # given one rule (12 s, 5%, both ways, a 12 s cooldown, no step) and no other
    AlertRule.objects.update(enabled=False)
    rule = AlertRule.objects.create(
        name="equality-12s-5pct", window_sec=WINDOW_SEC, threshold_pct="0.05",
        cooldown_sec=WINDOW_SEC,
    )  # fmt: skip
    env = {"BINANCE_BASE_URL": sim.base_url}
    celery_processes.start_procfile_worker("worker", **env)
    celery_processes.start_procfile_worker("poller", **env)
    celery_processes.start_beat(**env)
    symbols = wait_until(
        lambda: list(LiquidSymbol.objects.order_by("symbol").values_list("symbol", flat=True)[:2]),
        30,
        "the universe never filled",
    )
    wait_until(
        lambda: all(len(ring_read(redis_client, s)) > 36 for s in symbols), 60, "no backfill"
    )
    # the period starts one window (and a margin) after the backfilled history landed
    since_ms = now_ms() + (WINDOW_SEC + 5) * 1000
    time.sleep((since_ms - now_ms()) / 1000 + 1)

    # when the moves come: a 12% jump on the first symbol and a second one while the rule is
    # still disarmed (the first is still in the window), a 15% dump ramped over 6 s on the
    # second; once the window has moved past them (re-armed), a 20% dump on the first
    first, second = symbols
    sim.inject_event(first, "spike", 12)
    time.sleep(6)
    sim.inject_event(first, "spike", 12)
    sim.inject_event(second, "dump", 15, duration=6_000)
    time.sleep(WINDOW_SEC + 3)
    sim.inject_event(first, "dump", 20)
    time.sleep(WINDOW_SEC + 3)
    until_ms = now_ms()

    live = sorted(
        (a.symbol, a.direction, ms_from_datetime(a.ts), float(a.pct_change), a.regime)
        for a in OpenInterestAlert.objects.filter(
            rule=rule, ts__gte=datetime_from_ms(since_ms), ts__lte=datetime_from_ms(until_ms)
        )
    )
    assert len(live) >= 3, live

    # then the backtest of the stored samples, run by the worker on its own queue, agrees
    with override_settings(BACKTEST_INLINE_MAX_SAMPLES=0):
        queued = writer_client.post(
            "/api/alert-rules/backtest",
            {
                "rule_id": rule.id,
                "since": datetime_from_ms(since_ms).isoformat(),
                "until": datetime_from_ms(until_ms).isoformat(),
            },
            format="json",
        )
    assert queued.status_code == 202, queued.json()
    job = wait_until(
        lambda: (
            (body := writer_client.get(queued.json()["url"]).json())["state"] in ("done", "failed")
            and body
        ),
        60,
        "the backtest job never finished",
    )
    assert job["state"] == "done", job
    replayed = sorted(
        (a["symbol"], a["direction"], a["tMs"], a["pctChange"], a["regime"])
        for a in job["result"]["alerts"]
    )
    assert [r[:3] for r in replayed] == [r[:3] for r in live]
    for got, expected in zip(replayed, live, strict=True):
        assert got[3] == pytest.approx(expected[3], rel=1e-6)
        assert got[4] == expected[4]
    assert job["result"]["actions"]["fire"] == len(live)
    assert job["result"]["actions"].get("rearm", 0) >= 1
