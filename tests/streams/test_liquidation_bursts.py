"""Liquidation-burst rules through the real parts: the simulator's market streams → the streams
process (on a thread of the test) → Postgres → the rules (alerts.liquidation_evaluation) → the
alert row, the API, and a signed webhook; restarts and rule changes tell a burst once."""

import threading
import time
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from alerts.channels.services import channel_create, channel_outbox_drain
from alerts.liquidation_evaluation import engine_reset, liquidation_bursts_evaluate
from alerts.models import ChannelKind, LiquidationAlert, RuleKind
from alerts.services import alert_rule_create, alert_rule_update
from common.timeutil import ms_from_datetime, now_ms
from exchange.streams import Liquidation as LiquidationValue
from exchange.streams import LiquidationSide
from liquidity.models import LiquidSymbol
from liquidity.services import universe_publish_to_redis
from streams.runner import StreamsProcess
from streams.services import liquidations_store
from tests.streams.conftest import wait_for

pytestmark = pytest.mark.django_db(transaction=True)

SECRET = "whsec-liquidations-0123456789"


@pytest.fixture(autouse=True)
def fresh_engine():
    engine_reset()  # the streams process's trackers and rule cache start empty
    yield
    engine_reset()


def universe(volumes: dict[str, Decimal]) -> None:
    now = datetime.now(UTC)
    LiquidSymbol.objects.bulk_create(
        LiquidSymbol(symbol=s, quote_volume_24h=v, entered_at=now, last_seen_at=now)
        for s, v in volumes.items()
    )
    universe_publish_to_redis()


def burst_rule(**fields):
    values = {
        "name": "liq-1m-longs", "kind": RuleKind.LIQUIDATION_BURST, "window_sec": 60,
        "liquidated_side": "long", "threshold_usd": Decimal(50_000), "cooldown_sec": 600,
    }  # fmt: skip
    return alert_rule_create(**{**values, **fields})


def liquidation(symbol: str, side: LiquidationSide, usd: int, age_ms: int) -> LiquidationValue:
    at = now_ms() - age_ms
    return LiquidationValue(symbol, side, Decimal(100), Decimal(100), Decimal(usd) / 100, at, at)


def test_a_burst_is_told_once_through_restarts_and_goes_out_as_one_signed_webhook(
    chat_platforms, redis_client, api_client
):
    universe({"BTCUSDT": Decimal(2_000_000_000), "ETHUSDT": Decimal(900_000_000)})
    rule = burst_rule()
    receiver = chat_platforms.webhook(SECRET)
    channel = channel_create(
        name="hook", kind=ChannelKind.WEBHOOK, url=receiver.url, signing_secret=SECRET
    )
    # a burst stored while the rules were not running (or before the rule existed)
    liquidations_store(
        [
            liquidation("BTCUSDT", LiquidationSide.SELL, 20_000, age)
            for age in (30_000, 20_000, 10_000)
        ]
        + [liquidation("BTCUSDT", LiquidationSide.BUY, 70_000, 15_000)]  # shorts: not this rule's
        + [liquidation("NOTLIQUIDUSDT", LiquidationSide.SELL, 90_000, 5_000)]  # not liquid
    )

    liquidation_bursts_evaluate([])  # the first batch after a start rebuilds from Postgres
    [alert] = LiquidationAlert.objects.all()
    assert (alert.symbol, alert.side, alert.rule_id) == ("BTCUSDT", "long", rule.pk)
    assert (alert.usd, alert.count, alert.other_side_usd) == (60_000, 3, 70_000)
    assert alert.threshold_usd == 50_000 and alert.quote_volume_24h == 2_000_000_000

    engine_reset()  # a restart
    liquidation_bursts_evaluate([])
    more = [liquidation("BTCUSDT", LiquidationSide.SELL, 30_000, 1_000)]  # the burst goes on
    liquidations_store(more)
    liquidation_bursts_evaluate(more)
    assert LiquidationAlert.objects.count() == 1

    deadline = time.monotonic() + 10
    while not receiver.accepted() and time.monotonic() < deadline:
        channel_outbox_drain(channel.pk, run_sec=2)
    [post] = receiver.requests
    assert post.status == 200  # the signature verified
    assert post.body["kind"] == "liquidation_burst" and post.body["id"] == alert.id
    assert (post.body["symbol"], post.body["side"], post.body["usd"]) == ("BTCUSDT", "long", 60000)
    assert post.body["bound"] == "lower"

    page = api_client.get("/api/liquidation-alerts", {"symbol": "BTCUSDT", "side": "long"}).json()
    assert [a["id"] for a in page["results"]] == [alert.id]
    assert page["results"][0]["volumeShare"] == pytest.approx(60_000 / 2_000_000_000)
    assert api_client.get("/api/liquidation-alerts", {"side": "sideways"}).status_code == 400


