from datetime import timedelta

from django.conf import settings
from django.utils import timezone
from drf_spectacular.utils import (
    OpenApiParameter,
    extend_schema,
    extend_schema_serializer,
    inline_serializer,
)
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from common.formatting import iso_z, plain_decimal
from common.serializers import PlainDecimalField
from common.symbols import symbol_problem
from common.timeutil import datetime_from_ms, ms_from_datetime
from liquidity.selectors import liquid_symbol_list
from oi.batches import KNOWN_SOURCES, parse_snapshot_batch
from oi.screener import SCREENER_LOOKBACKS, open_interest_screener
from oi.selectors import (
    ServedFrom,
    open_interest_usd_latest,
    poller_status,
    sample_list_latest,
    snapshot_at_or_before,
)
from oi.services import snapshot_batch_ingest
from oi.tasks import ingested_samples_process_later


class SnapshotIngestApi(APIView):
    """Store a batch of open-interest snapshots (design §4.4): all rows or none, idempotent."""

    @extend_schema_serializer(component_name="SnapshotRow")
    class InputRowSerializer(serializers.Serializer):
        """Documents the row; validation is `oi.batches.parse_snapshot_batch` (fast on 20k rows)."""

        symbol = serializers.CharField(help_text="Binance symbol, e.g. BTCUSDT")
        openInterest = serializers.CharField(help_text="Contracts; JSON number or decimal string")
        openInterestUsd = serializers.CharField(required=False, allow_null=True)
        markPrice = serializers.CharField(required=False, allow_null=True)
        source = serializers.ChoiceField(choices=KNOWN_SOURCES, required=False)
        timestamp = serializers.DateTimeField(
            required=False, help_text="Sample time; defaults to the batch timestamp"
        )

    @extend_schema_serializer(component_name="SnapshotBatch")
    class InputSerializer(serializers.Serializer):
        data = serializers.ListField(child=serializers.DictField())
        timestamp = serializers.DateTimeField(
            required=False, help_text="ISO-8601 with a zone; else each row's own"
        )
        totalSymbols = serializers.IntegerField(required=False, min_value=0)
        source = serializers.ChoiceField(choices=KNOWN_SOURCES, required=False)

    @extend_schema_serializer(component_name="SnapshotIngestResult")
    class OutputSerializer(serializers.Serializer):
        success = serializers.SerializerMethodField(
            help_text="Always true: a batch is stored whole or refused (upstream clients read it)"
        )
        received = serializers.IntegerField()
        inserted = serializers.IntegerField()
        duplicates = serializers.IntegerField()
        partial = serializers.BooleanField(
            help_text="totalSymbols said the universe had more symbols than the batch carries"
        )
        ignoredFields = serializers.ListField(
            source="ignored_fields",
            child=serializers.CharField(),
            help_text="Unknown keys, not stored ('data[].name' for a row's)",
        )

        def get_success(self, result) -> bool:
            return True

    @extend_schema(request=InputSerializer, responses={200: OutputSerializer})
    def post(self, request):
        batch = parse_snapshot_batch(
            request.data,
            now=timezone.now(),
            max_rows=settings.OI_INGEST_MAX_ROWS,
            max_ahead=timedelta(seconds=settings.OI_MAX_CLOCK_AHEAD_SEC),
        )
        result = snapshot_batch_ingest(batch=batch)
        ingested_samples_process_later(result.live_rows)
        return Response(self.OutputSerializer(result).data)


class SnapshotSampleListApi(APIView):
    """Recent open-interest samples of one symbol, newest first."""

    class FilterSerializer(serializers.Serializer):
        symbol = serializers.CharField()
        limit = serializers.IntegerField(
            required=False,
            min_value=1,
            max_value=settings.OI_SAMPLES_MAX_LIMIT,
            default=settings.OI_SAMPLES_DEFAULT_LIMIT,
        )
        source = serializers.ChoiceField(choices=KNOWN_SOURCES, required=False)

        def validate_symbol(self, symbol: str) -> str:
            problem = symbol_problem(symbol)
            if problem:
                raise serializers.ValidationError(problem)
            return symbol

    @extend_schema_serializer(component_name="StoredSample")
    class OutputSerializer(serializers.Serializer):
        ts = serializers.DateTimeField()
        openInterest = PlainDecimalField(source="open_interest")
        openInterestUsd = PlainDecimalField(source="open_interest_usd", allow_null=True)
        markPrice = PlainDecimalField(source="mark_price", allow_null=True)
        source = serializers.CharField()

    @extend_schema(
        parameters=[
            OpenApiParameter("symbol", str, required=True),
            OpenApiParameter("limit", int, description="1 to 5000, default 100"),
            OpenApiParameter("source", str, enum=list(KNOWN_SOURCES)),
        ],
        responses=inline_serializer(
            "SampleList",
            {
                "symbol": serializers.CharField(),
                "count": serializers.IntegerField(),
                "servedFrom": serializers.ChoiceField(choices=[s.value for s in ServedFrom]),
                "samples": OutputSerializer(many=True),
            },
        ),
    )
    def get(self, request):
        filters = self.FilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        symbol, limit = filters.validated_data["symbol"], filters.validated_data["limit"]
        found = sample_list_latest(
            symbol=symbol, limit=limit, source=filters.validated_data.get("source")
        )
        return Response(
            {
                "symbol": symbol,
                "count": len(found.samples),
                "servedFrom": found.served_from,
                "samples": self.OutputSerializer(found.samples, many=True).data,
            }
        )


