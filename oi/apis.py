import base64
import binascii
from dataclasses import asdict
from datetime import timedelta

from django.conf import settings
from django.http import HttpResponse, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_serializer,
    inline_serializer,
)
from rest_framework import serializers
from rest_framework.permissions import BasePermission
from rest_framework.response import Response
from rest_framework.views import APIView

from common.errors import InvalidInput
from common.formatting import iso_z, plain_decimal
from common.parsing import parse_aware_datetime
from common.serializers import PlainDecimalField
from common.symbols import symbol_problem
from common.timeutil import datetime_from_ms, ms_from_datetime
from liquidity.selectors import liquid_symbol_list
from oi.batches import KNOWN_SOURCES, parse_snapshot_batch
from oi.exports import (
    CSV_CONTENT_TYPE,
    CsvExport,
    csv_stream,
    parse_export_filters,
    parse_time_bound,
)
from oi.market import SymbolChange, breadth, market_total, movers, total_change
from oi.regimes import REGIME_VALUES
from oi.schedule import OverloadBehaviour
from oi.screener import (
    LIQUIDATIONS_LOWER_BOUND,
    SCREENER_LOOKBACKS,
    open_interest_market_samples,
    open_interest_screener,
)
from oi.selectors import (
    GroupStatus,
    SamplePosition,
    ServedFrom,
    open_interest_usd_latest,
    poller_status,
    sample_list_latest,
    sample_list_page,
    snapshot_at_or_before,
    snapshot_export,
)
from oi.services import snapshot_batch_ingest
from oi.tasks import ingested_samples_process_later
from streams.selectors import streams_status


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
    """Open-interest samples of one symbol, newest first. Without `from`, `to` or `cursor`: the
    newest `limit` (from the ring buffer when fresh, else Postgres). With any of them: a page of
    the stored samples with from <= ts < to, from Postgres; `next` continues it."""

    class FilterSerializer(serializers.Serializer):
        symbol = serializers.CharField()
        limit = serializers.IntegerField(
            required=False,
            min_value=1,
            max_value=settings.OI_SAMPLES_MAX_LIMIT,
            default=settings.OI_SAMPLES_DEFAULT_LIMIT,
        )
        source = serializers.ChoiceField(choices=KNOWN_SOURCES, required=False)
        cursor = serializers.CharField(required=False, allow_blank=True)

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
            OpenApiParameter(
                "from", str, description="ISO-8601 or epoch ms; samples at or after it (Postgres)"
            ),
            OpenApiParameter(
                "to", str, description="ISO-8601 or epoch ms; samples before it (Postgres)"
            ),
            OpenApiParameter(
                "cursor", str, description="`next` of the previous page (opaque); same filters"
            ),
        ],
        responses=inline_serializer(
            "SampleList",
            {
                "symbol": serializers.CharField(),
                "count": serializers.IntegerField(),
                "servedFrom": serializers.ChoiceField(choices=[s.value for s in ServedFrom]),
                "samples": OutputSerializer(many=True),
                "next": serializers.CharField(
                    allow_null=True,
                    help_text="Cursor of the next (older) page while more may remain, else null",
                ),
            },
        ),
    )
    def get(self, request):
        filters = self.FilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        data = filters.validated_data
        symbol, limit, source = data["symbol"], data["limit"], data.get("source")
        since, until = (
            parse_time_bound(request.query_params[field], field=field)
            if request.query_params.get(field)
            else None
            for field in ("from", "to")
        )
        if since is not None and until is not None and until <= since:
            raise InvalidInput(field="to", reason="must be after 'from'")
        cursor = data.get("cursor") or None
        if since is None and until is None and cursor is None:
            found = sample_list_latest(symbol=symbol, limit=limit, source=source)
            samples, served_from = found.samples, found.served_from
            last = samples[-1] if len(samples) == limit else None
            next_position = SamplePosition(last.ts, last.source) if last else None
        else:
            page = sample_list_page(
                symbol=symbol,
                limit=limit,
                source=source,
                since=since,
                until=until,
                after=sample_cursor_decode(cursor) if cursor else None,
            )
            samples, served_from, next_position = page.samples, ServedFrom.POSTGRES, page.next
        return Response(
            {
                "symbol": symbol,
                "count": len(samples),
                "servedFrom": served_from,
                "samples": self.OutputSerializer(samples, many=True).data,
                "next": sample_cursor_encode(next_position) if next_position else None,
            }
        )


