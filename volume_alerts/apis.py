import logging
from datetime import timedelta

from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.pagination import CursorPagination
from rest_framework.response import Response
from rest_framework.views import APIView

from common.errors import InvalidInput
from common.symbols import symbol_problem
from volume_alerts.payloads import ALERT_TYPES, CANDLE_DIRECTIONS, parse_volume_alert
from volume_alerts.selectors import (
    TIER_DELAY_MINUTES,
    TIER_LIMITS,
    tier_last_broadcast,
    volume_alert_list,
)
from volume_alerts.services import volume_alert_ingest, volume_alert_payload

logger = logging.getLogger(__name__)

RECENT_MAX_LIMIT = 100
RECENT_MAX_HOURS = 24 * 30


class VolumeAlertIngestApi(APIView):
    """Store a volume alert from the hourly script (VolSpike's route and body). Idempotent: one
    alert per (symbol, hourTimestamp, alertType); a resend answers 200 with `duplicate: true`."""

    class InputSerializer(serializers.Serializer):
        """Documents the body; validation is `volume_alerts.payloads.parse_volume_alert`."""

        symbol = serializers.CharField(help_text="e.g. SOLUSDT")
        asset = serializers.CharField(help_text="e.g. SOL")
        currentVolume = serializers.FloatField(help_text="Quote volume of the hour")
        previousVolume = serializers.FloatField()
        volumeRatio = serializers.FloatField()
        price = serializers.FloatField(required=False, allow_null=True)
        fundingRate = serializers.FloatField(required=False, allow_null=True)
        candleDirection = serializers.ChoiceField(
            choices=CANDLE_DIRECTIONS, required=False, allow_null=True
        )
        message = serializers.CharField()
        timestamp = serializers.DateTimeField()
        detectionTime = serializers.DateTimeField(required=False, allow_null=True)
        hourTimestamp = serializers.DateTimeField(help_text="On the hour")
        isUpdate = serializers.BooleanField(required=False, allow_null=True)
        alertType = serializers.ChoiceField(choices=ALERT_TYPES, required=False, allow_null=True)
        priceChange = serializers.FloatField(required=False, allow_null=True)
        oiChange = serializers.FloatField(required=False, allow_null=True)

    @extend_schema(
        request=InputSerializer,
        responses=inline_serializer(
            "VolumeAlertIngestResult",
            {
                "success": serializers.BooleanField(),
                "alertId": serializers.IntegerField(),
                "duplicate": serializers.BooleanField(),
                "differingFields": serializers.ListField(child=serializers.CharField()),
                "ignoredFields": serializers.ListField(child=serializers.CharField()),
                "alert": serializers.DictField(),
            },
        ),
    )
    def post(self, request):
        try:
            parsed = parse_volume_alert(request.data, now=timezone.now())
        except InvalidInput as refusal:
            symbol = request.data.get("symbol") if isinstance(request.data, dict) else None
            logger.warning(
                "volume alert refused",
                extra={
                    "symbol": (
                        symbol[:32].encode("utf-8", "backslashreplace").decode()
                        if isinstance(symbol, str)
                        else "-"
                    ),
                    "field": refusal.field,
                    "cause": refusal.reason,
                },
            )
            raise
        result = volume_alert_ingest(parsed.candidate)
        # HTTP 200 in both cases: the scripts count only a 200 as delivered.
        return Response(
            {
                "success": True,
                "alertId": result.alert.id,
                "duplicate": not result.created,
                "differingFields": result.differing_fields,
                "ignoredFields": parsed.ignored_fields,
                "alert": volume_alert_payload(result.alert),
            }
        )


class VolumeAlertCursorPagination(CursorPagination):
    ordering = ("-ts", "-id")
    page_size = 100
    page_size_query_param = "limit"
    max_page_size = 500


def _symbols(value: str) -> list[str]:
    symbols = [s.strip() for s in value.split(",") if s.strip()]
    for symbol in symbols:
        problem = symbol_problem(symbol)
        if problem:
            raise serializers.ValidationError(f"{symbol!r} {problem}")
    return symbols


