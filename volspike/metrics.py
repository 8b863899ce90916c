"""Prometheus metrics, read at scrape time from Redis and Postgres, so that they count the work of
every process (web, workers, beat) and survive restarts of any one of them."""

from collections.abc import Iterator

from django.db.models import Count
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from alerts.enums import Direction
from alerts.models import OpenInterestAlert
from common.redis import get_redis
from exchange.factory import build_budget
from liquidity.selectors import universe_symbols_published
from oi.keys import SNAPSHOTS_STORED_TOTAL_KEY
from oi.selectors import poller_status
from oi.snapshot_sink import PENDING_KEY, dead_letter_count
from streams.selectors import streams_status


class VolspikeCollector(Collector):
    def collect(self) -> Iterator:
        redis = get_redis()
        budget = build_budget()

        responses = CounterMetricFamily(
            "volspike_exchange_responses",
            "Answers from the exchange by HTTP status (or timeout, connection_error)",
            labels=["outcome"],
        )
        for outcome, count in sorted(budget.outcome_counts().items()):
            responses.add_metric([outcome], count)
        yield responses
        yield GaugeMetricFamily(
            "volspike_exchange_backoff_active",
            "1 while every process backs off after a 429/418 or a weight warning",
            value=1 if budget.backoff_until() else 0,
        )

        universe = universe_symbols_published()
        status = poller_status(universe=sorted(universe))
        counters = status.counters
        yield GaugeMetricFamily(
            "volspike_universe_symbols", "Liquid symbols polled", value=len(universe)
        )
        yield GaugeMetricFamily(
            "volspike_poll_interval_seconds", "Current per-symbol poll interval",
            value=status.interval_sec or 0.0,
        )  # fmt: skip
        yield GaugeMetricFamily(
            "volspike_poller_weight_last_minute",
            "Request weight the poller used over the last 60 s",
            value=status.weight_last_minute,
        )
        yield from _group_metrics(status)
        samples = CounterMetricFamily(
            "volspike_poller_samples", "Open-interest polls by outcome", labels=["outcome"]
        )
        samples.add_metric(["ok"], counters.get("samples_ok", 0))
        samples.add_metric(["failed"], counters.get("samples_failed", 0))
        samples.add_metric(["dropped_late"], counters.get("polls_dropped_late", 0))
        yield samples
        yield CounterMetricFamily(
            "volspike_poller_windows_missed", "Poll windows never dispatched (beat ran late)",
            value=counters.get("windows_missed", 0),
        )  # fmt: skip
        ages = [age for age in status.last_sample_age_sec.values() if age is not None]
        yield GaugeMetricFamily(
            "volspike_poll_lag_seconds",
            "Age of the stalest liquid symbol's latest sample",
            value=max(ages, default=0.0),
        )
        yield CounterMetricFamily(
            "volspike_snapshots_stored", "Snapshot rows newly stored in Postgres",
            value=int(redis.get(SNAPSHOTS_STORED_TOTAL_KEY) or 0),
        )  # fmt: skip
        yield GaugeMetricFamily(
            "volspike_snapshot_batches_parked", "Snapshot batches waiting for a delivery retry",
            value=redis.llen(PENDING_KEY),
        )  # fmt: skip
        yield GaugeMetricFamily(
            "volspike_snapshot_batches_dead_lettered",
            "Snapshot batches refused for good by their store, kept in the admin's dead letters",
            value=dead_letter_count(),
        )

        yield from _stream_metrics()

        alerts = CounterMetricFamily(
            "volspike_alerts", "Open-interest alerts stored", labels=["direction"]
        )
        by_direction = dict(
            OpenInterestAlert.objects.values_list("direction")
            .annotate(n=Count("id"))
            .values_list("direction", "n")
        )
        for direction in Direction:
            alerts.add_metric([direction], by_direction.get(direction, 0))
        yield alerts


def _group_metrics(status) -> Iterator:
    """The egress groups (one per poller IP) and the overload state."""
    live = GaugeMetricFamily(
        "volspike_poller_group_live", "1 while an egress group's heartbeat is fresh",
        labels=["egress"],
    )  # fmt: skip
    budget = GaugeMetricFamily(
        "volspike_poller_group_budget_per_min",
        "An egress group's usable weight budget per minute (the plan's share)",
        labels=["egress"],
    )
    used = GaugeMetricFamily(
        "volspike_poller_group_weight_last_minute",
        "Request weight an egress group's pollers sent over the last 60 s",
        labels=["egress"],
    )
    planned = GaugeMetricFamily(
        "volspike_poller_group_planned_weight_per_min",
        "Request weight per minute the dispatcher plans for an egress group",
        labels=["egress"],
    )
    symbols = GaugeMetricFamily(
        "volspike_poller_group_symbols", "Liquid symbols an egress group polls", labels=["egress"]
    )
    for group in status.groups:
        live.add_metric([group.egress_id], 1 if group.live else 0)
        budget.add_metric([group.egress_id], group.usable_per_min)
        used.add_metric([group.egress_id], group.weight_last_minute)
        planned.add_metric([group.egress_id], group.planned_weight_per_min)
        symbols.add_metric([group.egress_id], len(group.symbols))
    yield from (live, budget, used, planned, symbols)
    yield GaugeMetricFamily(
        "volspike_poller_budget_per_min", "Sum of the live egress groups' usable budgets",
        value=status.max_req_per_min,
    )  # fmt: skip
    yield GaugeMetricFamily(
        "volspike_poller_overloaded",
        "1 while the budgets cannot poll every liquid symbol within OI_MAX_INTERVAL_SEC "
        "(the interval stretches past it)",
        value=1 if status.overloaded else 0,
    )


def _stream_metrics() -> Iterator:
    status = streams_status(outages=0)
    fresh = GaugeMetricFamily(
        "volspike_stream_fresh",
        "1 while a market stream is fresh (its watchdog's view), 0 when stale or never seen",
        labels=["stream"],
    )
    age = GaugeMetricFamily(
        "volspike_stream_last_frame_age_seconds",
        "Age of a market stream's latest frame",
        labels=["stream"],
    )
    frames = CounterMetricFamily(
        "volspike_stream_frames", "Frames received per market stream", labels=["stream"]
    )
    for stream, health in status.health.items():
        fresh.add_metric([stream], 1 if health.fresh else 0)
        if health.last_frame_age_sec is not None:
            age.add_metric([stream], health.last_frame_age_sec)
        frames.add_metric([stream], status.frames.get(stream, 0))
    yield fresh
    yield age
    yield frames
    yield CounterMetricFamily(
        "volspike_stream_connects", "Market stream connections opened",
        value=status.counters.get("connects", 0),
    )  # fmt: skip
    source = GaugeMetricFamily(
        "volspike_mark_price_source",
        "1 for the source of the latest mark prices (stream, or rest while the stream is stale)",
        labels=["source"],
    )
    for name in ("stream", "rest"):
        source.add_metric([name], 1 if status.mark_price_source == name else 0)
    yield source
