"""GET /health/ready against the running system: 200 once it does its job, 503 naming the cause
when beat stops, when the poller stops, when the exchange bans the IP and when the universe is
stale; 200 again once the cause is gone. Liveness (/health) stays 200 throughout."""

import time
from datetime import timedelta

import pytest
import requests
from django.db.models import F

from liquidity.models import UniverseRefresh
from tests.deploy.support import celery_command, start_all, wait_answering
from tests.fixtures import processes
from tests.fixtures.processes import ManagedProcess, free_port, stop_all, wait_until

pytestmark = pytest.mark.integration

DISPATCH_SILENCE_SEC = 6  # READY_DISPATCH_MAX_SILENCE_SEC for this test (default: 10 s)


def readiness(base_url: str) -> tuple[int, dict]:
    response = requests.get(f"{base_url}/health/ready", timeout=5)
    return response.status_code, response.json()


def wait_ready(base_url: str, timeout: float) -> dict:
    started, seen = time.monotonic(), []

    def ready():
        status, body = readiness(base_url)
        if not seen or seen[-1] != body["failing"]:
            seen.append(body["failing"])
            print(f"  +{time.monotonic() - started:.1f} s failing {body['failing']}")
        return status == 200 and body

    return wait_until(ready, timeout, f"not ready within {timeout} s: {readiness(base_url)}")


def wait_not_ready(base_url: str, part: str, timeout: float) -> tuple[float, dict]:
    """Seconds until 503 named `part`, and the body then."""
    started = time.monotonic()
    body = wait_until(
        lambda: (answer := readiness(base_url))[0] == 503 and part in answer[1]["failing"]
        and answer[1],
        timeout,
        f"{part} not named within {timeout} s: {readiness(base_url)}",
    )  # fmt: skip
    return time.monotonic() - started, body


def test_readiness_names_a_stopped_beat_a_stopped_poller_a_ban_and_a_stale_universe(
    sim, redis_client, transactional_db
):
    env = processes.test_process_env(
        BINANCE_BASE_URL=sim.base_url,
        READY_DISPATCH_MAX_SILENCE_SEC=str(DISPATCH_SILENCE_SEC),
    )
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    worker = celery_command("worker", "ready-worker", "default,oi_backfill")
    poller = celery_command("worker", "ready-poller", "oi_poll", concurrency=2)
    beat = celery_command("beat", "ready-beat")
    started: list[ManagedProcess] = []
    test_started = time.monotonic()
    try:
        web = ManagedProcess(
            "readiness-web",
            processes.asgi_server_args(port),
            env,
        )  # fmt: skip
        started.append(web)
        wait_answering(f"{base_url}/health", 30, web)
        # before anything runs: not ready, and it says why
        status, body = readiness(base_url)
        assert status == 503
        assert {"beat", "universe"} <= set(body["failing"])

        running = start_all(
            {"ready-worker": worker, "ready-poller": poller, "ready-beat": beat}, env, started
        )
        t0 = time.monotonic()
        body = wait_ready(base_url, 60)
        print(f"ready {time.monotonic() - t0:.1f} s after the processes started")
        # (no streams process here: the streams part reports it, and readiness stays 200 on the
        # REST fallbacks)
        assert set(body["components"]) == {
            "postgres", "redis", "beat", "poller", "polling", "universe", "exchange", "streams",
        }  # fmt: skip

        # when beat stops: 503 naming beat (the poller is not blamed), 200 after a restart
        running["ready-beat"].stop()
        waited, body = wait_not_ready(base_url, "beat", DISPATCH_SILENCE_SEC + 8)
        assert "poller" not in body["failing"], body
        assert "is beat running?" in body["components"]["beat"]
        assert requests.get(f"{base_url}/health", timeout=5).status_code == 200
        print(f"beat stopped: 503 naming beat after {waited:.1f} s")
        t0 = time.monotonic()
        start_all({"ready-beat-2": beat}, env, started)
        wait_ready(base_url, 30)
        print(f"beat restarted: ready after {time.monotonic() - t0:.1f} s")

        # when the poller stops: dispatches are sent but not run, then polling goes stale
        running["ready-poller"].stop()
        waited, body = wait_not_ready(base_url, "poller", DISPATCH_SILENCE_SEC + 8)
        assert "beat" not in body["failing"], body
        assert "oi_poll worker" in body["components"]["poller"]
        print(f"poller stopped: 503 naming the poller after {waited:.1f} s")
        t0 = time.monotonic()
        start_all({"ready-poller-2": poller}, env, started)
        wait_ready(base_url, 30)
        print(f"poller restarted: ready after {time.monotonic() - t0:.1f} s")

        # when the exchange bans the IP: 503 naming the exchange until the ban is over
        sim.force_rate_limit(status=418, seconds=4)
        waited, body = wait_not_ready(base_url, "exchange", 15)
        assert "banned" in body["components"]["exchange"]
        print(f"IP banned: 503 naming the exchange after {waited:.1f} s")
        wait_ready(base_url, 30)

        # when the universe's last successful refresh is older than its limit (15 min)
        UniverseRefresh.objects.update(finished_at=F("finished_at") - timedelta(hours=1))
        _, body = wait_not_ready(base_url, "universe", 5)
        assert "last refreshed" in body["components"]["universe"]
        UniverseRefresh.objects.update(finished_at=F("finished_at") + timedelta(hours=1))
        wait_ready(base_url, 10)
        print(f"whole test {time.monotonic() - test_started:.1f} s")
    finally:
        stop_all(started)
