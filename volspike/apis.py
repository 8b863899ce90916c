"""The project's own endpoints that read every app: /health/ready and /metrics (the plain /health,
which reads only the stores, is common.apis.HealthApi)."""

from django.conf import settings
from django.http import HttpResponse, JsonResponse
from drf_spectacular.utils import extend_schema, inline_serializer
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.views import APIView

from common.apis import health_response
from common.authentication import request_has_api_token, request_has_metrics_token
from volspike.metrics import VolspikeCollector
from volspike.readiness import system_readiness


class ReadinessApi(APIView):
    """200 when the system does its job; 503 naming each part that does not (polling stalled,
    beat silent, poller not running dispatches, universe stale, IP banned, a store down)."""

    authentication_classes: list = []
    permission_classes = [AllowAny]

    @extend_schema(
        responses=inline_serializer(
            "Readiness",
            {
                "status": serializers.CharField(help_text="ready or unavailable"),
                "components": serializers.DictField(child=serializers.CharField()),
                "failing": serializers.ListField(child=serializers.CharField()),
            },
        )
    )
    def get(self, request):
        return health_response(system_readiness(), ok_status="ready")


def metrics_view(request) -> HttpResponse:
    """Prometheus text exposition of the whole system's counters and gauges. When
    API_READS_REQUIRE_AUTH is set: `Authorization: Bearer <METRICS_TOKEN>` or an API token."""
    if settings.API_READS_REQUIRE_AUTH and not (
        request_has_metrics_token(request) or request_has_api_token(request)
    ):
        response = JsonResponse(
            {
                "error": {
                    "code": "not_authenticated",
                    "message": "send 'Authorization: Bearer <METRICS_TOKEN>' or an API token",
                }
            },
            status=401,
        )
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    registry = CollectorRegistry()
    registry.register(VolspikeCollector())
    return HttpResponse(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)