class PollerStatusApi(APIView):
    """What the realtime poller is doing: N, interval, budget use, and each symbol's freshness."""

    @extend_schema(
        responses=inline_serializer(
            "PollerStatus",
            {
                "nSymbols": serializers.IntegerField(),
                "intervalSec": serializers.FloatField(allow_null=True),
                "budgetPerMin": serializers.IntegerField(),
                "weightLastMinute": serializers.IntegerField(),
                "budgetUsedPct": serializers.FloatField(),
                "dispatchedAt": serializers.DateTimeField(allow_null=True),
                "markPricesAgeSec": serializers.FloatField(allow_null=True),
                "counters": serializers.DictField(child=serializers.IntegerField()),
                "failing": serializers.DictField(),
                "staleSymbols": serializers.ListField(child=serializers.CharField()),
                "lastSampleAgeSec": serializers.DictField(
                    child=serializers.FloatField(allow_null=True)
                ),
            },
        )
    )
    def get(self, request):
        universe = [member.symbol for member in liquid_symbol_list()]
        status = poller_status(universe=universe)
        stale_after = 3 * (status.interval_sec or settings.OI_MAX_INTERVAL_SEC)
        stale = sorted(
            symbol
            for symbol, age in status.last_sample_age_sec.items()
            if age is None or age > stale_after
        )
        return Response(
            {
                "nSymbols": status.n_symbols,
                "intervalSec": status.interval_sec,
                "budgetPerMin": status.max_req_per_min,
                "weightLastMinute": status.weight_last_minute,
                "budgetUsedPct": round(100 * status.weight_last_minute / status.max_req_per_min, 1),
                "dispatchedAt": (
                    datetime_from_ms(status.dispatched_at_ms) if status.dispatched_at_ms else None
                ),
                "markPricesAgeSec": status.mark_prices_age_sec,
                "counters": status.counters,
                "failing": status.failing,
                "staleSymbols": stale,
                "lastSampleAgeSec": status.last_sample_age_sec,
            }
        )


class OpenInterestScreenerApi(APIView):
    """Every liquid symbol's latest open interest (and in USD) and its change over 5 m, 15 m and
    1 h, from the ring buffers: one call for the whole universe."""

    class ScreenerRowSerializer(serializers.Serializer):
        symbol = serializers.CharField()
        quoteVolume24h = PlainDecimalField(source="quote_volume_24h")
        enteredAt = serializers.DateTimeField(source="entered_at")
        openInterest = serializers.CharField(allow_null=True, help_text="Contracts; latest sample")
        openInterestTime = serializers.DateTimeField(allow_null=True)
        markPrice = serializers.CharField(allow_null=True)
        openInterestUsd = serializers.CharField(
            allow_null=True, help_text="Latest open interest × the latest mark price"
        )
        pctChange5m = serializers.FloatField(
            allow_null=True,
            help_text="0.1 = +10%, against the newest sample at or before now - 5 min; null when "
            "the ring buffer does not reach back that far",
        )
        pctChange15m = serializers.FloatField(allow_null=True)
        pctChange1h = serializers.FloatField(allow_null=True)
        ringSamples = serializers.IntegerField(help_text="Samples in the symbol's ring buffer")

    @extend_schema(
        responses=inline_serializer(
            "OpenInterestScreener",
            {
                "asOf": serializers.DateTimeField(),
                "count": serializers.IntegerField(),
                "lookbacksSec": serializers.DictField(child=serializers.IntegerField()),
                "symbols": ScreenerRowSerializer(many=True),
            },
        )
    )
    def get(self, request):
        now_ms = ms_from_datetime(timezone.now())
        rows = [
            {
                "symbol": row.symbol,
                "quote_volume_24h": row.quote_volume_24h,
                "entered_at": row.entered_at,
                "openInterest": plain_decimal(row.latest.open_interest) if row.latest else None,
                "openInterestTime": (datetime_from_ms(row.latest.time_ms) if row.latest else None),
                "markPrice": plain_decimal(row.mark_price) if row.mark_price is not None else None,
                "openInterestUsd": (
                    plain_decimal(row.open_interest_usd)
                    if row.open_interest_usd is not None
                    else None
                ),
                **{f"pctChange{label}": pct for label, pct in row.pct_change.items()},
                "ringSamples": row.ring_samples,
            }
            for row in open_interest_screener(now_ms=now_ms)
        ]
        return Response(
            {
                "asOf": datetime_from_ms(now_ms),
                "count": len(rows),
                "lookbacksSec": dict(SCREENER_LOOKBACKS),
                "symbols": self.ScreenerRowSerializer(rows, many=True).data,
            }
        )


