"""The sample pipeline (oi.pipeline): its sinks run in the order SAMPLE_PIPELINE_SINKS gives, each
tested with the others cut out through that setting; real Redis, Postgres and channel layer."""

import asyncio
import json
from datetime import timedelta
from decimal import Decimal

import pytest
from websockets.sync.client import connect

from alerts.evaluation import RULE_STATE_KEY
from alerts.models import AlertRule, AlertSource, OpenInterestAlert
from common.realtime import OI_UPDATES_GROUP
from common.timeutil import datetime_from_ms, ms_from_datetime, now_ms
from liquidity.services import REDIS_UNIVERSE_KEY
from oi.models import OpenInterestSnapshot, SnapshotSource
from oi.pipeline import BatchOrigin, SampleBatch, sample_batch_process
from oi.ring import LAST_SAMPLE_KEY, RingSample, ring_append, ring_read
from oi.snapshot_sink import PENDING_KEY
from tests.fixtures.feed import frames_until

pytestmark = pytest.mark.django_db(transaction=True)

POSTGRES = "oi.sinks.postgres_store"
RING = "oi.sinks.ring_append"
FEED = "feed.sinks.feed_publish"
ALERTS = "alerts.sinks.alerts_evaluate_batch"
PROBE = "tests.oi.test_pipeline.probe_sink"
INGEST_URL = "/api/market/open-interest/ingest"

# What probe_sink saw, each time it ran: (Postgres rows, ring members) of the batch's symbols.
probe_seen: list[tuple[int, int]] = []


def probe_sink(batch: SampleBatch) -> None:
    """A sink of this test's own: one more settings line, nothing else."""
    from common.redis import get_redis

    probe_seen.append(
        (
            OpenInterestSnapshot.objects.filter(symbol__in=batch.symbols).count(),
            sum(len(ring_read(get_redis(), symbol)) for symbol in batch.symbols),
        )
    )


def row(symbol: str = "SOLUSDT", *, oi: str = "104000", mark: str | None = "150", ago_ms=1_000):
    from oi.batches import SnapshotRow

    mark_price = Decimal(mark) if mark is not None else None
    return SnapshotRow(
        symbol=symbol,
        ts=datetime_from_ms(now_ms() - ago_ms),
        open_interest=Decimal(oi),
        open_interest_usd=Decimal(oi) * mark_price if mark_price is not None else None,
        mark_price=mark_price,
        source=SnapshotSource.REALTIME,
    )


def batch_of(*rows, origin=BatchOrigin.POLLER, stored=False) -> SampleBatch:
    return SampleBatch(tuple(rows), origin, now_ms(), stored=stored)


def feed_messages_during(run, *, seconds: float = 3.0) -> list[dict]:
    """The channel-layer messages of the update group while `run()` runs in a thread."""
    from channels.layers import get_channel_layer

    async def listen() -> list[dict]:
        layer = get_channel_layer()
        channel = await layer.new_channel()
        await layer.group_add(OI_UPDATES_GROUP, channel)
        await asyncio.to_thread(run)
        received = []
        try:
            while True:
                received.append(await asyncio.wait_for(layer.receive(channel), seconds))
        except TimeoutError:
            pass
        await layer.group_discard(OI_UPDATES_GROUP, channel)
        return received

    return asyncio.run(listen())


def flat_history(redis_client, symbol: str, oi: int, minutes: int) -> None:
    """`minutes` of samples every 30 s, as the poller would have left them in the ring."""
    start = now_ms() - minutes * 60_000
    samples = [
        RingSample(start + i * 30_000, Decimal(oi), mark_price=Decimal(150))
        for i in range(minutes * 2)
    ]
    ring_append(redis_client, {symbol: samples}, window_ms=3 * 3600_000, now_ms=now_ms())


def test_the_sinks_run_in_the_settings_order_and_a_new_sink_is_one_line(settings, redis_client):
    probe_seen.clear()
    settings.SAMPLE_PIPELINE_SINKS = [PROBE, POSTGRES, PROBE, RING, PROBE]
    sample_batch_process(batch_of(row()))
    # nothing, then in Postgres only, then in Postgres and the ring
    assert probe_seen == [(0, 0), (1, 0), (1, 1)]

    probe_seen.clear()
    settings.SAMPLE_PIPELINE_SINKS = [PROBE]
    sample_batch_process(batch_of())  # an empty batch goes nowhere
    assert probe_seen == []


