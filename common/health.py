from dataclasses import dataclass

from django.db import connection

from common.redis import get_redis


@dataclass(frozen=True)
class ComponentHealth:
    name: str
    ok: bool
    detail: str


def system_health() -> list[ComponentHealth]:
    """Ask Postgres and Redis for an answer; each failure names its component and why."""
    return [_postgres_health(), _redis_health()]


def _postgres_health() -> ComponentHealth:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:  # noqa: BLE001 - any failure means "not healthy", reported with its cause
        return ComponentHealth("postgres", False, f"{type(exc).__name__}: {exc}".strip())
    return ComponentHealth("postgres", True, "ok")


def _redis_health() -> ComponentHealth:
    try:
        get_redis().ping()
    except Exception as exc:  # noqa: BLE001
        return ComponentHealth("redis", False, f"{type(exc).__name__}: {exc}".strip())
    return ComponentHealth("redis", True, "ok")