def sample_cursor_encode(position: SamplePosition) -> str:
    """Opaque to clients: URL-safe base64 of "<ISO time>|<source>"."""
    raw = f"{position.ts.isoformat()}|{position.source}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def sample_cursor_decode(cursor: str) -> SamplePosition:
    """A cursor this API gave out, else InvalidInput naming `cursor`."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        moment, source = raw.split("|")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise InvalidInput(field="cursor", reason="is not a cursor this API gave out") from None
    # a ring sample's source (backfill) may end a page: only the time and order matter then
    if len(source) > 16 or not source.isascii() or not source.isalpha():
        raise InvalidInput(field="cursor", reason="is not a cursor this API gave out")
    try:
        ts = parse_aware_datetime(moment, field="cursor")
    except InvalidInput as problem:
        raise InvalidInput(
            field="cursor", reason=f"is not a cursor this API gave out: {problem.reason}"
        ) from None
    return SamplePosition(ts, source)


class ExportsNeedToken(BasePermission):
    """Exports are heavy: they need an API token whatever API_READS_REQUIRE_AUTH says (a session
    is not enough). A read-only token may export."""

    message = "Exports need an API token: send 'Authorization: Token <key>' or 'X-API-Key'."

    def has_permission(self, request, view) -> bool:
        return request.auth is not None


EXPORT_PARAMETERS = [
    OpenApiParameter(
        "from", str, required=True, description="ISO-8601 with a zone, or epoch ms; ts >= from"
    ),
    OpenApiParameter(
        "to", str, required=True, description="ISO-8601 with a zone, or epoch ms; ts < to"
    ),
    OpenApiParameter(
        "symbols", str, description="e.g. BTCUSDT,ETHUSDT (at most 1000); default every symbol"
    ),
]


def csv_export_response(request, export: CsvExport) -> HttpResponseBase:
    """The export streamed as it leaves Postgres (see oi.exports.csv_chunks_async); for a HEAD
    request the same headers and no query (a server drops a HEAD's body, but only after the
    application made it)."""
    if request.method == "HEAD":
        response = HttpResponse(content_type=CSV_CONTENT_TYPE)
    else:
        response = StreamingHttpResponse(csv_stream(export), content_type=CSV_CONTENT_TYPE)
    response["Content-Disposition"] = f'attachment; filename="{export.filename}"'
    response["Cache-Control"] = "no-store"
    response["X-Accel-Buffering"] = "no"  # nginx: pass the chunks on, do not buffer the body
    return response


class CsvExportApi(APIView):
    """Base of the CSV exports: a token always; errors in the API's JSON shape whatever the
    client's Accept header asks (the CSV itself is not rendered by DRF)."""

    permission_classes = [ExportsNeedToken]

    def perform_content_negotiation(self, request, force=False):
        return super().perform_content_negotiation(request, force=True)


