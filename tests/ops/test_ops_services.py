"""The ops checks in this process against the real Postgres and Redis: dead letters appearing,
Redis unreachable (a port nothing listens on), Postgres unreachable (a check run by a process
without a database), the claim that keeps two processes from sending twice, and the API."""

import json
import logging
import subprocess
import sys
from datetime import timedelta

import pytest
from django.test import override_settings
from django.utils import timezone

from common.redis import get_redis
from oi.models import SnapshotDeadLetter
from ops.conditions import OpsCondition, OpsEvent, OpsEventKind
from ops.keys import PENDING_KEY
from ops.models import OpsIncident
from ops.services import CheckOutcome, ops_check_run, ops_event_record, ops_memory_forget
from ops.watchdog import watchdog_tick
from tests.fixtures import processes
from tests.ops import support

SINKS = ["tests.ops.support.message_collect"]


@pytest.fixture(autouse=True)
def fresh(redis_client):
    ops_memory_forget()
    support.MESSAGES.clear()
    yield
    ops_memory_forget()
    get_redis.cache_clear()


def rows(condition: OpsCondition) -> list[OpsIncident]:
    return list(OpsIncident.objects.filter(condition=condition).order_by("opened_at"))


@override_settings(OPS_EVENT_SINKS=SINKS)
def test_dead_letters_appearing_open_one_incident_and_it_recovers_after_a_quiet_spell(db, caplog):
    caplog.set_level(logging.INFO, logger="ops.services")
    support.dead_letter(
        "before the first check, long ago"
    )  # the first check looks back one period only
    SnapshotDeadLetter.objects.update(failed_at=timezone.now() - timedelta(hours=1))
    assert ops_check_run() is CheckOutcome.RAN
    assert rows(OpsCondition.DEAD_LETTERS) == [] and support.MESSAGES == []

    support.dead_letter("numeric field overflow")
    support.dead_letter("numeric field overflow again")
    ops_check_run()
    (incident,) = rows(OpsCondition.DEAD_LETTERS)
    assert incident.active and "2 snapshot batch(es), 6 rows" in incident.detail
    assert "numeric field overflow again" in incident.detail
    assert [m["recovered"] for m in support.MESSAGES] == [False]
    assert support.MESSAGES[0]["title"] == "Ops: dead-lettered snapshot batches"
    opened_lines = [r for r in caplog.records if "dead_letters opened" in r.getMessage()]
    assert len(opened_lines) == 1 and opened_lines[0].levelno == logging.WARNING

    support.dead_letter("one more")  # the same incident: no second message
    ops_check_run()
    ops_check_run()
    assert len(support.MESSAGES) == 1 and len(rows(OpsCondition.DEAD_LETTERS)) == 1

    with override_settings(OPS_DEAD_LETTER_QUIET_SEC=0):
        ops_check_run()
    (incident,) = rows(OpsCondition.DEAD_LETTERS)
    assert incident.recovered_at is not None
    assert [m["recovered"] for m in support.MESSAGES] == [False, True]
    assert support.MESSAGES[1]["dedup_key"] == support.MESSAGES[0]["dedup_key"]
    recovered_lines = [r for r in caplog.records if "dead_letters recovered" in r.getMessage()]
    assert len(recovered_lines) == 1 and recovered_lines[0].levelno == logging.INFO


@override_settings(OPS_EVENT_SINKS=SINKS)
def test_redis_unreachable_opens_from_process_memory_and_recovers(db):
    dead = f"redis://127.0.0.1:{processes.free_port()}/0"
    with override_settings(REDIS_URL=dead):
        get_redis.cache_clear()
        # beat's tasks cannot arrive while Redis is down: the watchdog runs the checks itself
        assert watchdog_tick() is CheckOutcome.RAN
        assert rows(OpsCondition.REDIS_UNREACHABLE) == []  # one check is not enough
        assert watchdog_tick() is CheckOutcome.RAN
        (incident,) = rows(OpsCondition.REDIS_UNREACHABLE)
        assert incident.active and "ConnectionError" in incident.detail
        for _ in range(3):
            watchdog_tick()
        assert [m["title"] for m in support.MESSAGES] == ["Ops: Redis unreachable"]
    get_redis.cache_clear()
    ops_check_run()
    assert watchdog_tick() is None  # Redis answers and the last check ran moments ago
    ops_check_run()
    (incident,) = rows(OpsCondition.REDIS_UNREACHABLE)
    assert incident.recovered_at is not None
    assert [m["recovered"] for m in support.MESSAGES] == [False, True]


