"""The ops checks in the running system (worker, poller and beat against the simulator): a
stopped poller opens "polling stalled" within a few checks, logged and recorded once, and its
restart recovers it; an IP ban by the exchange opens an event and its end recovers it; a stopped
beat (which sends the checks) is still told, by the worker's watchdog."""

import json
import time

import pytest

from ops.keys import STATE_KEY
from ops.models import OpsIncident
from tests.fixtures.processes import wait_until
from volspike.readiness import system_readiness

pytestmark = pytest.mark.integration

CHECK_EVERY_SEC = 2


def incident(condition: str, *, active: bool) -> OpsIncident | None:
    return OpsIncident.objects.filter(condition=condition, recovered_at__isnull=active).last()


def test_a_stopped_poller_an_ip_ban_and_a_stopped_beat_open_one_event_each_and_recover(
    sim, celery_processes, redis_client
):
    env = {
        "BINANCE_BASE_URL": sim.base_url,
        "OPS_CHECK_EVERY_SEC": str(CHECK_EVERY_SEC),
        "OPS_STARTUP_GRACE_SEC": "0",
        "READY_DISPATCH_MAX_SILENCE_SEC": "6",
        # no streams process here: with the streams on, market_stream_silent would stay open
        "STREAMS_ENABLED": "false",
    }
    worker = celery_processes.start_worker("default,oi_backfill", concurrency=2, **env)
    poller = celery_processes.start_worker("oi_poll", concurrency=2, **env)
    beat = celery_processes.start_beat(**env)
    wait_until(lambda: all(part.ok for part in system_readiness()), 90, "never ready")
    # whatever opened while the system started (the universe filling) recovers
    wait_until(
        lambda: not OpsIncident.objects.filter(recovered_at__isnull=True).exists(),
        30,
        f"start-up incidents still open: {list(OpsIncident.objects.filter(recovered_at__isnull=True))}",
    )
    stalls_before = OpsIncident.objects.filter(condition="polling_stalled").count()
    log_offset = len(worker.log_path.read_text(errors="replace"))

    poller.stop()
    stopped = time.monotonic()
    opened = wait_until(
        lambda: incident("polling_stalled", active=True), 40, "polling stalled never opened"
    )
    print(f"poller stopped: polling_stalled opened after {time.monotonic() - stopped:.1f} s")
    assert "is the oi_poll worker running?" in opened.detail
    time.sleep(3 * CHECK_EVERY_SEC)  # more checks see it: still one incident, one log line
    assert OpsIncident.objects.filter(condition="polling_stalled").count() == stalls_before + 1
    log = worker.log_path.read_text(errors="replace")[log_offset:]
    assert log.count("ops polling_stalled opened") == 1, log[-3000:]
    opened_line = next(line for line in log.splitlines() if "ops polling_stalled opened" in line)
    assert "level=warning" in opened_line and "is the oi_poll worker running?" in opened_line

    restarted = time.monotonic()
    celery_processes.start_worker("oi_poll", concurrency=2, **env)
    wait_until(
        lambda: OpsIncident.objects.get(id=opened.id).recovered_at, 40, "polling never recovered"
    )
    print(f"poller restarted: recovered after {time.monotonic() - restarted:.1f} s")
    log = worker.log_path.read_text(errors="replace")[log_offset:]
    recovered_lines = [line for line in log.splitlines() if "ops polling_stalled recovered" in line]
    assert len(recovered_lines) == 1 and "level=info" in recovered_lines[0]

    # the exchange bans the IP: an event at the first check that sees it, recovered after it
    sim.force_rate_limit(status=418, seconds=4)
    banned = wait_until(
        lambda: incident("exchange_banned", active=True), 30, "the ban never opened an event"
    )
    assert "banned this IP" in banned.detail, banned.detail
    wait_until(
        lambda: OpsIncident.objects.get(id=banned.id).recovered_at, 40, "the ban never recovered"
    )
    assert OpsIncident.objects.filter(condition="exchange_banned").count() == 1

    # beat stops: no ops.check arrives any more; the worker's watchdog runs the checks itself
    stalls_before = OpsIncident.objects.filter(condition="polling_stalled").count()
    beat.stop()
    stopped = time.monotonic()
    opened = wait_until(
        lambda: incident("polling_stalled", active=True), 40, "a stopped beat was never told"
    )
    print(f"beat stopped: polling_stalled opened after {time.monotonic() - stopped:.1f} s")
    assert "is beat running?" in opened.detail, opened.detail
    assert json.loads(redis_client.get(STATE_KEY))["checked_by"].endswith("(watchdog)")
    celery_processes.start_beat(**env)
    wait_until(
        lambda: OpsIncident.objects.get(id=opened.id).recovered_at, 40, "beat never recovered"
    )
    assert OpsIncident.objects.filter(condition="polling_stalled").count() == stalls_before + 1
