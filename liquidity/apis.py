from django.conf import settings
from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema, extend_schema_serializer, inline_serializer
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from common.formatting import plain_decimal
from common.permissions import PreflightOpenReadsBySetting
from common.serializers import PlainDecimalField
from liquidity.exchange_info import exchange_info_get
from liquidity.selectors import liquid_symbol_list, membership_event_list, universe_job_status


class LiquidUniverseApi(APIView):
    """The liquid universe now: members, thresholds, counts, and how fresh it is."""

    @extend_schema_serializer(component_name="LiquidMember")
    class MemberSerializer(serializers.Serializer):
        symbol = serializers.CharField()
        quoteVolume24h = PlainDecimalField(source="quote_volume_24h")
        enteredAt = serializers.DateTimeField(source="entered_at")
        lastSeenAt = serializers.DateTimeField(source="last_seen_at")
        missingFromTickerSince = serializers.DateTimeField(
            source="missing_from_ticker_since", allow_null=True
        )

    @extend_schema_serializer(component_name="MembershipEvent")
    class EventSerializer(serializers.Serializer):
        symbol = serializers.CharField()
        change = serializers.CharField()
        quoteVolume24h = PlainDecimalField(source="quote_volume_24h", allow_null=True)
        reason = serializers.CharField()
        at = serializers.DateTimeField()

    @extend_schema(
        responses=inline_serializer(
            "LiquidUniverse",
            {
                "symbols": MemberSerializer(many=True),
                "thresholds": serializers.DictField(child=serializers.CharField()),
                "counts": serializers.DictField(child=serializers.IntegerField()),
                "lastSuccessAt": serializers.DateTimeField(allow_null=True),
                "lastFailureAt": serializers.DateTimeField(allow_null=True),
                "lastFailureReason": serializers.CharField(allow_null=True),
                "stale": serializers.BooleanField(),
                "staleSince": serializers.DateTimeField(allow_null=True),
                "recentChanges": EventSerializer(many=True),
            },
        )
    )
    def get(self, request):
        members = list(liquid_symbol_list())
        status = universe_job_status()
        last_success, last_failure = status.last_success, status.last_failure
        return Response(
            {
                "symbols": self.MemberSerializer(members, many=True).data,
                "thresholds": {
                    "enterQuoteVolume": plain_decimal(settings.LIQUIDITY_ENTER_QUOTE_VOLUME),
                    "exitQuoteVolume": plain_decimal(settings.LIQUIDITY_EXIT_QUOTE_VOLUME),
                },
                "counts": {
                    "members": len(members),
                    "missingFromTicker": sum(
                        m.missing_from_ticker_since is not None for m in members
                    ),
                    "enteredLastRun": last_success.entered if last_success else 0,
                    "exitedLastRun": last_success.exited if last_success else 0,
                    "eligibleLastRun": last_success.eligible if last_success else 0,
                },
                "lastSuccessAt": last_success.finished_at if last_success else None,
                "lastFailureAt": last_failure.finished_at if last_failure else None,
                "lastFailureReason": last_failure.error if last_failure else None,
                "stale": status.stale_since is not None,
                "staleSince": status.stale_since,
                "recentChanges": self.EventSerializer(
                    membership_event_list(limit=50), many=True
                ).data,
            }
        )


class ExchangeInfoProxyApi(APIView):
    """Binance exchangeInfo from the shared cache, with CORS (the design's binance-proxy).

    `X-Cache` says HIT (cached copy within the TTL), MISS (fetched now) or STALE (the exchange
    failed; the last good copy is served). `Age` is the copy's age in seconds.
    """

    # open to anyone (CORS) unless API_READS_REQUIRE_AUTH; a preflight is always answered
    permission_classes = [PreflightOpenReadsBySetting]

    @extend_schema(responses={200: OpenApiTypes.OBJECT, 503: OpenApiTypes.OBJECT})
    def get(self, request):
        copy = exchange_info_get()
        response = HttpResponse(copy.document, content_type="application/json")
        age = copy.age_sec()
        response["Age"] = str(int(age))
        response["X-Cache-Age-Seconds"] = f"{age:.1f}"
        if copy.refreshed_now:
            response["X-Cache"] = "MISS"
        elif copy.refresh_error:
            response["X-Cache"] = "STALE"  # the cause is in the log, not for anonymous clients
        else:
            response["X-Cache"] = "HIT"
        return self._with_cors(request, response)

    def options(self, request, *args, **kwargs):
        response = HttpResponse(status=204)
        response["Access-Control-Allow-Methods"] = "GET, OPTIONS"
        response["Access-Control-Allow-Headers"] = "Content-Type, Authorization"
        response["Access-Control-Max-Age"] = "600"
        return self._with_cors(request, response)

    def finalize_response(self, request, response, *args, **kwargs):
        return self._with_cors(
            request, super().finalize_response(request, response, *args, **kwargs)
        )

    @staticmethod
    def _with_cors(request, response):
        allowed = settings.EXCHANGE_INFO_CORS_ALLOWED_ORIGINS
        origin = request.headers.get("Origin")
        if "*" in allowed:
            response["Access-Control-Allow-Origin"] = "*"
        elif origin and origin in allowed:
            response["Access-Control-Allow-Origin"] = origin
            response["Vary"] = "Origin"
        response["Access-Control-Expose-Headers"] = "Age, X-Cache, X-Cache-Age-Seconds"
        return response