def test_the_postgres_sink_alone_stores_the_batch_once(settings, redis_client):
    settings.SAMPLE_PIPELINE_SINKS = [POSTGRES]
    sample = row("SOLUSDT")
    sample_batch_process(batch_of(sample, row("ETHUSDT", mark=None)))
    sample_batch_process(batch_of(sample))  # the same sample again: stored once

    stored = {r.symbol: r for r in OpenInterestSnapshot.objects.all()}
    assert sorted(stored) == ["ETHUSDT", "SOLUSDT"]
    assert stored["SOLUSDT"].open_interest_usd == Decimal(104000 * 150)
    assert stored["SOLUSDT"].source == "realtime"
    assert stored["ETHUSDT"].mark_price is None
    assert ring_read(redis_client, "SOLUSDT") == []
    # a batch the ingest API stored already is not written again
    sample_batch_process(batch_of(row("BTCUSDT"), origin=BatchOrigin.INGEST, stored=True))
    assert not OpenInterestSnapshot.objects.filter(symbol="BTCUSDT").exists()


def test_a_batch_postgres_cannot_take_is_parked_and_the_pipeline_goes_on(settings, redis_client):
    settings.SAMPLE_PIPELINE_SINKS = [POSTGRES, RING]
    settings.OI_REMOTE_INGEST_URL = "http://127.0.0.1:9/ingest"  # nothing listens there
    sample_batch_process(batch_of(row("SOLUSDT")))
    (parked,) = redis_client.lrange(PENDING_KEY, 0, -1)
    assert [r["symbol"] for r in json.loads(parked)["data"]] == ["SOLUSDT"]
    assert len(ring_read(redis_client, "SOLUSDT")) == 1


def test_the_ring_sink_alone_appends_and_only_the_poller_stamps_the_last_sample(
    settings, redis_client
):
    settings.SAMPLE_PIPELINE_SINKS = [RING]
    polled, ingested = row("SOLUSDT", ago_ms=2_000), row("ETHUSDT", oi="7.5", mark=None)
    sample_batch_process(batch_of(polled))
    sample_batch_process(batch_of(ingested, origin=BatchOrigin.INGEST, stored=True))

    (sample,) = ring_read(redis_client, "SOLUSDT")
    assert (sample.open_interest, sample.mark_price) == (Decimal(104000), Decimal(150))
    assert datetime_from_ms(sample.time_ms) == polled.ts
    assert ring_read(redis_client, "ETHUSDT")[0].open_interest == Decimal("7.5")
    assert set(redis_client.hkeys(LAST_SAMPLE_KEY)) == {"SOLUSDT"}
    assert OpenInterestSnapshot.objects.count() == 0


def test_the_feed_sink_alone_publishes_todays_update_message(settings, redis_client):
    settings.SAMPLE_PIPELINE_SINKS = [FEED]
    rows = (row("SOLUSDT"), row("ETHUSDT", mark=None))

    messages = feed_messages_during(lambda: sample_batch_process(batch_of(*rows)))

    assert messages == [{"type": "oi.update", "data": [r.as_json() for r in rows]}]
    assert OpenInterestSnapshot.objects.count() == 0
    assert ring_read(redis_client, "SOLUSDT") == []


def test_the_alert_sink_alone_evaluates_the_batch_with_its_source(settings, redis_client):
    settings.SAMPLE_PIPELINE_SINKS = [ALERTS]
    AlertRule.objects.update(min_delta_contracts=None)
    for symbol in ("SOLUSDT", "ETHUSDT"):
        flat_history(redis_client, symbol, 100_000, minutes=10)
    polled, ingested = row("SOLUSDT", oi="104000"), row("ETHUSDT", oi="104000")
    # the ring sink has run before (the engine reads each symbol's history from the ring)
    for sample in (polled, ingested):
        ring_append(
            redis_client,
            {sample.symbol: [RingSample(ms_from_datetime(sample.ts), sample.open_interest)]},
            window_ms=3 * 3600_000,
            now_ms=now_ms(),
        )

    sample_batch_process(batch_of(polled))
    sample_batch_process(batch_of(ingested, origin=BatchOrigin.INGEST, stored=True))

    alerts = {a.symbol: a for a in OpenInterestAlert.objects.all()}
    assert sorted(alerts) == ["ETHUSDT", "SOLUSDT"]
    assert alerts["SOLUSDT"].source == AlertSource.POLLER
    assert alerts["ETHUSDT"].source == AlertSource.INGEST
    assert alerts["SOLUSDT"].mark_price == 150  # the batch's mark price
    assert OpenInterestSnapshot.objects.count() == 0


