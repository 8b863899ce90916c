"""The checks behind the conditions, in this process against the real Redis and Postgres: a 429
counted by the shared budget, a long back-off of another cause, the start-up grace, reminders."""

import time

import pytest
from django.test import override_settings

from common.redis import get_redis
from common.timeutil import now_ms
from exchange.factory import build_budget
from exchange.streams import MarketStream
from ops.conditions import OpsCondition
from ops.models import OpsIncident
from ops.services import ops_check_run, ops_memory_forget
from streams.keys import LAST_FRAME_KEY
from tests.ops import support

SINKS = ["tests.ops.support.message_collect"]


@pytest.fixture(autouse=True)
def fresh(redis_client):
    ops_memory_forget()
    support.MESSAGES.clear()
    get_redis.cache_clear()
    yield
    ops_memory_forget()


def incidents(condition: OpsCondition) -> list[OpsIncident]:
    return list(OpsIncident.objects.filter(condition=condition).order_by("opened_at"))


@override_settings(OPS_EVENT_SINKS=SINKS, OPS_BACKOFF_MAX_SEC=1.0)
def test_a_429_opens_at_once_and_another_back_off_only_once_it_lasted(db):
    budget = build_budget()
    ops_check_run()  # the first check: the budget's counters as they are
    budget.record_outcome("429")
    budget.flush_outcomes()
    ops_check_run()
    (banned,) = incidents(OpsCondition.EXCHANGE_BANNED)
    assert "the exchange answered 1 × 429 since the last check" in banned.detail
    ops_check_run()
    ops_check_run()
    (banned,) = incidents(OpsCondition.EXCHANGE_BANNED)
    assert banned.recovered_at is not None

    budget.back_off(seconds=120, reason="used-weight 2300/2400")
    ops_check_run()
    assert incidents(OpsCondition.EXCHANGE_BACKOFF) == []  # active, but not for a second yet
    time.sleep(1.1)
    ops_check_run()
    (backoff,) = incidents(OpsCondition.EXCHANGE_BACKOFF)
    assert "used-weight 2300/2400" in backoff.detail and backoff.active
    assert len(incidents(OpsCondition.EXCHANGE_BANNED)) == 1  # not a ban
    budget.clear_backoff()
    ops_check_run()
    ops_check_run()
    (backoff,) = incidents(OpsCondition.EXCHANGE_BACKOFF)
    assert backoff.recovered_at is not None
    assert [(m["title"], m["recovered"]) for m in support.MESSAGES] == [
        ("Ops: exchange rate limit or ban (429/418)", False),
        ("Ops: exchange rate limit or ban (429/418)", True),
        ("Ops: exchange back-off longer than a minute", False),
        ("Ops: exchange back-off longer than a minute", True),
    ]


@override_settings(OPS_EVENT_SINKS=SINKS)
def test_polling_and_the_universe_count_only_after_the_start_up_grace(db):
    # nothing runs here: no beat, no poller, no universe
    for _ in range(3):
        ops_check_run()
    assert OpsIncident.objects.count() == 0
    with override_settings(OPS_STARTUP_GRACE_SEC=0):
        ops_check_run()
        ops_check_run()
    (stalled,) = incidents(OpsCondition.POLLING_STALLED)
    assert "beat: no poll dispatch ever sent" in stalled.detail
    (stale,) = incidents(OpsCondition.UNIVERSE_STALE)
    assert "never refreshed successfully" in stale.detail


@override_settings(OPS_EVENT_SINKS=SINKS, OPS_STARTUP_GRACE_SEC=0, STREAMS_ENABLED=False)
def test_an_incident_still_open_is_told_again_at_the_reminder_interval(db, caplog):
    ops_check_run()
    ops_check_run()
    assert len(support.MESSAGES) == 2  # polling stalled, universe stale
    ops_check_run()
    assert len(support.MESSAGES) == 2  # the hour has not passed
    with override_settings(OPS_REMINDER_SEC=0.05):
        time.sleep(0.1)
        ops_check_run()
    reminders = [m for m in support.MESSAGES[2:]]
    assert sorted(m["title"] for m in reminders) == [
        "Ops, still: liquid universe stale",
        "Ops, still: polling stalled",
    ]
    # each reminder is a message of its own (a sink that tells a key once must not swallow it),
    # keyed under its incident
    assert {m["dedup_key"].split(":reminder:")[0] for m in reminders} == {
        m["dedup_key"] for m in support.MESSAGES[:2]
    }
    assert [row.reminders for row in incidents(OpsCondition.POLLING_STALLED)] == [1]
    assert any("polling_stalled reminder" in r.getMessage() for r in caplog.records)


@override_settings(OPS_EVENT_SINKS=SINKS, STREAMS_STALE_FACTOR=2.0)
def test_a_silent_market_stream_opens_once_and_recovers_when_frames_return(db, redis_client):
    def frames(age_sec: float) -> None:
        at = now_ms() - int(age_sec * 1000)
        redis_client.hset(LAST_FRAME_KEY, mapping={s: at for s in MarketStream})

    # never heard: unknown during the start-up grace, then an incident
    ops_check_run()
    ops_check_run()
    assert incidents(OpsCondition.MARKET_STREAM_SILENT) == []
    with override_settings(OPS_STARTUP_GRACE_SEC=0):
        ops_check_run()
        ops_check_run()
        (never,) = incidents(OpsCondition.MARKET_STREAM_SILENT)
        assert "!markPrice@arr@1s: no frame ever received" in never.detail
        frames(0)
        ops_check_run()
        ops_check_run()
        (never,) = incidents(OpsCondition.MARKET_STREAM_SILENT)
        assert never.recovered_at is not None

    # fresh frames, then silent past cadence × factor (2 s): a new incident, with the age
    ops_check_run()
    frames(10)
    ops_check_run()
    ops_check_run()
    _, silent = incidents(OpsCondition.MARKET_STREAM_SILENT)
    assert silent.active
    assert "!markPrice@arr@1s: last frame 10 s ago (stale after 2 s)" in silent.detail
    assert "!miniTicker@arr" in silent.detail and "forceOrder" not in silent.detail
    titles = [m["title"] for m in support.MESSAGES if "market stream" in m["title"]]
    assert titles == ["Ops: market stream silent"] * 3  # opened, recovered, opened


@override_settings(OPS_EVENT_SINKS=SINKS, OPS_STARTUP_GRACE_SEC=0, STREAMS_ENABLED=False)
def test_disabled_streams_are_not_silent(db):
    ops_check_run()
    ops_check_run()
    assert incidents(OpsCondition.MARKET_STREAM_SILENT) == []
