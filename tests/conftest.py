"""Fixtures shared by the whole suite. Everything is real: Postgres, Redis, HTTP, processes."""

import pytest
import redis as redis_lib
from django.conf import settings

pytest_plugins = [
    "tests.fixtures.simulator",
    "tests.fixtures.processes",
    "tests.fixtures.telegram",
    "tests.fakes.chat_platforms",
]


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
    from alerts import evaluation
    from alerts.services import alert_rules_install_defaults

    alert_rules_install_defaults()
    evaluation.engine_reset()
    yield
    evaluation.engine_reset()