def test_a_failed_alert_evaluation_is_logged_and_the_pipeline_goes_on(
    settings, redis_client, caplog
):
    probe_seen.clear()
    settings.SAMPLE_PIPELINE_SINKS = [RING, ALERTS, PROBE]
    flat_history(redis_client, "SOLUSDT", 100_000, minutes=10)
    AlertRule.objects.update(min_delta_contracts=None)
    redis_client.set(RULE_STATE_KEY, "not a hash")  # every rule-state read fails: WRONGTYPE

    sample_batch_process(batch_of(row("SOLUSDT", oi="104000")))

    assert probe_seen == [(0, 21)]
    (failure,) = [r for r in caplog.records if r.message == "alert evaluation failed"]
    assert "ResponseError" in failure.cause
    assert OpenInterestAlert.objects.count() == 0


@pytest.mark.integration
def test_ingested_rows_of_liquid_symbols_reach_the_feed_and_the_ring_through_a_worker(
    asgi_server, celery_processes, redis_client, writer_client
):
    """The ingest path's second half runs the same sinks in a worker: its liquid rows become
    open_interest_update frames, as the poller's do; rows of other symbols stay in Postgres."""
    redis_client.sadd(REDIS_UNIVERSE_KEY, "SOLUSDT")
    celery_processes.start_procfile_worker("worker")
    at = datetime_from_ms(now_ms()) - timedelta(seconds=5)
    body = {
        "timestamp": at.isoformat(),
        "source": "realtime",
        "data": [
            {"symbol": "SOLUSDT", "openInterest": "104000", "markPrice": "150"},
            {"symbol": "NOTLISTEDUSDT", "openInterest": "5"},
        ],
    }
    url = asgi_server.replace("http://", "ws://") + "/ws/open-interest/"
    with connect(url) as ws:
        assert json.loads(ws.recv(timeout=5))["type"] == "subscribed"
        answer = writer_client.post(INGEST_URL, body, format="json").json()
        got = frames_until(
            ws, lambda got: any(f["type"] == "open_interest_update" for f in got), 20
        )

    assert answer["inserted"] == 2
    (update,) = [f for f in got if f["type"] == "open_interest_update"]
    assert [(r["symbol"], r["openInterest"], r["markPrice"]) for r in update["data"]] == [
        ("SOLUSDT", "104000", "150")
    ]
    assert len(ring_read(redis_client, "SOLUSDT")) == 1
    assert ring_read(redis_client, "NOTLISTEDUSDT") == []
    assert OpenInterestSnapshot.objects.count() == 2


def test_the_poller_hands_its_checked_batch_to_the_pipeline(settings, redis_client):
    """poll_results_store runs no sink of its own: with one recording sink configured, nothing
    is stored, and the sink gets the checked batch."""
    from exchange.client import OpenInterest
    from oi.poller import poll_results_store

    settings.SAMPLE_PIPELINE_SINKS = ["tests.oi.test_pipeline.keep_sink"]
    kept.clear()
    sample = OpenInterest(symbol="SOLUSDT", open_interest=Decimal("5.0"), time=row().ts)

    poll_results_store([sample], {}, weight=1)

    (batch,) = kept
    assert batch.origin is BatchOrigin.POLLER
    assert [(r.symbol, r.open_interest, r.source) for r in batch.rows] == [
        ("SOLUSDT", Decimal(5), SnapshotSource.REALTIME)
    ]
    assert OpenInterestSnapshot.objects.count() == 0
    assert ring_read(redis_client, "SOLUSDT") == []


kept: list[SampleBatch] = []


def keep_sink(batch: SampleBatch) -> None:
    kept.append(batch)
