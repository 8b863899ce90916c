"""The one place that turns errors into HTTP answers."""

import logging

from django.db import OperationalError
from rest_framework import exceptions as drf_exceptions
from rest_framework.response import Response
from rest_framework.views import exception_handler

from common.errors import ApplicationError

logger = logging.getLogger(__name__)

# How long a client is asked to wait when the database is busy (pool exhausted) or unreachable.
DATABASE_RETRY_AFTER_SEC = 5


def api_exception_handler(exc: Exception, context: dict) -> Response | None:
    """Every error answer has one shape: {"error": {"code", "message", ...where}}."""
    if isinstance(exc, ApplicationError):
        return Response(
            {"error": {"code": exc.code, "message": exc.message, **exc.extra}},
            status=exc.http_status,
        )
    if isinstance(exc, OperationalError):
        # The connection pool stayed full for DB_POOL_TIMEOUT_SEC, or Postgres is down: a
        # condition to retry, not a server bug, so 503 (with Retry-After), not a 500 traceback.
        logger.warning("database unavailable", extra={"cause": str(exc).splitlines()[0][:200]})
        return Response(
            {
                "error": {
                    "code": "database_unavailable",
                    "message": "the database is busy or unreachable; retry shortly",
                }
            },
            status=503,
            headers={"Retry-After": str(DATABASE_RETRY_AFTER_SEC)},
        )
    response = exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, drf_exceptions.ValidationError):
        field, reason = _first_validation_problem(exc.detail)
        response.data = {
            "error": {
                "code": "invalid",
                "message": f"field '{field}': {reason}",
                "field": field,
                "reason": reason,
            }
        }
    else:
        detail = response.data.get("detail", "") if isinstance(response.data, dict) else ""
        code = getattr(exc, "default_code", "error")
        response.data = {"error": {"code": code, "message": str(detail)}}
    return response


def _first_validation_problem(detail: object, path: str = "") -> tuple[str, str]:
    if isinstance(detail, dict):
        for key, value in detail.items():
            name = "body" if key == "non_field_errors" else str(key)
            return _first_validation_problem(value, f"{path}.{name}" if path else name)
    if isinstance(detail, list) and detail:
        return _first_validation_problem(detail[0], path)
    return (path or "body"), str(detail)


def not_found_view(request, exception=None):
    """Django's 404 for URLs no route matches: under /api/ in the API's error shape, else the
    usual page."""
    from django.http import JsonResponse
    from django.views.defaults import page_not_found

    if request.path.startswith("/api/"):
        return JsonResponse(
            {"error": {"code": "not_found", "message": f"no API resource at {request.path}"}},
            status=404,
        )
    return page_not_found(request, exception)
