"""Liquidation-burst alerts over the API: newest first, filtered, cursor-paginated."""

from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.views import APIView

from alerts.apis import AlertCursorPagination, AlertListApi
from alerts.liquidation_rules import LiquidatedSide
from alerts.liquidation_selectors import liquidation_alert_list
from alerts.liquidation_texts import liquidation_alert_payload

SIDES = [side.value for side in LiquidatedSide]


class LiquidationAlertListApi(APIView):
    """Liquidation bursts (rules of kind liquidation_burst) newest first, with cursor pagination
    (`next` holds the URL of the next page). Sums are lower bounds: Binance sends at most one
    liquidation per symbol per second."""

    class FilterSerializer(AlertListApi.FilterSerializer):
        direction = None
        side = serializers.ChoiceField(choices=SIDES, required=False)

    @extend_schema(
        parameters=[
            OpenApiParameter("symbol", str, description="e.g. BTCUSDT or BTCUSDT,ETHUSDT"),
            OpenApiParameter("side", str, enum=SIDES, description="whose positions"),
            OpenApiParameter("rule", str, description="only alerts of this rule (its name)"),
            OpenApiParameter("since", str, description="ISO-8601; alerts at or after this time"),
            OpenApiParameter(
                "after_id", int, description="only alerts with a larger id (catch-up)"
            ),
            OpenApiParameter("limit", int, description="1 to 500, default 100"),
            OpenApiParameter("cursor", str),
        ],
        responses=inline_serializer(
            "LiquidationAlertPage",
            {
                "next": serializers.URLField(allow_null=True),
                "previous": serializers.URLField(allow_null=True),
                "results": serializers.ListField(child=serializers.DictField()),
            },
        ),
    )
    def get(self, request):
        filters = self.FilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        data = filters.validated_data
        alerts = liquidation_alert_list(
            symbols=data.get("symbol"),
            side=data.get("side"),
            since=data.get("since"),
            after_id=data.get("after_id"),
            rule=data.get("rule"),
        )
        paginator = AlertCursorPagination()
        page = paginator.paginate_queryset(alerts, request, view=self)
        return paginator.get_paginated_response([liquidation_alert_payload(a) for a in page])
