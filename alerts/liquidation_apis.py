"""Liquidation-burst alerts over the API: newest first, filtered, cursor-paginated."""

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers

from alerts.apis import (
    AlertListApi,
    alert_list_parameters,
    alert_page_schema,
)
from alerts.liquidation_rules import LiquidatedSide
from alerts.liquidation_selectors import liquidation_alert_list
from alerts.liquidation_texts import liquidation_alert_payload

SIDES = [side.value for side in LiquidatedSide]


class LiquidationAlertListApi(AlertListApi):
    """Liquidation bursts (rules of kind liquidation_burst) newest first, with cursor pagination
    (`next` holds the URL of the next page). Sums are lower bounds: Binance sends at most one
    liquidation per symbol per second."""

    class FilterSerializer(AlertListApi.FilterSerializer):
        direction = None
        side = serializers.ChoiceField(choices=SIDES, required=False)

    payload = staticmethod(liquidation_alert_payload)

    def alerts(self, data: dict):
        return liquidation_alert_list(
            symbols=data.get("symbol"),
            side=data.get("side"),
            since=data.get("since"),
            after_id=data.get("after_id"),
            rule=data.get("rule"),
        )

    @extend_schema(
        parameters=alert_list_parameters(
            OpenApiParameter("side", str, enum=SIDES, description="whose positions")
        ),
        responses=alert_page_schema("LiquidationAlertPage"),
    )
    def get(self, request):
        return super().get(request)
