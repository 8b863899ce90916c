"""An OI jump on the exchange reaches a WebSocket client, exactly once, through the real system:
simulator → poller (real Celery worker + beat) → detection → Postgres → Channels → ASGI server."""

import json
import signal

import pytest
from websockets.sync.client import connect

from alerts.models import AlertRule, OpenInterestAlert
from liquidity.models import LiquidSymbol
from oi.ring import ring_read
from tests.fixtures.feed import frames_until
from tests.fixtures.processes import wait_until

pytestmark = pytest.mark.integration


def test_an_injected_oi_jump_reaches_a_websocket_client_once_per_rule_even_across_a_worker_restart(
    sim, asgi_server, celery_processes, redis_client
):
    # given the running system with the default rules, none held back by a contracts minimum
    AlertRule.objects.update(min_delta_contracts=None)
    rules = set(AlertRule.objects.filter(enabled=True).values_list("name", flat=True))
    env = {"BINANCE_BASE_URL": sim.base_url}
    celery_processes.start_procfile_worker("worker", **env)
    poller = celery_processes.start_procfile_worker("poller", **env)
    celery_processes.start_beat(**env)
    symbol = wait_until(
        lambda: LiquidSymbol.objects.order_by("symbol").values_list("symbol", flat=True).first(),
        30,
        "the universe never filled",
    )
    wait_until(lambda: len(ring_read(redis_client, symbol)) > 36, 60, "no backfilled baseline")

    # and a client subscribed to that symbol
    ws_url = asgi_server.replace("http://", "ws://") + f"/ws/open-interest/?symbols={symbol}"
    with connect(ws_url) as ws:
        hello = json.loads(ws.recv(timeout=5))
        assert hello == {"type": "subscribed", "symbols": [symbol]}

        # when open interest jumps 20% on the exchange
        sim.inject_event(symbol, "spike", 20)

        # then each rule's alert arrives once, as the §5.3 payload with the rule and its context
        alert_frames = frames_until(
            ws,
            lambda got: len([f for f in got if f["type"] == "open_interest_alert"]) >= len(rules),
            30,
        )
        alerts = [f["data"] for f in alert_frames if f["type"] == "open_interest_alert"]
        assert sorted(alert["rule"] for alert in alerts) == sorted(rules)
        for alert in alerts:
            assert alert["symbol"] == symbol
            assert alert["direction"] == "UP"
            assert 0.15 < alert["pctChange"] < 0.25
            assert alert["source"] == "oi_realtime_poller"
            assert alert["markPrice"] > 0 and alert["oiUsdAfter"] > alert["oiUsdBefore"] > 0
            assert alert["fundingRate"] is not None and alert["quoteVolume24h"] > 0
            assert alert["windowSec"] in (300, 900, 3600)
        assert sorted(alert["alerts24h"] for alert in alerts) == list(range(1, len(rules) + 1))

        # when the poller worker is killed mid-run and started again while the jump persists
        poller.process.send_signal(signal.SIGKILL)
        poller.process.wait(10)
        celery_processes.start_procfile_worker("poller", **env)
        later = frames_until(
            ws, lambda got: sum(f["type"] == "open_interest_update" for f in got) >= 2, 45
        )

    # then polling resumed (each update was also evaluated by the new worker), and no rule
    # alerted a second time for the same move: the rules' re-arm state lives in Redis
    assert sum(f["type"] == "open_interest_update" for f in later) >= 2
    assert [f for f in later if f["type"] == "open_interest_alert"] == []
    assert OpenInterestAlert.objects.filter(symbol=symbol).count() == len(rules)
