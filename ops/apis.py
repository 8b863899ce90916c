from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.permissions import BasePermission
from rest_framework.response import Response
from rest_framework.views import APIView

from common.errors import InvalidInput
from common.formatting import iso_z
from common.permissions import signed_in_staff
from ops.conditions import OpsCondition
from ops.models import OpsIncident
from ops.selectors import ops_event_list

EVENTS_MAX_LIMIT = 500


class TokenOrStaffAlways(BasePermission):
    """Ops events name hosts and causes: a token (or a staff session) whatever
    API_READS_REQUIRE_AUTH says."""

    message = "An API token is required: send 'Authorization: Token <key>'."

    def has_permission(self, request, view) -> bool:
        return request.auth is not None or signed_in_staff(request)


class OpsEventListApi(APIView):
    """Ops incidents (the system in trouble), newest first: open ones have no recoveredAt."""

    permission_classes = [TokenOrStaffAlways]

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "active", OpenApiTypes.BOOL, description="true: open only; false: recovered only"
            ),
            OpenApiParameter(
                "limit", OpenApiTypes.INT, description=f"1..{EVENTS_MAX_LIMIT}, default 100"
            ),
        ],
        responses=inline_serializer(
            "OpsEvents",
            {
                "count": serializers.IntegerField(),
                "events": serializers.ListField(child=serializers.DictField()),
            },
        ),
    )
    def get(self, request):
        active = _bool_param(request.query_params.get("active"), "active")
        limit = _limit_param(request.query_params.get("limit"))
        events = [_event_out(event) for event in ops_event_list(active=active, limit=limit)]
        return Response({"count": len(events), "events": events})


def _event_out(event: OpsIncident) -> dict:
    return {
        "id": event.id,
        "condition": event.condition,
        "label": OpsCondition(event.condition).label,
        "active": event.active,
        "openedAt": iso_z(event.opened_at),
        "recoveredAt": iso_z(event.recovered_at) if event.recovered_at else None,
        "detail": event.detail,
        "lastDetail": event.last_detail,
        "reminders": event.reminders,
        "notifiedAt": iso_z(event.notified_at),
    }


def _bool_param(raw: str | None, field: str) -> bool | None:
    if raw is None or raw == "":
        return None
    value = raw.strip().lower()
    if value in ("true", "1", "yes"):
        return True
    if value in ("false", "0", "no"):
        return False
    raise InvalidInput(field=field, reason="must be true or false")


def _limit_param(raw: str | None) -> int:
    if raw is None or raw == "":
        return 100
    try:
        limit = int(raw)
    except ValueError:
        raise InvalidInput(field="limit", reason="must be an integer") from None
    if not 1 <= limit <= EVENTS_MAX_LIMIT:
        raise InvalidInput(field="limit", reason=f"must be between 1 and {EVENTS_MAX_LIMIT}")
    return limit