class VolumeAlertListApi(APIView):
    """Volume alerts newest first. With `tier` (upstream's form): `{alerts, tier, limit,
    lastBroadcastTime}`, the tier's count and delay. Else filters and a cursor:
    `{alerts, next, previous}`."""

    class FilterSerializer(serializers.Serializer):
        symbol = serializers.CharField(required=False, help_text="One symbol or a comma list")
        alertType = serializers.ChoiceField(choices=ALERT_TYPES, required=False)
        since = serializers.DateTimeField(required=False)
        after_id = serializers.IntegerField(required=False, min_value=0)
        tier = serializers.ChoiceField(choices=list(TIER_LIMITS), required=False)
        limit = serializers.IntegerField(required=False, min_value=1, max_value=500)
        cursor = serializers.CharField(required=False)

        def validate_symbol(self, value: str) -> list[str]:
            return _symbols(value)

    @extend_schema(
        parameters=[
            OpenApiParameter("symbol", str, description="e.g. SOLUSDT or SOLUSDT,BTCUSDT"),
            OpenApiParameter("alertType", str, enum=list(ALERT_TYPES)),
            OpenApiParameter("since", str, description="ISO-8601; alerts at or after this time"),
            OpenApiParameter("after_id", int, description="only alerts with a larger id"),
            OpenApiParameter(
                "tier", str, enum=list(TIER_LIMITS), description="upstream's form (limit ignored)"
            ),
            OpenApiParameter("limit", int, description="1 to 500, default 100"),
            OpenApiParameter("cursor", str),
        ],
        responses=inline_serializer(
            "VolumeAlertPage",
            {
                "alerts": serializers.ListField(child=serializers.DictField()),
                "next": serializers.URLField(allow_null=True, required=False),
                "previous": serializers.URLField(allow_null=True, required=False),
                "tier": serializers.CharField(required=False),
                "limit": serializers.IntegerField(required=False),
                "lastBroadcastTime": serializers.DateTimeField(required=False),
            },
        ),
    )
    def get(self, request):
        filters = self.FilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        data = filters.validated_data
        tier = data.get("tier")
        if tier:
            last_broadcast = tier_last_broadcast(tier, now=timezone.now())
            alerts = volume_alert_list(
                symbols=data.get("symbol"),
                alert_type=data.get("alertType"),
                since=data.get("since"),
                detected_until=last_broadcast if tier in TIER_DELAY_MINUTES else None,
            )[: TIER_LIMITS[tier]]
            return Response(
                {
                    "alerts": [volume_alert_payload(alert) for alert in alerts],
                    "tier": tier,
                    "limit": TIER_LIMITS[tier],
                    "lastBroadcastTime": last_broadcast,
                }
            )
        alerts = volume_alert_list(
            symbols=data.get("symbol"),
            alert_type=data.get("alertType"),
            since=data.get("since"),
            after_id=data.get("after_id"),
        )
        paginator = VolumeAlertCursorPagination()
        page = paginator.paginate_queryset(alerts, request, view=self)
        return Response(
            {
                "alerts": [volume_alert_payload(alert) for alert in page],
                "next": paginator.get_next_link(),
                "previous": paginator.get_previous_link(),
            }
        )


class VolumeAlertRecentApi(APIView):
    """Upstream's `/api/volume-alerts/recent?hours=24&limit=50`: `{alerts, hours, count}`."""

    class FilterSerializer(serializers.Serializer):
        hours = serializers.IntegerField(
            required=False, min_value=1, max_value=RECENT_MAX_HOURS, default=24
        )
        limit = serializers.IntegerField(
            required=False, min_value=1, max_value=RECENT_MAX_LIMIT, default=50
        )
        symbol = serializers.CharField(required=False)

        def validate_symbol(self, value: str) -> list[str]:
            return _symbols(value)

    @extend_schema(
        parameters=[
            OpenApiParameter("hours", int, description=f"1 to {RECENT_MAX_HOURS}, default 24"),
            OpenApiParameter("limit", int, description=f"1 to {RECENT_MAX_LIMIT}, default 50"),
            OpenApiParameter("symbol", str),
        ],
        responses=inline_serializer(
            "VolumeAlertRecent",
            {
                "alerts": serializers.ListField(child=serializers.DictField()),
                "hours": serializers.IntegerField(),
                "count": serializers.IntegerField(),
            },
        ),
    )
    def get(self, request):
        filters = self.FilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        data = filters.validated_data
        alerts = volume_alert_list(
            symbols=data.get("symbol"), since=timezone.now() - timedelta(hours=data["hours"])
        )[: data["limit"]]
        payloads = [volume_alert_payload(alert) for alert in alerts]
        return Response({"alerts": payloads, "hours": data["hours"], "count": len(payloads)})
