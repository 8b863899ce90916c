"""GET /health against the real services, and with each one made unreachable."""

import socket

import pytest
from django.db import connection

from common.redis import get_redis


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.django_db
def test_health_is_200_when_postgres_and_redis_answer(api_client):
    response = api_client.get("/health")
    assert response.status_code == 200
    assert response.json() == {
        "status": "ok",
        "components": {"postgres": "ok", "redis": "ok"},
        "failing": [],
    }


@pytest.mark.django_db
def test_health_is_503_naming_redis_when_redis_is_down(api_client, settings):
    settings.REDIS_URL = f"redis://127.0.0.1:{closed_port()}/0"
    get_redis.cache_clear()
    try:
        response = api_client.get("/health")
    finally:
        get_redis.cache_clear()
    assert response.status_code == 503
    assert response.json()["failing"] == ["redis"]
    assert "ConnectionError" in response.json()["components"]["redis"]


@pytest.mark.django_db(transaction=True)
def test_health_is_503_naming_postgres_when_postgres_is_down(api_client):
    connection.close()
    real_port = connection.settings_dict["PORT"]
    connection.settings_dict["PORT"] = closed_port()
    try:
        response = api_client.get("/health")
    finally:
        connection.close()
        connection.settings_dict["PORT"] = real_port
    assert response.status_code == 503
    assert response.json()["failing"] == ["postgres"]
    assert "OperationalError" in response.json()["components"]["postgres"]
