"""Three poller hosts, each with its own IP (network namespaces), one schedule: k live egress groups
give k times the samples, every IP within its budget, and a host that dies is planned out."""

import itertools
import signal
import sys
import time
from urllib.parse import quote, urlsplit, urlunsplit

import pytest
from django.conf import settings

from tests.fixtures.netns import HubSimulator, NetnsHosts, hosts_for_test
from tests.fixtures.processes import (
    ManagedProcess,
    celery_args_renamed,
    procfile_celery_args,
    wait_for_log,
    wait_until,
)
from tests.fixtures.processes import (
    test_process_env as process_env,
)

pytestmark = pytest.mark.integration

BUDGET_PER_MIN = 150
"""Each host's poller budget: small, so that ~23 symbols make a 13 s interval for one host."""
WINDOW_SEC = 1
HEARTBEAT_TTL_SEC = 1.5
POLLER_API = "/api/market/open-interest/poller"


@pytest.fixture
def hosts():
    """Three hosts (root only: tests.fixtures.netns.hosts_for_test)."""
    with hosts_for_test(3) as made:
        yield made


@pytest.fixture
def host_sim(hosts):
    """A simulator on the bridge address in the hub (NetnsHosts.simulator)."""
    hub_sim = hosts.simulator("--seed", "4242", "--symbols", "40", "--event-rate-per-day", "0")
    yield hub_sim
    hub_sim.handle.stop()


class PollerHosts:
    def __init__(self, hosts: NetnsHosts, sim: HubSimulator, env: dict[str, str]) -> None:
        self.hosts, self.sim, self.env = hosts, sim, env
        database = settings.DATABASES["default"]
        pg_port = hosts.relay(int(database["PORT"] or 5432), database["HOST"] or "127.0.0.1")
        redis_url = urlsplit(settings.REDIS_URL)
        redis_port = hosts.relay(redis_url.port or 6379, redis_url.hostname or "127.0.0.1")
        # Redis and Postgres over the network, as a second host reaches them
        self.database_url = (
            f"postgres://{quote(database['USER'], safe='')}:{quote(database['PASSWORD'], safe='')}"
            f"@{hosts.gateway}:{pg_port}/{quote(database['NAME'], safe='')}"
        )
        self.redis_url = urlunsplit(redis_url._replace(netloc=f"{hosts.gateway}:{redis_port}"))
        self.workers: dict[int, ManagedProcess] = {}
        self.started = 0

    def start(self, index: int) -> ManagedProcess:
        args = celery_args_renamed(
            procfile_celery_args("poller"), f"scale-h{index}-{self.started}@%h"
        )
        env = process_env(**self.env, BINANCE_EGRESS_ID=f"h{index}")
        env.update(
            DATABASE_URL=self.database_url,
            TEST_REDIS_URL=self.redis_url,
            BINANCE_BASE_URL=self.sim.url_for_hosts,
        )
        worker = ManagedProcess(
            f"scale-poller-h{index}-{self.started}",
            self.hosts.exec_args(index, [sys.executable, "-m", "celery", *args]),
            env,
        )
        self.started += 1
        self.workers[index] = worker
        wait_for_log(worker, "ready.", timeout=60)
        return worker

    def kill(self, index: int) -> None:
        worker = self.workers.pop(index)
        worker.process.send_signal(signal.SIGKILL)
        worker.process.wait(10)
        worker.stop()

    def stop_all(self) -> None:
        for worker in self.workers.values():
            worker.stop(timeout=5)


def _status(api_client) -> dict:
    return api_client.get(POLLER_API).json()


def _plan_with(api_client, k: int, timeout: float) -> dict:
    def planned():
        body = _status(api_client)
        planned = [g for g in body["groups"] if g["planned"]]
        return (
            body["nSymbols"] > 0
            and len(planned) == k
            and all(g["live"] for g in planned)
            and sum(g["nSymbols"] for g in planned) == body["nSymbols"]
            and body
        )

    return wait_until(planned, timeout, f"the plan never held {k} live groups")


def _samples(sim, members, start_ms: float, end_ms: float) -> dict[str, list[int]]:
    times = sim.stats(symbols=members)["open_interest_times"]
    return {s: [t for t in times.get(s, []) if start_ms <= t < end_ms] for s in members}


