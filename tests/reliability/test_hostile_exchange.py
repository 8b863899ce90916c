"""A broken or hostile exchange (and careless ingest clients) against the running system.

The simulator's /sim/tampers endpoint makes the answers: an open interest that is negative or
overflows numeric, an answer for another symbol than the one asked for, a sample time ahead, a
mark price of 1e40, a 429 with Retry-After 999999999, a ban "until" the year 318,857, an
exchangeInfo REQUEST_WEIGHT of 1 or 10^12, and an exchangeInfo that never answers. Everything runs
as in production: the simulator over HTTP, real Postgres and Redis, real Celery workers and beat
where the poller is involved, a real uvicorn where the web API is. Figures go to test-artifacts/.
"""

import json
import sys
import time
from datetime import UTC, datetime, timedelta

import pytest
import requests

from exchange.errors import ExchangeError, IpBanned, RateLimited
from exchange.factory import build_client
from tests.fixtures.processes import (
    ARTIFACTS,
    ManagedProcess,
    free_port,
    process_tree_pids,
    test_process_env,
    wait_until,
    whole_universe_dispatched,
)

pytestmark = [
    pytest.mark.integration,
    pytest.mark.reliability,
    pytest.mark.django_db(transaction=True),
]

OI_PATH = "/fapi/v1/openInterest"
DAY_MS = 86_400_000
THREE_DAYS = timedelta(days=3)


def report(name: str, lines: list[str]) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    text = "\n".join(lines)
    (ARTIFACTS / f"hostile_exchange_{name}.txt").write_text(text + "\n")
    print(text)


def start_web(**env: str) -> tuple[ManagedProcess, str]:
    """uvicorn as in the Procfile, with extra settings; (process, base URL)."""
    port = free_port()
    server = ManagedProcess(
        f"hostile-web-{port}",
        [sys.executable, "-m", "uvicorn", "volspike.asgi:application", "--host", "127.0.0.1",
         "--port", str(port), "--no-access-log"],
        test_process_env(**env),
    )  # fmt: skip
    base_url = f"http://127.0.0.1:{port}"

    def answers() -> bool:
        try:  # the first request may take over a second on a busy machine
            return requests.get(f"{base_url}/health", timeout=10).status_code < 500
        except requests.ConnectionError:
            return False

    wait_until(answers, 60, f"uvicorn did not answer; see {server.log_path}")
    return server, base_url


def rss_mib(pid: int) -> float:
    """RSS of a process tree (a Celery worker and its pool children), MiB."""
    total = 0
    for member in process_tree_pids(pid):
        try:
            with open(f"/proc/{member}/statm") as statm:
                total += int(statm.read().split()[1])
        except OSError:
            continue
    return total * 4096 / 2**20


@pytest.fixture
def polling_system(sim, celery_processes, api_client, settings):
    """The whole poller on the simulator: worker, poll worker (4 processes) and beat."""
    settings.BINANCE_BASE_URL = sim.base_url
    env = {"BINANCE_BASE_URL": sim.base_url}
    worker = celery_processes.start_worker(queues="default,oi_backfill", **env)
    poller = celery_processes.start_worker(queues="oi_poll", concurrency=4, **env)
    celery_processes.start_beat(**env)
    members, status = whole_universe_dispatched(api_client)
    return members, status["intervalSec"], worker, poller


# --- hardening #6 ----------------------------------------------------------------------------------


def test_hostile_back_offs_are_clamped_and_the_ip_limit_stays_in_its_band(
    sim, redis_client, settings
):
    settings.BINANCE_BASE_URL = sim.base_url
    settings.BINANCE_EGRESS_ID = "hostile"
    client = build_client("liquidity", max_retries=0, max_wait=0)
    budget = client.budget
    figures = []

    # a 429 asking us to wait 31 years
    sim.add_tamper(
        "/fapi/v1/ping", status=429, headers={"Retry-After": "999999999"}, remaining=1,
        body='{"code":-1003,"msg":"Too many requests"}',
    )  # fmt: skip
    with pytest.raises(RateLimited):
        client.ping()
    until, _ = budget.backoff_until()
    figures.append(f"Retry-After 999999999 -> back-off until {until.isoformat()}")
    assert until <= datetime.now(tz=UTC) + THREE_DAYS + timedelta(seconds=5)
    budget.clear_backoff()

    # a ban "until" the year 318,857 (and one a century ahead)
    for banned_until_ms in (9_999_999_999_999_999, int(time.time() * 1000) + 100 * 365 * DAY_MS):
        sim.add_tamper(
            "/fapi/v1/ping", status=418, remaining=1,
            body=json.dumps({"code": -1003, "msg": f"Way too many requests; IP banned until "
                             f"{banned_until_ms}. Please use the websocket."}),
        )  # fmt: skip
        with pytest.raises(ExchangeError) as raised:
            client.ping()
        assert isinstance(raised.value, IpBanned)
        until, _ = budget.backoff_until()
        figures.append(f"banned until {banned_until_ms} -> back-off until {until.isoformat()}")
        assert until <= datetime.now(tz=UTC) + THREE_DAYS + timedelta(seconds=5)
        budget.clear_backoff()

    # exchangeInfo reporting a REQUEST_WEIGHT of 1, then 10^12, then a plausible 1800
    configured = settings.BINANCE_IP_WEIGHT_LIMIT
    for reported, expected in ((1, configured), (10**12, configured), (1800, 1800)):
        sim.clear_tampers()
        sim.add_tamper("/fapi/v1/exchangeInfo", fields={"rateLimits": [
            {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1,
             "limit": reported},
        ]})  # fmt: skip
        client.exchange_info()
        fresh = build_client("liquidity", max_retries=0, max_wait=0)
        fresh.ping()  # reads the shared limit
        figures.append(f"REQUEST_WEIGHT {reported} -> IP limit {fresh.budget.ip_limit}")
        assert fresh.budget.ip_limit == expected
    report("backoff_clamps", figures)