# Upstream's GET /api/market/open-interest (VolSpike open-interest.ts:354-382): stale after 5 min,
# dangerously stale after 6.5 min; symbols without a sample in a day are left out.
LATEST_STALE_AFTER = timedelta(minutes=5)
LATEST_DANGEROUSLY_STALE_AFTER = timedelta(minutes=6, seconds=30)
LATEST_LOOKBACK = timedelta(days=1)


class OpenInterestLatestApi(SnapshotIngestApi):
    """GET: every symbol's latest open interest in USD, as the VolSpike frontend reads it.
    POST: the same as .../ingest (upstream's alias)."""

    @extend_schema(
        responses=inline_serializer(
            "OpenInterestLatest",
            {
                "data": serializers.DictField(child=serializers.FloatField()),
                "stale": serializers.BooleanField(help_text="newest sample older than 5 min"),
                "asOf": serializers.IntegerField(
                    allow_null=True, help_text="time of the newest sample, epoch ms"
                ),
                "dangerouslyStale": serializers.BooleanField(help_text="older than 6.5 min"),
            },
        )
    )
    def get(self, request):
        now = timezone.now()
        latest = open_interest_usd_latest(since=now - LATEST_LOOKBACK)
        as_of = max((ts for _, ts, _ in latest), default=None)
        age = now - as_of if as_of else None
        return Response(
            {
                "data": {symbol: float(usd) for symbol, _, usd in latest},
                "stale": age is None or age > LATEST_STALE_AFTER,
                "asOf": ms_from_datetime(as_of) if as_of else None,
                "dangerouslyStale": age is None or age > LATEST_DANGEROUSLY_STALE_AFTER,
            }
        )


class SnapshotAtApi(APIView):
    """The stored sample of a symbol nearest at or before `ts` (the hourly script's oiChange
    reference): `found: false` when there is none. An index lookup, never a scan."""

    class FilterSerializer(serializers.Serializer):
        symbol = serializers.CharField()
        ts = serializers.DateTimeField()

        def validate_symbol(self, symbol: str) -> str:
            problem = symbol_problem(symbol)
            if problem:
                raise serializers.ValidationError(problem)
            return symbol

    @extend_schema(
        parameters=[
            OpenApiParameter("symbol", str, required=True),
            OpenApiParameter("ts", str, required=True, description="ISO-8601, e.g. ...T14:00:00Z"),
        ],
        responses=inline_serializer(
            "SnapshotAt",
            {
                "found": serializers.BooleanField(),
                "symbol": serializers.CharField(),
                "openInterest": serializers.FloatField(required=False),
                "openInterestUsd": serializers.FloatField(allow_null=True, required=False),
                "markPrice": serializers.FloatField(allow_null=True, required=False),
                "ts": serializers.DateTimeField(required=False),
                "source": serializers.CharField(required=False),
                "requestedTs": serializers.DateTimeField(required=False),
            },
        ),
    )
    def get(self, request):
        filters = self.FilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        symbol, ts = filters.validated_data["symbol"], filters.validated_data["ts"]
        sample = snapshot_at_or_before(symbol=symbol, ts=ts)
        if sample is None:
            return Response({"found": False, "symbol": symbol, "requestedTs": iso_z(ts)})
        return Response(
            {
                "found": True,
                "symbol": symbol,
                "openInterest": float(sample.open_interest),
                "openInterestUsd": _float_or_none(sample.open_interest_usd),
                "markPrice": _float_or_none(sample.mark_price),
                "ts": iso_z(sample.ts),
                "source": sample.source,
            }
        )


def _float_or_none(value) -> float | None:
    return None if value is None else float(value)