class SnapshotExportApi(CsvExportApi):
    """Stored open-interest samples as CSV, streamed: columns symbol, ts (ISO-8601 UTC), source,
    open_interest, open_interest_usd, mark_price; ordered by ts, symbol, source."""

    @extend_schema(
        parameters=[
            *EXPORT_PARAMETERS,
            OpenApiParameter("source", str, enum=list(KNOWN_SOURCES)),
        ],
        responses={
            (200, "text/csv"): OpenApiResponse(
                OpenApiTypes.STR,
                description="CSV with a header line: symbol,ts,source,open_interest,"
                "open_interest_usd,mark_price",
            )
        },
    )
    def get(self, request):
        filters = parse_export_filters(request.query_params, sources=KNOWN_SOURCES)
        return csv_export_response(
            request,
            snapshot_export(
                since=filters.since,
                until=filters.until,
                symbols=filters.symbols,
                source=filters.source,
            ),
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
                "overloaded": serializers.BooleanField(
                    help_text=(
                        "The live budgets cannot poll every liquid symbol within "
                        "OI_MAX_INTERVAL_SEC: the interval stretches past it (overloadBehaviour)"
                    )
                ),
                "overloadBehaviour": serializers.CharField(),
                "wantedIntervalSec": serializers.FloatField(allow_null=True),
                "maxIntervalSec": serializers.FloatField(),
                "groups": serializers.ListField(
                    child=serializers.DictField(),
                    help_text=(
                        "Egress groups (one per poller IP): live, budget, weight used over the "
                        "last 60 s, planned weight, symbols"
                    ),
                ),
                "dispatchedAt": serializers.DateTimeField(allow_null=True),
                "markPricesAgeSec": serializers.FloatField(allow_null=True),
                "counters": serializers.DictField(child=serializers.IntegerField()),
                "failing": serializers.DictField(),
                "staleSymbols": serializers.ListField(child=serializers.CharField()),
                "lastSampleAgeSec": serializers.DictField(
                    child=serializers.FloatField(allow_null=True)
                ),
                "marketStreams": serializers.DictField(
                    help_text=(
                        "The market WebSocket streams: markPriceSource (stream, or rest while "
                        "the stream is stale), each stream's state (fresh, stale, never, "
                        "disabled), its last frame's age and frames received, the connection's "
                        "counters and its recent outages"
                    )
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
                "budgetUsedPct": round(
                    100 * status.weight_last_minute / max(status.max_req_per_min, 1), 1
                ),
                "overloaded": status.overloaded,
                "overloadBehaviour": OverloadBehaviour.STRETCH,
                "wantedIntervalSec": status.wanted_interval_sec,
                "maxIntervalSec": settings.OI_MAX_INTERVAL_SEC,
                "groups": [_group_payload(group) for group in status.groups],
                "dispatchedAt": (
                    datetime_from_ms(status.dispatched_at_ms) if status.dispatched_at_ms else None
                ),
                "markPricesAgeSec": status.mark_prices_age_sec,
                "counters": status.counters,
                "failing": status.failing,
                "staleSymbols": stale,
                "lastSampleAgeSec": status.last_sample_age_sec,
                "marketStreams": _market_streams_payload(),
            }
        )


def _group_payload(group: GroupStatus) -> dict:
    return {
        "egressId": group.egress_id,
        "live": group.live,
        "planned": group.planned,
        "host": group.host,
        "heartbeatAgeSec": group.heartbeat_age_sec,
        "configuredPerMin": group.configured_per_min,
        "budgetPerMin": group.usable_per_min,
        "ipLimit": group.ip_limit,
        "ipLimitLearned": group.ip_limit_learned,
        "plannedWeightPerMin": group.planned_weight_per_min,
        "weightLastMinute": group.weight_last_minute,
        "budgetUsedPct": round(100 * group.weight_last_minute / max(group.usable_per_min, 1), 1),
        "nSymbols": len(group.symbols),
        "symbols": group.symbols,
        "markPrices": group.mark_prices,
    }


def _market_streams_payload() -> dict:
    status = streams_status()
    return {
        "markPriceSource": status.mark_price_source,
        "streams": {
            str(stream): {
                "state": health.state,
                "lastFrameAgeSec": health.last_frame_age_sec,
                "staleAfterSec": health.stale_after_sec,
                "frames": status.frames.get(stream, 0),
            }
            for stream, health in status.health.items()
        },
        "counters": status.counters,
        "recentOutages": [
            {
                "start": datetime_from_ms(outage.started_ms),
                "end": datetime_from_ms(outage.ended_ms),
                "cause": outage.cause,
            }
            for outage in status.outages
        ],
    }


