"""The streams process (streams.runner) against the simulator, with real Redis and Postgres: the
watchdog, the poller's switch between the stream and REST premiumIndex, the liquidity job's
volume source, the readiness/metrics/API reports, and liquidation sums."""

import threading
import time
from datetime import datetime, timedelta
from decimal import Decimal

import pytest

from common.timeutil import datetime_from_ms, now_ms
from exchange.streams import MarketStream
from liquidity.services import REDIS_UNIVERSE_KEY, quote_volumes_24h
from oi.poller import poller_dispatch, poller_run_shard
from oi.schedule import MARK_PRICE_JOB
from streams.keys import MARK_PRICE_KEY, QUOTE_VOLUME_KEY
from streams.models import Liquidation
from streams.runner import StreamsProcess
from streams.selectors import liquidation_sums_by_symbol, mark_price_source, streams_health
from streams.watchdog import StreamState
from tests.streams.conftest import ON_SIMULATOR_STALE_FACTOR, wait_for

pytestmark = pytest.mark.django_db(transaction=True)

STALE_FACTOR = ON_SIMULATOR_STALE_FACTOR


def mark_state() -> StreamState:
    return streams_health()[MarketStream.MARK_PRICE].state


def planned(plan) -> list[str]:
    return [symbol for shard in plan.shards for _, symbol in shard.polls]


def premium_index_requests(sim) -> int:
    return sum(
        ip["endpoints"].get("/fapi/v1/premiumIndex", 0) for ip in sim.stats()["ips"].values()
    )


