"""What followed the alerts, per rule and per rule and regime: GET /api/alert-outcomes and
GET /api/alert-rules/<id>/outcomes. Signed forward moves of price and OI, no verdicts."""

from dataclasses import asdict
from datetime import UTC, datetime

from django.shortcuts import get_object_or_404
from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from alerts.models import RULE_NAME_MAX_LENGTH, AlertRule, OpenInterestAlert
from alerts.outcome_selectors import (
    DEFAULT_PERIOD,
    MoveDistribution,
    OutcomeReport,
    OutcomeStats,
    alert_outcome_report,
)
from oi.regimes import REGIME_VALUES

EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
"""No alert is older (and a period's default start, 30 days before 'to', stays a date)."""


class OutcomeFilterSerializer(serializers.Serializer):
    regime = serializers.ChoiceField(choices=REGIME_VALUES, required=False)

    def get_fields(self):
        fields = super().get_fields()
        # "from" is a Python keyword: declared here, not as a class attribute
        fields["from"] = serializers.DateTimeField(required=False)
        fields["to"] = serializers.DateTimeField(required=False)
        return fields

    def validate(self, attrs):
        since, until = attrs.get("from"), attrs.get("to")
        for name, value in (("from", since), ("to", until)):
            if value is not None and value < EARLIEST:
                raise serializers.ValidationError({name: f"must be after {EARLIEST:%Y-%m-%d}"})
        if since is None:
            return attrs
        if until is None and since >= timezone.now():
            raise serializers.ValidationError({"from": "must be in the past ('to' is now)"})
        if until is not None and since >= until:
            raise serializers.ValidationError({"to": "must be after 'from'"})
        return attrs


class OutcomeListFilterSerializer(OutcomeFilterSerializer):
    rule = serializers.CharField(
        required=False, max_length=RULE_NAME_MAX_LENGTH, help_text="A rule's name"
    )

    def validate_rule(self, value: str) -> str:
        if (
            not AlertRule.objects.filter(name=value).exists()
            and not OpenInterestAlert.objects.filter(rule_name=value).exists()
        ):
            raise serializers.ValidationError(f"no rule and no alert named {value!r}")
        return value


def _moves(distribution: MoveDistribution) -> dict:
    moves = asdict(distribution)
    moves["flatBand"] = moves.pop("flat_band")
    return moves


def _stats(stats: OutcomeStats) -> dict:
    return {
        "regime": stats.regime,
        "alerts": stats.alerts,
        "symbols": stats.symbols,
        "alertsPerSymbolDay": stats.alerts_per_symbol_day,
        "horizons": [
            {
                "horizon": h.horizon.label,
                "horizonSec": int(h.horizon),
                "measured": h.measured,
                "noData": h.no_data,
                "pending": h.pending,
                "priceChange": _moves(h.price),
                "oiChange": _moves(h.open_interest),
            }
            for h in stats.horizons
        ],
    }


def outcome_report_payload(report: OutcomeReport) -> dict:
    return {
        "from": report.since,
        "to": report.until,
        "days": report.days,
        "rules": [
            {
                "rule": rule.rule_name,
                "ruleId": rule.rule_id,
                "symbolsWatched": rule.symbols_watched,
                **_stats(rule.overall),
                "byRegime": [_stats(stats) for stats in rule.by_regime],
            }
            for rule in report.rules
        ],
    }


_PERIOD_PARAMETERS = [
    OpenApiParameter(
        "from", str,
        description=f"ISO-8601; alerts at or after (default: {DEFAULT_PERIOD.days} days before 'to')",
    ),
    OpenApiParameter("to", str, description="ISO-8601; alerts before (default: now)"),
    OpenApiParameter("regime", str, enum=list(REGIME_VALUES), description="one regime"),
]  # fmt: skip
_REPORT_RESPONSE = inline_serializer(
    "AlertOutcomeReport",
    {
        "from": serializers.DateTimeField(),
        "to": serializers.DateTimeField(),
        "days": serializers.FloatField(help_text="what alertsPerSymbolDay divides by"),
        "rules": serializers.ListField(child=serializers.DictField()),
    },
)


class AlertOutcomeListApi(APIView):
    """Per rule (all enabled ones, or `rule`), overall and per regime: the alerts, the alerts per
    symbol-day, and at +5m, +15m and +1h the signed forward change of mark price and OI
    (quartiles, median, share up / down / flat with the regimes' dead band), with how many were
    measured, had no sample within the tolerance (noData) or are not due yet (pending)."""

    @extend_schema(
        parameters=[
            OpenApiParameter("rule", str, description="a rule's name (as its alerts carry it)"),
            *_PERIOD_PARAMETERS,
        ],
        responses=_REPORT_RESPONSE,
    )
    def get(self, request):
        filters = OutcomeListFilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        data = filters.validated_data
        report = alert_outcome_report(
            rule_names=[data["rule"]] if "rule" in data else None,
            regime=data.get("regime"),
            since=data.get("from"),
            until=data.get("to"),
        )
        return Response(outcome_report_payload(report))


class AlertRuleOutcomeApi(APIView):
    """The outcomes of one rule's alerts (by its id, whatever name they were stored under)."""

    @extend_schema(parameters=_PERIOD_PARAMETERS, responses=_REPORT_RESPONSE)
    def get(self, request, pk: int):
        rule = get_object_or_404(AlertRule, pk=pk)
        filters = OutcomeFilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        data = filters.validated_data
        report = alert_outcome_report(
            rule_id=rule.pk,
            regime=data.get("regime"),
            since=data.get("from"),
            until=data.get("to"),
        )
        return Response(outcome_report_payload(report))