@override_settings(OPS_EVENT_SINKS=SINKS)
def test_postgres_unreachable_is_parked_in_redis_and_recorded_once_it_answers(db, redis_client):
    dead = f"postgres://volspike:volspike@127.0.0.1:{processes.free_port()}/volspike"
    env = processes.test_process_env(DATABASE_URL=dead)
    outputs = [
        subprocess.run(
            [sys.executable, "manage.py", "ops_check"],
            cwd=processes.ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        for _ in range(2)
    ]
    log = outputs[1].stderr + outputs[1].stdout
    assert "ops postgres_unreachable opened" in log and "level=warning" in log, log[-2000:]
    assert "ops event parked until Postgres answers" in log
    (parked,) = [json.loads(raw) for raw in redis_client.lrange(PENDING_KEY, 0, -1)]
    assert parked["condition"] == "postgres_unreachable" and parked["kind"] == "opened"
    assert rows(OpsCondition.POSTGRES_UNREACHABLE) == []

    ops_check_run()  # Postgres answers here: the parked event first, then this check's
    (incident,) = rows(OpsCondition.POSTGRES_UNREACHABLE)
    assert "OperationalError" in incident.detail
    assert redis_client.llen(PENDING_KEY) == 0
    ops_check_run()
    (incident,) = rows(OpsCondition.POSTGRES_UNREACHABLE)
    assert incident.recovered_at is not None
    assert [m["recovered"] for m in support.MESSAGES] == [False, True]


@override_settings(OPS_EVENT_SINKS=SINKS)
def test_two_processes_seeing_one_condition_record_and_send_it_once(db):
    condition = OpsCondition.REDIS_UNREACHABLE
    first = OpsEvent(condition, OpsEventKind.OPENED, "seen by A", 2_000, 1_000)
    second = OpsEvent(condition, OpsEventKind.OPENED, "seen by B", 2_500, 1_500)
    assert ops_event_record(first) is True
    assert ops_event_record(second) is False
    later = 1_000 + 60_000
    assert ops_event_record(OpsEvent(condition, OpsEventKind.RECOVERED, "ok", later, 1_000))
    assert not ops_event_record(OpsEvent(condition, OpsEventKind.RECOVERED, "ok", later, 1_500))
    # B's parked opening, replayed after A's recovery, lies inside A's incident: not a new one
    assert ops_event_record(second) is False
    assert len(rows(condition)) == 1


def test_the_events_api_needs_a_token_filters_active_and_names_a_bad_field(
    db, api_client, writer_client
):
    now = timezone.now()
    OpsIncident.objects.create(
        condition="polling_stalled", opened_at=now, detail="beat: silent", notified_at=now,
        recorded_by="test",
    )  # fmt: skip
    OpsIncident.objects.create(
        condition="universe_stale", opened_at=now - timedelta(hours=1), detail="old",
        recovered_at=now, notified_at=now, recorded_by="test",
    )  # fmt: skip
    assert api_client.get("/api/ops/events").status_code in (401, 403)
    body = writer_client.get("/api/ops/events?active=true").json()
    assert [e["condition"] for e in body["events"]] == ["polling_stalled"]
    assert body["events"][0]["active"] is True and body["events"][0]["recoveredAt"] is None
    body = writer_client.get("/api/ops/events?active=false").json()
    assert [e["condition"] for e in body["events"]] == ["universe_stale"]
    assert writer_client.get("/api/ops/events").json()["count"] == 2
    response = writer_client.get("/api/ops/events?active=maybe")
    assert response.status_code == 400 and "active" in response.json()["error"]["message"]
    response = writer_client.get("/api/ops/events?limit=0")
    assert response.status_code == 400 and "limit" in response.json()["error"]["message"]


def test_the_admin_lists_incidents_and_filters_the_open_ones(db, admin_client):
    now = timezone.now()
    OpsIncident.objects.create(
        condition="redis_unreachable", opened_at=now, detail="ConnectionError: refused",
        notified_at=now, recorded_by="test",
    )  # fmt: skip
    OpsIncident.objects.create(
        condition="dead_letters", opened_at=now - timedelta(hours=2), detail="2 batches",
        recovered_at=now - timedelta(hours=1), notified_at=now, recorded_by="test",
    )  # fmt: skip
    page = admin_client.get("/admin/ops/opsincident/").content.decode()
    assert "ConnectionError: refused" in page and "2 batches" in page
    page = admin_client.get("/admin/ops/opsincident/?recovered_at__isempty=1").content.decode()
    assert "ConnectionError: refused" in page and "2 batches" not in page
    assert admin_client.get("/admin/ops/opsincident/add/").status_code == 403