def test_a_silent_stream_is_caught_and_the_poller_falls_back_to_rest_and_back(
    streams_process, on_simulator, redis_client, settings
):
    sim = on_simulator
    symbols = [s["symbol"] for s in sim.get("/fapi/v1/ticker/24hr").json()][:40]
    redis_client.sadd(REDIS_UNIVERSE_KEY, *symbols)
    settings.OI_MAX_REQ_PER_MIN = 200  # so that 10 weight moves the interval: 40+10 vs 40
    wait_for(lambda: mark_state() is StreamState.FRESH, 10)
    assert redis_client.hlen(MARK_PRICE_KEY) >= len(symbols)
    window_ms = settings.OI_WINDOW_SEC * 1000

    # fresh: no premiumIndex planned, and its weight goes to open-interest polls
    fresh_plan = poller_dispatch(at_ms=(now_ms() // window_ms + 100) * window_ms)
    assert MARK_PRICE_JOB not in planned(fresh_plan)
    assert fresh_plan.interval_sec == 12.13  # 60 × 40 / (200 × 0.99), up to 10 ms

    # the mark-price stream goes silent (the connection stays): stale within its threshold
    sim.control("PATCH", "/sim/streams/faults", {"silent": [MarketStream.MARK_PRICE]})
    took = wait_for(lambda: mark_state() is StreamState.STALE, 10)
    assert took <= 2.0 + 1.0 + 0.5  # threshold, + up to one cadence since the last frame

    # the next dispatch sends premiumIndex at once (the windows planned ahead held none)
    at = now_ms()
    stale_plan = poller_dispatch(at_ms=at)
    assert stale_plan.interval_sec == 15.16  # 60 × (40 + 10) / (200 × 0.99)
    (now_shard,) = [s for s in stale_plan.shards if s.polls == [(at, MARK_PRICE_JOB)]]
    before = premium_index_requests(sim)
    poller_run_shard(now_shard)
    assert premium_index_requests(sim) == before + 1
    assert mark_price_source() == "rest"
    # and every interval plans it again: 8 windows of 2 s hold a 15.16 s cycle
    base = now_ms() // window_ms + 200
    cycle = [poller_dispatch(at_ms=(base + k) * window_ms) for k in (0, 4)]
    assert sum(planned(plan).count(MARK_PRICE_JOB) for plan in cycle) >= 1

    # the stream comes back: fresh again, and the poller leaves REST
    sim.control("PATCH", "/sim/streams/faults", {"silent": []})
    wait_for(lambda: mark_state() is StreamState.FRESH, 5)
    wait_for(lambda: mark_price_source() == "stream", 3)
    back = poller_dispatch(at_ms=(now_ms() // window_ms + 300) * window_ms)
    assert MARK_PRICE_JOB not in planned(back)
    assert back.interval_sec == 12.13


def test_on_a_wrong_path_the_watchdog_reports_a_stream_never_seen(
    on_simulator, settings, api_client, redis_client
):
    settings.STREAMS_PATH = ""  # the unrouted root: connects, ACKs, stays silent
    stop = threading.Event()
    process = StreamsProcess()
    thread = threading.Thread(target=process.run, args=(stop,), daemon=True)
    thread.start()
    try:
        wait_for(lambda: process.client.counters.connects == 1, 5)
        time.sleep(1.5)
        assert {h.state for h in streams_health().values()} == {StreamState.NEVER}
        ready = api_client.get("/health/ready").json()
        assert "streams" not in ready["failing"]  # reported, not a 503 of its own
        assert ready["components"]["streams"].startswith("degraded: !markPrice@arr@1s never")
        metrics = api_client.get("/metrics").content.decode()
        assert 'volspike_stream_fresh{stream="!markPrice@arr@1s"} 0.0' in metrics
        status = api_client.get("/api/market/open-interest/poller").json()["marketStreams"]
        assert status["streams"]["!markPrice@arr@1s"]["state"] == "never"
        assert status["counters"]["connects"] == 1
    finally:
        stop.set()
        thread.join(timeout=10)


def test_fresh_streams_show_in_readiness_metrics_and_the_poller_api(streams_process, api_client):
    wait_for(lambda: mark_state() is StreamState.FRESH, 10)

    def streams_readiness() -> str:
        return api_client.get("/health/ready").json()["components"]["streams"]

    # each stream is fresh from its own first frame: the mini tickers can come a moment later
    wait_for(lambda: streams_readiness() == "every market stream fresh", 10)
    metrics = api_client.get("/metrics").content.decode()
    assert 'volspike_stream_fresh{stream="!markPrice@arr@1s"} 1.0' in metrics
    assert 'volspike_mark_price_source{source="stream"} 1.0' in metrics
    streams = api_client.get("/api/market/open-interest/poller").json()["marketStreams"]
    assert streams["markPriceSource"] == "stream"
    assert streams["streams"]["!miniTicker@arr"]["frames"] >= 1


def test_a_dropped_connection_is_recorded_as_an_outage_in_the_poller_api(
    streams_process, on_simulator, api_client
):
    wait_for(lambda: mark_state() is StreamState.FRESH, 10)
    dropped_at = now_ms()
    on_simulator.control("POST", "/sim/streams/drop")
    dropped_by = now_ms()  # a frame may still arrive between the two: the outage starts at it
    wait_for(lambda: streams_process.client.counters.connects == 2, 10)
    wait_for(
        lambda: api_client.get("/api/market/open-interest/poller").json()["marketStreams"][
            "recentOutages"
        ],
        5,
    )
    streams = api_client.get("/api/market/open-interest/poller").json()["marketStreams"]
    (outage,) = streams["recentOutages"]
    assert outage["cause"] == "dropped"
    start = datetime_from_ms(dropped_at)
    assert start - timedelta(seconds=1.5) <= _parse(outage["start"]) <= datetime_from_ms(dropped_by)
    assert _parse(outage["end"]) > start
    assert streams["counters"]["connects"] == 2


def _parse(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def test_the_liquidity_job_takes_24h_volume_from_the_stream_while_fresh(
    streams_process, on_simulator, redis_client
):
    sim = on_simulator
    wait_for(lambda: streams_health()[MarketStream.MINI_TICKER].fresh, 10)
    time.sleep(1.2)  # STREAMS_TICKER_WARMUP_SEC
    tickers_before = sim.stats()["ips"].get("127.0.0.1", {}).get("endpoints", {})
    volumes = quote_volumes_24h()
    rest = {t["symbol"]: Decimal(t["quoteVolume"]) for t in sim.get("/fapi/v1/ticker/24hr").json()}
    trading = [s for s, v in rest.items() if v > 0]
    assert set(trading) <= set(volumes)
    for symbol in trading:
        assert abs(volumes[symbol] / rest[symbol] - 1) < Decimal("0.001")
    endpoints = sim.stats()["ips"]["127.0.0.1"]["endpoints"]
    # the only ticker/24hr call was this test's own
    assert (
        endpoints.get("/fapi/v1/ticker/24hr", 0)
        == tickers_before.get("/fapi/v1/ticker/24hr", 0) + 1
    )

    sim.control("PATCH", "/sim/streams/faults", {"silent": ["*"]})
    wait_for(lambda: not streams_health()[MarketStream.MINI_TICKER].fresh, 10)
    redis_client.delete(QUOTE_VOLUME_KEY)
    assert quote_volumes_24h().keys() == rest.keys()  # from REST ticker/24hr


def test_liquidation_sums_over_a_window_equal_the_frames_sent(on_simulator, settings, redis_client):
    sim = on_simulator
    sim.control("PATCH", "/sim/streams/faults", {"liquidation_rate": 0.3})
    stop = threading.Event()
    process = StreamsProcess()
    thread = threading.Thread(target=process.run, args=(stop,), daemon=True)
    thread.start()
    wait_for(lambda: process.client.counters.frames.get(MarketStream.LIQUIDATIONS, 0) > 0, 10)
    time.sleep(3.0)
    stop.set()
    thread.join(timeout=10)

    received = process.client.counters.frames[MarketStream.LIQUIDATIONS]
    assert Liquidation.objects.count() == received  # a graceful stop stores all it received
    # The simulator sends each second's liquidations (one trade time) together; the stop may
    # close the socket in the middle of the last second's, so the window ends before that one.
    last_second = Liquidation.objects.order_by("-time").first().time
    stored = list(Liquidation.objects.filter(time__lt=last_second).order_by("time"))
    assert len(stored) >= 20
    first, last = stored[0].time, stored[-1].time
    sent = [
        record
        for record in sim.control("GET", "/sim/streams/liquidations")
        if first <= datetime_from_ms(record["trade_time"]) <= last
    ]
    assert len(sent) == len(stored)  # every frame sent in the window was stored once

    expected: dict[str, dict[str, Decimal]] = {}
    for record in sent:
        usd = Decimal(record["quantity"]) * Decimal(record["average_price"])
        sides = expected.setdefault(record["symbol"], {"SELL": Decimal(0), "BUY": Decimal(0)})
        sides[record["side"]] += usd
    sums = liquidation_sums_by_symbol(since=first, until=last + timedelta(milliseconds=1))
    assert set(sums) == set(expected)
    for symbol, sides in expected.items():
        assert sums[symbol].long_usd == sides["SELL"]
        assert sums[symbol].short_usd == sides["BUY"]
    # a window that starts after the first one drops that one's amount
    later = liquidation_sums_by_symbol(
        since=first + timedelta(milliseconds=1), until=last + timedelta(milliseconds=1)
    )
    assert sum(s.count for s in later.values()) == len(stored) - sum(
        1 for row in stored if row.time == first
    )


def test_retention_deletes_only_liquidations_older_than_the_setting(db, settings, redis_client):
    from django.utils import timezone

    from exchange.streams import Liquidation as LiquidationValue
    from exchange.streams import LiquidationSide
    from streams.services import liquidations_prune, liquidations_store

    settings.STREAMS_LIQUIDATION_RETENTION_DAYS = 7
    now_ms_ = int(timezone.now().timestamp() * 1000)
    day = 86_400_000

    def value(age_days: float) -> LiquidationValue:
        at = now_ms_ - int(age_days * day)
        return LiquidationValue(
            "BTCUSDT", LiquidationSide.SELL, Decimal("100"), Decimal("101"), Decimal("2"), at, at
        )

    liquidations_store([value(8), value(7.01), value(6.9), value(0)])
    assert liquidations_prune(batch_size=1) == 2
    assert sorted(round(row.usd) for row in Liquidation.objects.all()) == [202, 202]
    assert Liquidation.objects.count() == 2
