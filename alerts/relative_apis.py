"""GET /api/open-interest/<symbol>/change-stats: a symbol's change statistics, what its relative
rules compare each window's change against (alerts.relative)."""

import re

from django.conf import settings
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from alerts.relative import MAD_TO_SIGMA, MIN_CHANGES, min_span_ms
from alerts.relative_selectors import change_stats_rows, relative_windows
from common.errors import InvalidInput
from common.symbols import symbol_problem

WINDOW_RE = re.compile(r"[0-9]{1,6}")


class ChangeStatsApi(APIView):
    """The symbol's statistics per window (median and robust scale of the window's OI change
    over the last OI_CHANGE_STATS_DAYS days), and the relative rules' windows it has none for
    (those rules give it no verdict)."""

    class WindowSerializer(serializers.Serializer):
        windowSec = serializers.IntegerField(source="window_sec")
        median = serializers.FloatField(help_text="Median change over the window (0.01 = +1%)")
        scale = serializers.FloatField(
            help_text=f"{MAD_TO_SIGMA} × the median absolute deviation (floored): one robust z"
        )
        count = serializers.IntegerField(help_text="Changes (5-minute samples) behind it")
        firstTs = serializers.DateTimeField(source="first_ts")
        lastTs = serializers.DateTimeField(source="last_ts")
        source = serializers.CharField(help_text="snapshots or open_interest_hist (bootstrap)")
        computedAt = serializers.DateTimeField(source="computed_at")

    @extend_schema(
        parameters=[
            OpenApiParameter("window", int, description="Only this window (seconds)"),
        ],
        responses=inline_serializer(
            "OpenInterestChangeStats",
            {
                "symbol": serializers.CharField(),
                "days": serializers.IntegerField(),
                "minChanges": serializers.IntegerField(
                    help_text="Fewest changes a symbol's statistics are made of"
                ),
                "minSpanSec": serializers.DictField(
                    child=serializers.IntegerField(),
                    help_text="Per window: the least history (seconds) statistics need",
                ),
                "windows": WindowSerializer(many=True),
                "withoutStats": serializers.ListField(
                    child=serializers.IntegerField(),
                    help_text="Windows of relative rules this symbol has no statistics for: "
                    "no verdict from those rules (too little history)",
                ),
            },
        ),
    )
    def get(self, request, symbol: str):
        if problem := symbol_problem(symbol):
            raise InvalidInput(field="symbol", reason=problem)
        window = request.query_params.get("window")
        if window is not None:
            if not WINDOW_RE.fullmatch(window) or not 0 < int(window) <= 86_400:
                raise InvalidInput(
                    field="window", reason="must be a whole number of seconds, 1..86400"
                )
            window = int(window)
        rows = [r for r in change_stats_rows(symbol) if window is None or r.window_sec == window]
        have = {row.window_sec for row in rows}
        wanted = [window] if window is not None else relative_windows()
        return Response(
            {
                "symbol": symbol,
                "days": settings.OI_CHANGE_STATS_DAYS,
                "minChanges": MIN_CHANGES,
                "minSpanSec": {w: min_span_ms(w) // 1000 for w in wanted},
                "windows": self.WindowSerializer(rows, many=True).data,
                "withoutStats": [w for w in wanted if w not in have],
            }
        )
