"""The coarse ring (one sample per 5 minutes, 25 h) that long windows and the screener's 4h/24h
columns read, on a real Redis: what it keeps, what it trims, how big it gets."""

from decimal import Decimal

from oi.coarse import COARSE_BUCKET_MS
from oi.ring import RingSample, coarse_ring_key, coarse_ring_read, ring_append, ring_key

T0 = 1_764_590_400_000  # a 5-minute boundary
HOUR = 3_600_000
FINE_MS = 3 * HOUR
COARSE_MS = 25 * HOUR


def append(redis_client, samples, now_ms):
    ring_append(redis_client, {"BTCUSDT": samples}, window_ms=FINE_MS, now_ms=now_ms,
                coarse_window_ms=COARSE_MS)  # fmt: skip


def test_each_bucket_keeps_its_earliest_sample_whatever_order_they_arrive_in(redis_client):
    append(redis_client, [RingSample(T0 + 20_000, Decimal(2)), RingSample(T0 + 30_000, Decimal(3))],
           T0 + 30_000)  # fmt: skip
    # a sample written late (a parked batch) that is earlier in the same bucket replaces it
    append(redis_client, [RingSample(T0 + 10_000, Decimal(1), mark_price=Decimal("9.5"))],
           T0 + 40_000)  # fmt: skip
    # and a later one of a bucket already held changes nothing
    append(redis_client, [RingSample(T0 + 290_000, Decimal(4))], T0 + 290_000)
    append(redis_client, [RingSample(T0 + 300_000, Decimal(5))], T0 + 300_000)

    coarse = coarse_ring_read(redis_client, "BTCUSDT", since_ms=0)
    assert [(s.time_ms, s.open_interest, s.mark_price) for s in coarse] == [
        (T0 + 10_000, Decimal(1), Decimal("9.5")),
        (T0 + 300_000, Decimal(5), None),
    ]
    assert redis_client.zcard(ring_key("BTCUSDT")) == 5  # the full ring keeps every sample


def test_the_coarse_ring_is_trimmed_to_25_hours_and_expires_with_its_symbol(redis_client):
    # 26 h of 10-second samples, written an hour at a time (as batches would)
    for hour in range(26):
        batch = [RingSample(t, Decimal(100 + hour))
                 for t in range(T0 + hour * HOUR, T0 + (hour + 1) * HOUR, 10_000)]  # fmt: skip
        append(redis_client, batch, batch[-1].time_ms)
    now = T0 + 26 * HOUR - 10_000
    coarse = coarse_ring_read(redis_client, "BTCUSDT", since_ms=0)
    # one member per 5 minutes, 25 h: the memory bound whatever the polling rate
    assert len(coarse) == COARSE_MS // COARSE_BUCKET_MS
    assert coarse[0].time_ms >= now - COARSE_MS
    assert all(s.time_ms % COARSE_BUCKET_MS == 0 for s in coarse)
    assert redis_client.zcard(ring_key("BTCUSDT")) == FINE_MS // 10_000 + 1
    assert 0 < redis_client.pttl(coarse_ring_key("BTCUSDT")) <= COARSE_MS


def test_a_sample_dated_ahead_of_the_clock_never_enters_the_coarse_ring(redis_client):
    append(redis_client, [RingSample(T0 + 10 * 60_000, Decimal(1))], T0)
    assert coarse_ring_read(redis_client, "BTCUSDT", since_ms=0) == []


def test_the_sample_pipelines_ring_sink_writes_both_rings(redis_client, settings):
    from datetime import UTC, datetime

    from oi.batches import SnapshotRow
    from oi.pipeline import BatchOrigin, SampleBatch
    from oi.sinks import ring_append as ring_sink

    now = datetime.now(tz=UTC)
    row = SnapshotRow(symbol="ETHUSDT", ts=now, open_interest=Decimal(7),
                      open_interest_usd=Decimal(14), mark_price=Decimal(2),
                      source="realtime")  # fmt: skip
    ring_sink(
        SampleBatch(rows=(row,), origin=BatchOrigin.POLLER, at_ms=int(now.timestamp() * 1000))
    )
    (sample,) = coarse_ring_read(redis_client, "ETHUSDT", since_ms=0)
    assert sample.open_interest == Decimal(7) and sample.mark_price == Decimal(2)


def test_the_backfill_fills_the_coarse_ring_with_25_hours_in_one_request(
    sim, settings, redis_client
):
    # given a fresh install: the exchange (the simulator, over HTTP) and empty rings
    from common.redis import get_redis
    from oi import poller

    settings.BINANCE_BASE_URL = sim.base_url
    get_redis.cache_clear()
    poller._thread_clients.__dict__.clear()
    symbol = next(s["symbol"] for s in sim.get("/fapi/v1/exchangeInfo").json()["symbols"]
                  if s["status"] == "TRADING" and s["contractType"] == "PERPETUAL")  # fmt: skip
    sim.reset()

    filled = poller.ring_backfill([symbol])

    coarse = coarse_ring_read(redis_client, symbol, since_ms=0)
    # one openInterestHist request of 301 5-minute entries: 25 h in the coarse ring, 3 h in the
    # full-resolution one
    assert filled[symbol] == 301
    assert len(coarse) >= 299 and all(s.backfilled for s in coarse)
    assert coarse[-1].time_ms - coarse[0].time_ms >= 24 * HOUR
    assert redis_client.zcard(ring_key(symbol)) <= FINE_MS // COARSE_BUCKET_MS + 1
    (ip,) = sim.stats()["ips"].values()
    assert ip["endpoints"] == {"/futures/data/openInterestHist": 1}
    assert ip["futures_data_used"] == 1 and ip["weight_used"] == 0
    get_redis.cache_clear()


def test_after_redis_forgets_its_scripts_the_append_still_reaches_the_coarse_ring(redis_client):
    # a restarted Redis has an empty script cache: the append loads the script and writes again
    append(redis_client, [RingSample(T0 + 10_000, Decimal(1))], T0 + 10_000)
    redis_client.script_flush()
    append(redis_client, [RingSample(T0 + 300_000, Decimal(2))], T0 + 300_000)
    coarse = coarse_ring_read(redis_client, "BTCUSDT", since_ms=0)
    assert [(s.time_ms, s.open_interest) for s in coarse] == [
        (T0 + 10_000, Decimal(1)),
        (T0 + 300_000, Decimal(2)),
    ]
    assert redis_client.zcard(ring_key("BTCUSDT")) == 2