def test_k_hosts_give_k_times_the_samples_within_each_ips_budget_and_a_dead_host_is_planned_out(
    hosts, host_sim, celery_processes, api_client
):
    sim = host_sim.handle
    env = {
        "BINANCE_BASE_URL": sim.base_url,
        "OI_WINDOW_SEC": str(WINDOW_SEC),
        "OI_EGRESS_HEARTBEAT_TTL_SEC": str(HEARTBEAT_TTL_SEC),
        "OI_MIN_INTERVAL_SEC": "1",
        "OI_MAX_INTERVAL_SEC": "60",
        "OI_MAX_REQ_PER_MIN": str(BUDGET_PER_MIN),
        "BINANCE_CONSUMER_BUDGETS": f"poller={BUDGET_PER_MIN}",
        "STREAMS_ENABLED": "false",
    }
    pollers = PollerHosts(hosts, host_sim, env)
    try:
        celery_processes.start_procfile_worker("worker", **env)
        celery_processes.start_beat(**env)
        # given one poller host
        pollers.start(0)
        one = _plan_with(api_client, 1, 60)
        members = sorted(one["lastSampleAgeSec"])
        interval_1 = one["intervalSec"]
        rates: dict[int, float] = {}
        intervals: dict[int, float] = {1: interval_1}

        def measure(k: int, interval: float) -> None:
            time.sleep(interval)  # the symbols' first polls under this plan
            start = time.time() * 1000
            span = interval * k * 1000  # a whole number of intervals: each symbol k times
            time.sleep(span / 1000)
            polled = _samples(sim, members, start, start + span)
            rates[k] = sum(map(len, polled.values())) / span * 60_000

        measure(1, interval_1)
        # when a second and a third host join
        for k in (2, 3):
            pollers.start(k - 1)
            body = _plan_with(api_client, k, 30)
            intervals[k] = body["intervalSec"]
            measure(k, intervals[k])

        # then the interval is the one-host interval / k, and k times the samples
        for k in (2, 3):
            assert intervals[k] == pytest.approx(interval_1 / k, rel=0.05, abs=0.02), intervals
            assert rates[k] / rates[1] >= 0.97 * k * 0.95, rates
        print(f"intervals {intervals} samples/min {rates}")

        # when host 2 dies (SIGKILL: no goodbye, its heartbeat expires)
        before = _status(api_client)
        dead_symbols = next(g["symbols"] for g in before["groups"] if g["egressId"] == "h2")
        killed_at = time.time() * 1000
        pollers.kill(2)
        replanned = _plan_with(api_client, 2, 10)
        replanned_after_ms = time.time() * 1000 - killed_at
        # then it is planned out within its heartbeat's TTL and one window (the API polled)
        assert replanned_after_ms <= (HEARTBEAT_TTL_SEC + 2 * WINDOW_SEC + 1) * 1000
        interval_2 = replanned["intervalSec"]
        time.sleep(3 * interval_2)
        # and no symbol (the dead host's included) went more than 2 intervals without a sample
        polled = _samples(sim, members, killed_at - intervals[3] * 1000, time.time() * 1000)
        for symbol in members:
            edges = [killed_at - intervals[3] * 1000, *polled[symbol], time.time() * 1000]
            gaps = [b - a for a, b in itertools.pairwise(edges)]
            assert max(gaps) <= 2 * interval_2 * 1000, (symbol, symbol in dead_symbols, gaps)

        # when it is started again, it is planned in again
        pollers.start(2)
        back = _plan_with(api_client, 3, 30)
        assert back["intervalSec"] == pytest.approx(intervals[3], abs=0.02)
        h2 = next(g for g in back["groups"] if g["egressId"] == "h2")
        time.sleep(2 * back["intervalSec"])
        assert _status(api_client)["groups"][2]["weightLastMinute"] > 0
        assert h2["nSymbols"] > 0

        # and every host's IP stayed within its budget (any sliding minute), never a 429
        ips = sim.stats()["ips"]
        for index in range(3):
            ip = ips[hosts.address(index)]
            assert ip["count_429"] == 0 and ip["count_418"] == 0, ip
            assert ip["weight_max_60s"] <= BUDGET_PER_MIN + settings.BINANCE_BUDGET_BURST, ip
    finally:
        pollers.stop_all()