class OpenInterestScreenerApi(APIView):
    """Every liquid symbol's latest open interest (and in USD) and its change over 5 m, 15 m,
    1 h, 4 h and 24 h, from the ring buffers (4 h and 24 h against the coarse ring's 5-minute
    samples): one call for the whole universe."""

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
        pctChange4h = serializers.FloatField(
            allow_null=True,
            help_text="Against the coarse ring's newest sample (one per 5 min) at or before now "
            "- 4 h; null when none lies within an hour before that point (not covered)",
        )
        pctChange24h = serializers.FloatField(
            allow_null=True,
            help_text="As pctChange4h, 24 h back; null when no coarse sample lies within 6 h "
            "before that point",
        )
        priceChange5m = serializers.FloatField(
            allow_null=True,
            help_text="The mark price's change over the same span as pctChange5m (0.01 = +1%), "
            "between the prices stored with the two samples; null when either has none",
        )
        priceChange15m = serializers.FloatField(allow_null=True)
        priceChange1h = serializers.FloatField(allow_null=True)
        priceChange4h = serializers.FloatField(allow_null=True)
        priceChange24h = serializers.FloatField(allow_null=True)
        regime5m = serializers.ChoiceField(
            choices=REGIME_VALUES,
            help_text="OI/price regime of the 5 min window: long_build (OI up, price up), "
            "short_build (OI up, price down), short_cover (OI down, price up), long_flush (OI "
            "down, price down), build_price_flat / unwind_price_flat (price inside its dead band), "
            "oi_flat (OI inside its dead band), unknown (no price or not covered)",
        )
        regime15m = serializers.ChoiceField(choices=REGIME_VALUES)
        regime1h = serializers.ChoiceField(choices=REGIME_VALUES)
        regime4h = serializers.ChoiceField(choices=REGIME_VALUES)
        regime24h = serializers.ChoiceField(choices=REGIME_VALUES)
        ringSamples = serializers.IntegerField(help_text="Samples in the symbol's ring buffer")
        liqLongUsd5m = PlainDecimalField(
            allow_null=True,
            help_text="Long liquidations (SELL orders) over the last 5 min in USD, from the "
            "liquidation stream: a lower bound (Binance sends at most one liquidation per symbol "
            "per second); null when the stream never ran",
        )
        liqShortUsd5m = PlainDecimalField(
            allow_null=True, help_text="Short liquidations (BUY orders), as liqLongUsd5m"
        )
        liqLongUsd15m = PlainDecimalField(allow_null=True)
        liqShortUsd15m = PlainDecimalField(allow_null=True)
        liqLongUsd1h = PlainDecimalField(allow_null=True)
        liqShortUsd1h = PlainDecimalField(allow_null=True)
        liqLongUsd4h = PlainDecimalField(allow_null=True)
        liqShortUsd4h = PlainDecimalField(allow_null=True)
        liqLongUsd24h = PlainDecimalField(allow_null=True)
        liqShortUsd24h = PlainDecimalField(allow_null=True)

    @extend_schema(
        responses=inline_serializer(
            "OpenInterestScreener",
            {
                "asOf": serializers.DateTimeField(),
                "count": serializers.IntegerField(),
                "lookbacksSec": serializers.DictField(child=serializers.IntegerField()),
                "liquidationsBound": serializers.CharField(
                    help_text='"lower": the liq* sums are lower bounds (Binance sends at most one '
                    "liquidation per symbol per second)"
                ),
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
                **{f"priceChange{label}": pct for label, pct in row.price_change.items()},
                **{f"regime{label}": regime.value for label, regime in row.regime.items()},
                "ringSamples": row.ring_samples,
                **{f"liqLongUsd{k}": usd for k, usd in row.liquidations_long_usd.items()},
                **{f"liqShortUsd{k}": usd for k, usd in row.liquidations_short_usd.items()},
            }
            for row in open_interest_screener(now_ms=now_ms, with_liquidations=True)
        ]
        return Response(
            {
                "asOf": datetime_from_ms(now_ms),
                "count": len(rows),
                "lookbacksSec": dict(SCREENER_LOOKBACKS),
                "liquidationsBound": LIQUIDATIONS_LOWER_BOUND,
                "symbols": self.ScreenerRowSerializer(rows, many=True).data,
            }
        )


class MarketViewApi(APIView):
    """The liquid universe as a whole: its total open interest in USD now and every 5 min over
    the last hour, the breadth (the share of symbols whose OI rose, or fell) and the biggest
    gainers and losers over 5 m, 15 m and 1 h. From the ring buffers, at no request weight."""

    SERIES_STEP_SEC = 300
    SERIES_POINTS = 13  # now and every 5 min back to 1 h ago
    MOVERS = 5

    class MoverSerializer(serializers.Serializer):
        symbol = serializers.CharField()
        pctChange = serializers.FloatField(source="pct_change", help_text="0.1 = +10%")
        openInterestUsd = PlainDecimalField(source="open_interest_usd", allow_null=True)

    class BreadthSerializer(serializers.Serializer):
        rising = serializers.FloatField(help_text="Share of the measured symbols whose OI rose")
        falling = serializers.FloatField()
        measured = serializers.IntegerField(help_text="Symbols whose ring reaches back that far")

    class TotalSerializer(serializers.Serializer):
        ts = serializers.DateTimeField()
        openInterestUsd = PlainDecimalField(source="open_interest_usd")
        symbols = serializers.IntegerField(help_text="Symbols with a priced sample then")

    @extend_schema(
        responses=inline_serializer(
            "OpenInterestMarketView",
            {
                "asOf": serializers.DateTimeField(),
                "symbols": serializers.IntegerField(),
                "totalOpenInterestUsd": TotalSerializer(many=True),
                "totalChange1h": inline_serializer(
                    "OpenInterestMarketChange",
                    {
                        "pctChange": serializers.FloatField(
                            allow_null=True,
                            help_text="Change of the summed OI in USD over the last hour, over "
                            "the symbols priced at both ends (like for like)",
                        ),
                        "symbols": serializers.IntegerField(),
                    },
                ),
                "breadth": serializers.DictField(child=BreadthSerializer()),
                "gainers": serializers.DictField(child=MoverSerializer(many=True)),
                "losers": serializers.DictField(child=MoverSerializer(many=True)),
            },
        )
    )
    def get(self, request):
        now_ms = ms_from_datetime(timezone.now())
        rows = open_interest_screener(now_ms=now_ms)
        step_ms = self.SERIES_STEP_SEC * 1000
        times_ms = [
            now_ms - i * step_ms for i in reversed(range(self.SERIES_POINTS))
        ]  # oldest first
        samples = open_interest_market_samples([row.symbol for row in rows], times_ms)
        totals = [market_total(t, at) for t, at in zip(times_ms, samples, strict=True)]
        change = total_change(samples[0], samples[-1])
        breadths, gainers, losers = {}, {}, {}
        for label, _seconds in SCREENER_LOOKBACKS:
            changes = [
                SymbolChange(row.symbol, row.pct_change[label], row.open_interest_usd)
                for row in rows
            ]
            breadths[label] = asdict(breadth(changes))
            up, down = movers(changes, self.MOVERS)
            gainers[label] = self.MoverSerializer(up, many=True).data
            losers[label] = self.MoverSerializer(down, many=True).data
        return Response(
            {
                "asOf": datetime_from_ms(now_ms),
                "symbols": len(rows),
                "totalOpenInterestUsd": self.TotalSerializer(
                    [
                        {"ts": datetime_from_ms(t.time_ms), "open_interest_usd": t.open_interest_usd,
                         "symbols": t.symbols}
                        for t in totals
                    ],
                    many=True,
                ).data,
                "totalChange1h": {"pctChange": change.pct_change, "symbols": change.symbols},
                "breadth": breadths,
                "gainers": gainers,
                "losers": losers,
            }
        )  # fmt: skip


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
