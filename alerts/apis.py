from django.conf import settings
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_serializer,
    inline_serializer,
)
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from alerts.models import AlertSource, AlertThresholdOverride
from alerts.payloads import (
    DIRECTIONS,
    TIMEFRAME_WINDOW_SEC,
    ignored_alert_fields,
    parse_alert_payload,
)
from alerts.selectors import ALERT_EXPORT_COLUMNS, alert_export, alert_list
from alerts.services import AlertOutcome, alert_payload, alert_raise
from common.pagination import TimestampCursorPagination
from common.symbols import symbol_problem
from oi.apis import EXPORT_PARAMETERS, CsvExportApi, csv_export_response
from oi.exports import parse_export_filters


class AlertIngestApi(APIView):
    """Store an alert (design §5.3) from another producer: validated, idempotent, cooldown-aware."""

    @extend_schema_serializer(component_name="AlertPayload")
    class InputSerializer(serializers.Serializer):
        symbol = serializers.CharField()
        direction = serializers.ChoiceField(choices=DIRECTIONS)
        baseline = serializers.FloatField()
        current = serializers.FloatField()
        pctChange = serializers.FloatField(help_text="0.1 = +10%")
        absChange = serializers.FloatField()
        timestamp = serializers.DateTimeField()
        source = serializers.ChoiceField(choices=AlertSource.values)
        timeframe = serializers.ChoiceField(
            choices=list(TIMEFRAME_WINDOW_SEC), required=False, allow_null=True,
            help_text="The producer's window (VolSpike poller); stored as windowSec",
        )  # fmt: skip
        priceChange = serializers.FloatField(
            required=False, allow_null=True, help_text="Price change over the window; 0.01 = +1%"
        )
        fundingRate = serializers.FloatField(required=False, allow_null=True)

    @extend_schema(
        request=InputSerializer,
        responses=inline_serializer(
            "AlertIngestResult",
            {
                "success": serializers.BooleanField(),
                "id": serializers.IntegerField(allow_null=True),
                "ignoredFields": serializers.ListField(child=serializers.CharField()),
                "outcome": serializers.ChoiceField(choices=[o.value for o in AlertOutcome]),
                "alert": serializers.DictField(allow_null=True),
                "detail": serializers.CharField(),
            },
        ),
    )
    def post(self, request):
        candidate = parse_alert_payload(
            request.data, now=timezone.now(), sources=tuple(AlertSource.values)
        )
        raised = alert_raise(candidate, cooldown_sec=ingest_cooldown_sec(candidate.symbol))
        details = {
            AlertOutcome.CREATED: "stored and published",
            AlertOutcome.DUPLICATE: "this alert was stored before; nothing changed",
            AlertOutcome.COOLDOWN: (
                f"{candidate.symbol} {candidate.direction} alerted within its cooldown; not stored"
            ),
        }
        # Always 200, as upstream answered: the old VolSpike poller counts HTTP 200 with `success`
        # and `id` as delivered, so none of the three is retried; `outcome` says which it was
        # (`id` is null when the cooldown held the alert back).
        return Response(
            {
                "success": True,
                "id": raised.alert.id if raised.alert else None,
                "ignoredFields": ignored_alert_fields(request.data),
                "outcome": raised.outcome.value,
                "alert": alert_payload(raised.alert) if raised.alert else None,
                "detail": details[raised.outcome],
            },
            status=status.HTTP_200_OK,
        )


def ingest_cooldown_sec(symbol: str) -> int:
    """Ingested alerts carry no rule: the symbol's every-rule override cooldown, else
    OI_ALERT_COOLDOWN_SEC."""
    override = (
        AlertThresholdOverride.objects.filter(symbol=symbol, rule__isnull=True)
        .values_list("cooldown_sec", flat=True)
        .first()
    )
    return override if override is not None else settings.OI_ALERT_COOLDOWN_SEC


def alert_list_parameters(kind: OpenApiParameter) -> list[OpenApiParameter]:
    """The query parameters of an alert list (``AlertListApi.FilterSerializer``), with `kind`
    the list's own filter (an OI alert's direction, a liquidation burst's side)."""
    return [
        OpenApiParameter("symbol", str, description="e.g. BTCUSDT or BTCUSDT,ETHUSDT"),
        kind,
        OpenApiParameter("rule", str, description="only alerts of this rule (its name)"),
        OpenApiParameter("since", str, description="ISO-8601; alerts at or after this time"),
        OpenApiParameter("after_id", int, description="only alerts with a larger id (catch-up)"),
        OpenApiParameter("limit", int, description="1 to 500, default 100"),
        OpenApiParameter("cursor", str),
    ]


def alert_page_schema(name: str):
    return inline_serializer(
        name,
        {
            "next": serializers.URLField(allow_null=True),
            "previous": serializers.URLField(allow_null=True),
            "results": serializers.ListField(child=serializers.DictField()),
        },
    )


class AlertCursorPagination(TimestampCursorPagination):
    ordering = ("-ts", "-id")
    page_size = 100
    page_size_query_param = "limit"
    max_page_size = 500


class AlertListApi(APIView):
    """Alerts newest first, with cursor pagination (`next` holds the URL of the next page)."""

    class FilterSerializer(serializers.Serializer):
        symbol = serializers.CharField(
            required=False, help_text="One symbol or a comma-separated list"
        )
        direction = serializers.ChoiceField(choices=DIRECTIONS, required=False)
        rule = serializers.CharField(required=False, max_length=64, help_text="A rule's name")
        since = serializers.DateTimeField(required=False)
        after_id = serializers.IntegerField(required=False, min_value=0)
        limit = serializers.IntegerField(required=False, min_value=1, max_value=500)
        cursor = serializers.CharField(required=False)

        def validate_symbol(self, value: str) -> list[str]:
            symbols = [s.strip() for s in value.split(",") if s.strip()]
            for symbol in symbols:
                problem = symbol_problem(symbol)
                if problem:
                    raise serializers.ValidationError(f"{symbol!r} {problem}")
            return symbols

    @extend_schema(
        parameters=alert_list_parameters(OpenApiParameter("direction", str, enum=list(DIRECTIONS))),
        responses=alert_page_schema("AlertPage"),
    )
    def get(self, request):
        filters = self.FilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        paginator = AlertCursorPagination()
        page = paginator.paginate_queryset(self.alerts(filters.validated_data), request, view=self)
        return paginator.get_paginated_response([self.payload(alert) for alert in page])

    payload = staticmethod(alert_payload)

    def alerts(self, data: dict):
        return alert_list(
            symbols=data.get("symbol"),
            direction=data.get("direction"),
            since=data.get("since"),
            after_id=data.get("after_id"),
            rule=data.get("rule"),
        )


class AlertExportApi(CsvExportApi):
    """Open-interest alerts as CSV, streamed, ordered by ts then id (columns: ALERT_EXPORT_COLUMNS;
    timestamps ISO-8601 UTC; empty cells for unknown values)."""

    @extend_schema(
        parameters=[
            *EXPORT_PARAMETERS,
            OpenApiParameter("source", str, enum=list(AlertSource.values)),
        ],
        responses={
            (200, "text/csv"): OpenApiResponse(
                OpenApiTypes.STR,
                description="CSV with a header line: "
                + ",".join(name for name, _ in ALERT_EXPORT_COLUMNS),
            )
        },
    )
    def get(self, request):
        filters = parse_export_filters(request.query_params, sources=tuple(AlertSource.values))
        return csv_export_response(
            request,
            alert_export(
                since=filters.since,
                until=filters.until,
                symbols=filters.symbols,
                source=filters.source,
            ),
        )
