from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from common.health import ComponentHealth, system_health


class HealthApi(APIView):
    """200 when Postgres and Redis both answer; 503 naming the part that does not."""

    authentication_classes: list = []
    permission_classes = [AllowAny]

    @extend_schema(
        responses=inline_serializer(
            "Health",
            {
                "status": serializers.CharField(),
                "components": serializers.DictField(child=serializers.CharField()),
                "failing": serializers.ListField(child=serializers.CharField()),
            },
        )
    )
    def get(self, request):
        return health_response(system_health(), ok_status="ok")


def health_response(components: list[ComponentHealth], *, ok_status: str) -> Response:
    """The shape of /health and /health/ready: 200 when every part is ok, else 503 naming them."""
    failing = [c.name for c in components if not c.ok]
    body = {
        "status": ok_status if not failing else "unavailable",
        "components": {c.name: c.detail for c in components},
        "failing": failing,
    }
    return Response(body, status=503 if failing else 200)