def test_a_rule_change_takes_effect_at_once_and_a_new_rule_tells_a_burst_under_way(redis_client):
    universe({"SOLUSDT": Decimal(400_000_000)})
    rule = burst_rule(threshold_usd=Decimal(1_000_000))
    liquidations_store([liquidation("SOLUSDT", LiquidationSide.SELL, 45_000, 5_000)])
    liquidation_bursts_evaluate([])
    assert not LiquidationAlert.objects.exists()  # under 1M

    # 0.01% of SOL's 400M volume is 40,000 (the USD floor dropped): the burst is over it now
    alert_rule_update(rule, threshold_usd=None, threshold_volume_share=Decimal("0.0001"))
    liquidation_bursts_evaluate([])
    [alert] = LiquidationAlert.objects.all()
    assert (alert.usd, alert.threshold_usd) == (45_000, 40_000)

    alert_rule_update(rule, enabled=False)
    late = [liquidation("SOLUSDT", LiquidationSide.SELL, 900_000, 0)]
    liquidations_store(late)
    liquidation_bursts_evaluate(late)
    assert LiquidationAlert.objects.count() == 1


def test_an_exchange_dump_fires_one_burst_alert_holding_the_sum_of_the_frames_sent(
    on_simulator, redis_client
):
    sim = on_simulator
    sim.control("PATCH", "/sim/streams/faults", {"liquidation_rate": 0})  # the dump's only
    tickers = sim.get("/fapi/v1/ticker/24hr").json()
    symbol = sorted(
        t["symbol"] for t in tickers if t["symbol"].endswith("USDT") and Decimal(t["quoteVolume"])
    )[0]
    universe({symbol: Decimal(10_000_000)})
    burst_rule(name="liq-1m-longs-5k", threshold_usd=Decimal(5_000))
    stop = threading.Event()
    process = StreamsProcess()
    thread = threading.Thread(target=process.run, args=(stop,), daemon=True)
    thread.start()
    try:
        wait_for(lambda: process.client.counters.connects >= 1, 10)
        sim.inject_event(symbol, "dump", 20)
        wait_for(lambda: LiquidationAlert.objects.filter(symbol=symbol).exists(), 30)
        time.sleep(3.0)  # the dump's liquidations go on: no second alert
    finally:
        stop.set()
        thread.join(timeout=10)

    [alert] = LiquidationAlert.objects.filter(symbol=symbol)
    ts_ms = ms_from_datetime(alert.ts)
    sent = [
        r
        for r in sim.control("GET", "/sim/streams/liquidations")
        if r["symbol"] == symbol
        and r["side"] == "SELL"
        and ts_ms - 60_000 <= r["trade_time"] <= ts_ms
    ]
    assert alert.usd == sum(
        (Decimal(r["quantity"]) * Decimal(r["average_price"]) for r in sent), Decimal(0)
    )
    assert alert.count == len(sent) and alert.usd >= 5_000
    assert alert.side == "long" and alert.other_side_usd == 0
    assert alert.mark_price is not None  # from the mark-price stream
