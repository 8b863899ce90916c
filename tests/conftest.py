"""Fixtures shared by the whole suite. Everything is real: Postgres, Redis, HTTP, processes."""

import heapq

import pytest
import redis as redis_lib
from django.conf import settings

pytest_plugins = [
    "tests.fixtures.simulator",
    "tests.fixtures.processes",
    "tests.fixtures.telegram",
    "tests.fakes.chat_platforms",
]


# The slowest test files, with their tests' seconds in all on the 2-core machine (`bash
# scripts/test.sh --durations=40`). Under pytest-xdist they start first, spread over the workers' first chunks
# (longest first, each to the least loaded worker), so that none of them starts near the end and
# holds up the whole run while the other workers sit idle. A test not listed runs in its place.
SLOW_TESTS = {
    "tests/scale/test_scale_out.py::": 109,
    "tests/alerts/test_backtest_live_equality.py::": 64,
    "tests/ops/test_ops_processes.py::": 81,
    "tests/oi/test_poller_e2e.py::": 67,
    "tests/deploy/test_production_e2e.py::": 49,
    "tests/streams/test_streams_e2e.py::": 46,
    "tests/deploy/test_readiness.py::": 41,
    "tests/reliability/test_service_restarts.py::": 82,
    "tests/deploy/test_redis_durability.py::": 35,
    "tests/reliability/test_process_kills.py::": 62,
    "tests/reliability/test_exchange_faults.py::": 96,
    "tests/scripts/test_run_script.py::": 29,
    "tests/alerts/test_alert_flow.py::": 29,
    "tests/reliability/test_hostile_exchange.py::": 88,
}


def _expected_seconds(item) -> float | None:
    return next((sec for prefix, sec in SLOW_TESTS.items() if item.nodeid.startswith(prefix)), None)


def pytest_collection_modifyitems(config, items):
    """Under xdist's worksteal scheduling each worker first gets an equal contiguous chunk of the
    collection (then steals from the others' tails): put the slow files at the heads of those
    chunks, balanced. Every worker computes the same order (xdist checks)."""
    workers = getattr(config, "workerinput", {}).get("workercount")  # set in xdist's workers
    if not isinstance(workers, int) or workers < 2 or len(items) < workers:
        return
    slow_files: dict[str, list] = {}
    rest = []
    for item in items:
        seconds = _expected_seconds(item)
        if seconds is None:
            rest.append(item)
        else:
            slow_files.setdefault(item.nodeid.split("::")[0], []).append((seconds, item))
    lanes: list[list] = [[] for _ in range(workers)]
    loads = [(0.0, lane) for lane in range(workers)]
    for group in sorted(slow_files.values(), key=lambda g: -g[0][0]):
        load, lane = heapq.heappop(loads)
        lanes[lane].extend(item for _, item in group)
        heapq.heappush(loads, (load + group[0][0], lane))
    ordered, remaining = [], len(items)
    for lane in range(workers):
        size = remaining // (workers - lane)  # what xdist sends this worker first
        chunk, overflow = lanes[lane][:size], lanes[lane][size:]
        rest = overflow + rest
        fill = max(0, size - len(chunk))
        chunk += rest[:fill]
        rest = rest[fill:]
        ordered += chunk
        remaining -= len(chunk)
    items[:] = ordered + rest


@pytest.fixture
def redis_client() -> redis_lib.Redis:
    """A client on the test Redis database, emptied before each test that asks for it."""
    client = redis_lib.Redis.from_url(settings.REDIS_URL, decode_responses=True)
    client.flushdb()
    yield client
    client.close()


@pytest.fixture
def api_key(db) -> str:
    """A raw API key, made the way an operator makes one."""
    from common.services import api_token_create

    _, raw_key = api_token_create(name="test-writer")
    return raw_key


@pytest.fixture
def api_client():
    from rest_framework.test import APIClient

    return APIClient()


@pytest.fixture
def writer_client(api_key):
    from rest_framework.test import APIClient

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {api_key}")
    return client


@pytest.fixture(autouse=True)
def default_alert_rules(request):
    """Every test with a database starts with the default alert rules, as a fresh install does
    (a transactional test's flush removes the rows the migration made), and with this process's
    rules engine reset."""
    uses_db = request.node.get_closest_marker("django_db") is not None or {
        "db", "transactional_db", "live_server",
    } & set(request.fixturenames)  # fmt: skip
    if not uses_db:
        yield
        return
    request.getfixturevalue("db")
    from alerts import evaluation, liquidation_evaluation
    from alerts.services import alert_rules_install_defaults

    alert_rules_install_defaults()
    evaluation.engine_reset()
    liquidation_evaluation.engine_reset()
    yield
    evaluation.engine_reset()
    liquidation_evaluation.engine_reset()
